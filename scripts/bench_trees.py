#!/usr/bin/python3
"""Side-by-side benchmark: our random forest and gradient boosting against
scikit-learn RandomForestClassifier and xgboost XGBClassifier(tree_method='hist'),
same hyperparameters, same data, same thread count (2), in one run.

Tables (sklearn make_classification, 80/20 split): 1440 x 384 (7 classes),
900 x 100 (4 classes), 50000 x 100 (4 classes). Prints fit / predict seconds,
accuracy and our speed-up (reference time / our time) per learner and table.
Usage (repo root, after `make`): /usr/bin/python3 scripts/bench_trees.py [--small]
  --small  skip the 50000-row table.
  --ours-only  skip the references (quick check while developing).
  --spin   leave OMP_WAIT_POLICY alone (default here: PASSIVE for both sides).
Also reported: CPU seconds of each fit (all threads), steadier than wall time
when the machine is shared.
"""
import os
import sys

# OpenMP threads sleep instead of spinning while they wait (both xgboost and
# ours): on a shared, oversubscribed machine spinning makes wall times
# meaningless. Pass --spin to keep the OpenMP default.
if "--spin" not in sys.argv:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
import subprocess
import tempfile
import time

import h5py
import numpy as np
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = 2
TABLES = [("1440x384", 1440, 384, 7), ("900x100", 900, 100, 4), ("50000x100", 50000, 100, 4)]
RF = dict(n_estimators=100)                      # sklearn defaults otherwise (sqrt, gini, bootstrap)
GB = dict(n_estimators=100, max_depth=6, learning_rate=0.3, max_bin=256)


def build_driver(tmp):
    exe = os.path.join(tmp, "bench_trees_driver")
    pkgs = __import__('re').search(r'^PKGS := (.*)$', open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'Makefile')).read(), __import__('re').M).group(1)
    flags = subprocess.check_output("pkg-config --cflags --libs " + pkgs, shell=True, text=True).split()
    cmd = ["gcc", "-O3", "-march=native", "-std=gnu11", "-fopenmp", "-D_GNU_SOURCE",
           "-I" + os.path.join(ROOT, "src"), os.path.join(ROOT, "scripts/bench_trees_driver.c"),
           "-Wl,--whole-archive", os.path.join(ROOT, "build/libmelodic.a"), "-Wl,--no-whole-archive",
           "-o", exe] + flags + ["-lm", "-lpthread"]
    subprocess.check_call(cmd)
    return exe


def ours(exe, path, learner, params):
    yaml = "{" + ", ".join("%s: %s" % kv for kv in params.items()) + "}"
    out = subprocess.check_output([exe, path, learner, yaml, str(THREADS), "0"], text=True)
    kv = dict(tok.split("=") for tok in out.split())
    return (float(kv["fit_s"]), float(kv["predict_s"]), float(kv["accuracy"]), float(kv["fit_cpu_s"]),
            float(kv["predict_cpu_s"]))


def timed(model, Xa, ya, Xb, yb):
    c0 = time.process_time()
    t0 = time.perf_counter()
    model.fit(Xa, ya)
    t1 = time.perf_counter()
    c1 = time.process_time()
    pred = model.predict_proba(Xb).argmax(1)
    t2 = time.perf_counter()
    c2 = time.process_time()
    return t1 - t0, t2 - t1, float((pred == yb).mean()), c1 - c0, c2 - c1


def main():
    small = "--small" in sys.argv
    only_ours = "--ours-only" in sys.argv
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_driver(tmp)
        for name, n, d, k in TABLES:
            if small and n > 10000:
                continue
            X, y = make_classification(n_samples=n, n_features=d, n_informative=min(d // 2, 40),
                                       n_redundant=min(d // 4, 20), n_classes=k,
                                       n_clusters_per_class=2, class_sep=1.0, random_state=0)
            X = X.astype(np.float32)
            y = y.astype(np.int32)
            Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
            path = os.path.join(tmp, name + ".h5")
            with h5py.File(path, "w") as f:
                f["X"], f["y"], f["X_test"], f["y_test"] = Xa, ya, Xb, yb
            skip = (float("nan"),) * 5
            ref = skip if only_ours else timed(
                RandomForestClassifier(n_jobs=THREADS, random_state=0, **RF), Xa, ya, Xb, yb)
            rows.append((name, "rf", "sklearn", ref, ours(exe, path, "rf", RF)))
            ref = skip if only_ours else timed(
                xgb.XGBClassifier(tree_method="hist", n_jobs=THREADS, random_state=0, **GB), Xa, ya, Xb, yb)
            rows.append((name, "gbdt", "xgboost", ref, ours(exe, path, "gbdt", GB)))
    print("%-10s %-5s %-8s | %8s %8s %8s %8s %7s | %8s %8s %8s %8s %7s | %6s %6s %6s %6s" %
          ("table", "model", "ref", "fit", "(cpu)", "pred", "(cpu)", "acc", "our fit", "(cpu)",
           "pred", "(cpu)", "acc", "fit x", "cpu x", "pred x", "cpu x"))
    for name, model, refname, r, o in rows:
        print("%-10s %-5s %-8s | %7.3fs %7.3fs %7.4fs %7.4fs %6.2f%% | %7.3fs %7.3fs %7.4fs %7.4fs "
              "%6.2f%% | %5.2fx %5.2fx %5.2fx %5.2fx" %
              (name, model, refname, r[0], r[3], r[1], r[4], 100 * r[2], o[0], o[3], o[1], o[4],
               100 * o[2], r[0] / max(o[0], 1e-9), r[3] / max(o[3], 1e-9), r[1] / max(o[1], 1e-9),
               r[4] / max(o[4], 1e-9)))
    print("threads: %d, OMP_WAIT_POLICY=%s; x = reference time / our time (> 1: we are faster)"
          % (THREADS, os.environ.get("OMP_WAIT_POLICY", "default")))


if __name__ == "__main__":
    main()
