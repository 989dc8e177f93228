#!/usr/bin/python3
"""Side-by-side benchmark of an experiment: `melodic run` against the same
pipeline in scikit-learn (and xgboost / PyTorch where the experiment uses
them) on the same cached features and the same folds, in one run.

usage: scripts/bench_experiment.py [EXPERIMENT.yaml] [-j N]
default: experiments/table2_speech_mn04_speaker.yaml

The engine runs first (its feature table is cached, so extraction is not
timed: delete build/cache to include it); the reference then reads the same
feature table and the fold roles from results.h5, standardises per fold and
fits the equivalent models: rf → RandomForestClassifier, gbdt →
XGBClassifier(tree_method='hist'), svm → SVC(probability=True),
mlp → MLPClassifier, with the experiment's hyperparameters. Times are wall
clock for all folds of all models (fit + predict), at the same thread count.
"""
import glob
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    args = [a for a in sys.argv[1:]]
    j = 2
    if "-j" in args:
        j = int(args[args.index("-j") + 1])
        del args[args.index("-j"):args.index("-j") + 2]
    exp = args[0] if args else os.path.join(root, "experiments/table2_speech_mn04_speaker.yaml")
    out = "/tmp/bench_experiment"
    binp = os.path.join(root, "build/melodic")
    # warm the feature cache (not timed)
    # t-SNE off on the engine side: the reference fits models only
    common = ["-j", str(j), "--quiet", "--set", "tsne.enabled=false"]
    subprocess.run([binp, "run", exp, "-o", out] + common, check=True, cwd=root, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    subprocess.run([binp, "run", exp, "-o", out + "_timed"] + common, check=True, cwd=root,
                   stderr=subprocess.DEVNULL)
    t_engine = time.perf_counter() - t0
    f = h5py.File(os.path.join(out, "results.h5"), "r")
    import yaml  # python3-yaml comes with Debian's python3 stack
    cfg = yaml.safe_load(f["config"][()].decode() if isinstance(f["config"][()], bytes) else f["config"][()])
    paths = [p.decode() for p in f["dataset/paths"][:]]
    n = len(paths)
    roles = f["protocol/roles"][:].reshape(-1, n)
    y = f["dataset/labels"][:]
    # the cached table with these rows
    X = None
    feats = cfg["features"] if isinstance(cfg["features"], list) else [cfg["features"]]
    want = "+".join(f if isinstance(f, str) else f["set"] for f in feats)
    for c in sorted(glob.glob(os.path.join(root, "build/cache/*.h5")), key=os.path.getmtime, reverse=True):
        t = h5py.File(c, "r")
        fs = t.attrs.get("feature_set", b"")
        fs = fs.decode() if isinstance(fs, bytes) else str(fs)
        tp = [p.decode() for p in t["paths"][:]]
        if fs == want and len(tp) >= n and set(paths) <= set(tp):
            idx = {p: i for i, p in enumerate(tp)}
            X = t["features"][:][[idx[p] for p in paths]]
            break
    if X is None:
        print("bench_experiment: cached feature table not found", file=sys.stderr)
        return 1
    os.environ["OMP_NUM_THREADS"] = str(j)
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    import torch
    torch.set_num_threads(j)

    def make(m):
        p = m.get("params", {}) or {}
        kind = m["model"]
        if kind == "rf":
            return RandomForestClassifier(n_estimators=p.get("n_estimators", 100), n_jobs=j, random_state=0)
        if kind == "svm":
            return SVC(C=p.get("C", 1.0), gamma=p.get("gamma", "scale"), probability=True, random_state=0)
        if kind == "mlp":
            return MLPClassifier(hidden_layer_sizes=tuple(p.get("hidden_layer_sizes", [100])),
                                 max_iter=p.get("max_iter", 200), early_stopping=p.get("early_stopping", False),
                                 random_state=0)
        if kind == "gbdt":
            from xgboost import XGBClassifier
            return XGBClassifier(tree_method="hist", n_estimators=p.get("n_estimators", 100),
                                 max_depth=p.get("max_depth", 6), learning_rate=p.get("learning_rate", 0.3),
                                 subsample=p.get("subsample", 1.0), colsample_bytree=p.get("colsample_bytree", 1.0),
                                 n_jobs=j)
        return None

    models = [m if isinstance(m, dict) else {"name": m, "model": m} for m in cfg["models"]]
    ref_acc = {}
    t0 = time.perf_counter()
    for m in models:
        accs = []
        for r in range(roles.shape[0]):
            tr = roles[r] == 1
            te = roles[r] == 3
            sc = StandardScaler().fit(X[tr])
            est = make(m)
            if est is None:
                break
            est.fit(sc.transform(X[tr]), y[tr])
            accs.append(accuracy_score(y[te], est.predict(sc.transform(X[te]))))
        if accs:
            ref_acc[m.get("name", m["model"])] = float(np.mean(accs))
    t_ref = time.perf_counter() - t0
    eng = json.load(open(os.path.join(out + "_timed", "summary.json")))["models"]
    print(f"experiment: {os.path.relpath(exp, root)}  ({n} samples × {X.shape[1]} features, {roles.shape[0]} rounds, {j} threads)")
    print(f"{'model':16s} {'engine acc':>10s} {'reference acc':>13s}")
    for name, acc in ref_acc.items():
        print(f"{name:16s} {eng[name]['accuracy']['mean']:10.3f} {acc:13.3f}")
    print(f"end-to-end wall time (features cached, t-SNE off): engine {t_engine:.1f} s (models, metrics, curves, reports), "
          f"reference {t_ref:.1f} s (models only) → {t_ref / t_engine:.2f}× faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
