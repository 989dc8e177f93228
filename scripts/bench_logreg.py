#!/usr/bin/env python3
"""Benchmark: scikit-learn 1.2.1 LogisticRegression(solver='lbfgs',
multi_class='multinomial') against our logreg learner on the same tables,
same hyperparameters (C=0.01, tol=1e-4, max_iter 100 = sklearn's default and
1000). Tables: 1,800 x 1,760 from make_classification (7 classes,
standardised; fit on 1,440 rows like RAVDESS, accuracy on the other 360),
and, with --features FILE, a melodic feature table (e.g. the 1,760-d
mn04_layers cache) split by speaker (groups 1-18 train, 19-24 test) and
standardised with the training statistics. Times are medians over --repeats
runs; BLAS threads of numpy are limited to 1 and to 2 for the two sklearn
rows (threadpoolctl). Builds build/scripts/bench_logreg_driver first.
Usage: /usr/bin/python3 scripts/bench_logreg.py [--features FILE] [--repeats N]
For numpy's fast kernels run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
unset (env -u ...); the BLAS kernel in use is printed.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--features", help="a melodic feature table (features, labels, groups)")
ap.add_argument("--repeats", type=int, default=3)
args = ap.parse_args()


def build_driver():
    subprocess.run(["make", "-s", "-C", ROOT, "build/libmelodic.a"], check=True)
    pkgs = [l.split(":=", 1)[1].split() for l in open(os.path.join(ROOT, "Makefile")) if l.startswith("PKGS :=")][0]
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + pkgs, check=True, capture_output=True,
                           text=True).stdout.split()
    os.makedirs(os.path.join(ROOT, "build/scripts"), exist_ok=True)
    out = os.path.join(ROOT, "build/scripts/bench_logreg_driver")
    subprocess.run([os.environ.get("CC", "gcc"), "-O3", "-march=native", "-std=gnu11", "-fopenmp", "-D_GNU_SOURCE",
                    "-I" + os.path.join(ROOT, "src"), "-o", out, os.path.join(ROOT, "scripts/bench_logreg_driver.c"),
                    "-Wl,--whole-archive", os.path.join(ROOT, "build/libmelodic.a"), "-Wl,--no-whole-archive"] +
                   flags + ["-lm", "-lpthread"], check=True)
    return out


def standardise(Xtr, Xte):
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd[sd == 0] = 1
    return ((Xtr - mu) / sd).astype(np.float32), ((Xte - mu) / sd).astype(np.float32)


tables = []
X, y = make_classification(n_samples=1800, n_features=1760, n_informative=80, n_redundant=200, n_classes=7,
                           n_clusters_per_class=1, class_sep=1.5, flip_y=0.05, random_state=7)
Xtr, Xte = standardise(X[:1440], X[1440:])
tables.append(("rand1440x1760", Xtr, y[:1440].astype(np.int32), Xte, y[1440:].astype(np.int32)))
if args.features:
    with h5py.File(args.features, "r") as f:
        F, lab, grp = f["features"][...], f["labels"][...], f["groups"][...]
    actor = grp   # group ids are the actor numbers 1..24
    tr, te = actor <= 18, actor > 18
    Ftr, Fte = standardise(F[tr].astype(np.float64), F[te].astype(np.float64))
    tables.append(("features%dx%d" % F.shape, Ftr, lab[tr].astype(np.int32), Fte, lab[te].astype(np.int32)))

C, tol = 0.01, 1e-4
print("BLAS for numpy: %s" % ", ".join("%s %s %s threads=%d" % (i["internal_api"], i["version"], i.get("architecture"),
                                                                 i["num_threads"]) for i in threadpool_info()))
print("uptime:%s" % subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load")[-1])
driver = build_driver()
# Idle OpenMP threads sleep instead of spinning: on a shared, oversubscribed
# machine spinning workers make 2-thread runs slower than 1 (as bench_svm).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
path = os.path.join(tempfile.gettempdir(), "mm_bench_logreg_%d.h5" % os.getpid())
ref, groups = {}, []
with h5py.File(path, "w") as f:
    for name, Xtr, ytr, Xte, yte in tables:
        for mi in (100, 1000):
            gname = "%s_it%d" % (name, mi)
            groups.append(gname)
            g = f.create_group(gname)
            for key, v in (("X_train", Xtr), ("y_train", ytr), ("X_test", Xte), ("y_test", yte)):
                g.create_dataset(key, data=v)
            g.attrs["C"], g.attrs["tol"], g.attrs["max_iter"] = C, tol, np.int64(mi)
            X64, Xt64 = Xtr.astype(np.float64), Xte.astype(np.float64)
            for nt in (1, 2):
                ts = []
                with threadpool_limits(limits=nt, user_api="blas"):
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        clf = LogisticRegression(C=C, tol=tol, max_iter=mi, multi_class="multinomial",
                                                 solver="lbfgs").fit(X64, ytr)
                        ts.append(time.perf_counter() - t0)
                proba = clf.predict_proba(Xt64)
                acc = float((proba.argmax(1) == yte).mean())
                ref[(gname, nt)] = (float(np.median(ts)), acc, int(clf.n_iter_[0]))
                print("sklearn %-24s blas_threads=%d fit %.3f s (median of %d) acc %.4f n_iter %d" %
                      (gname, nt, np.median(ts), args.repeats, acc, clf.n_iter_[0]), flush=True)
            g.create_dataset("proba_ref", data=proba)

ours = {}
for nt in (1, 2):
    out = subprocess.run([driver, path, str(nt), str(args.repeats)] + groups, check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        kv = dict(x.split("=") for x in line.split()[1:])
        ours[(kv["name"], nt)] = kv
os.unlink(path)

print("\n%-24s %-3s | %-26s | %-15s | %-11s | %s" % ("table", "thr", "fit s (sklearn/ours/ratio)", "acc sk / ours",
                                                     "n_iter sk/us", "max|proba diff|"))
for gname in groups:
    for nt in (1, 2):
        rt, ra, rn = ref[(gname, nt)]
        o = ours[(gname, nt)]
        of = float(o["fit"])
        print("%-24s %-3d | %7.3f %7.3f %7.1fx | %.4f  %.4f | %5d %5s | %s" %
              (gname, nt, rt, of, rt / of, ra, float(o["acc"]), rn, o["n_iter"], o["proba_diff"]))
