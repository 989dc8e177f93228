#!/usr/bin/env python3
"""Nested, group-aware hyperparameter search side by side: scikit-learn 1.2
(GridSearchCV(Pipeline(StandardScaler, LogisticRegression), cv=GroupKFold(4))
inside each fold of an outer GroupKFold(5), scoring f1_macro) and
`melodic run` with the same `search:` on the same feature table. Prints the
candidate each side chose per outer fold (they must agree), the outer
accuracy of each, and the wall times and their ratio.

  /usr/bin/python3 scripts/bench_nested.py [TABLE.h5] [--melodic build/melodic] [-j 1]

TABLE.h5 is a melodic feature table with groups (default: the cached
music_paper table of experiments/table3_music_artist.yaml, extracted by
`melodic run` when missing). Both sides use the same threads: scikit-learn
n_jobs=J over candidates, melodic -j J inside each fit; with -j 1 (the
default) CPU times are compared too, which a shared machine measures more
steadily than wall times.
"""
import argparse
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

C_GRID = [0.001, 0.01, 0.1, 1.0]


def find_table(melodic):
    for p in sorted(glob.glob("build/cache/features-*.h5")):
        with h5py.File(p, "r") as f:
            if f.attrs.get("feature_set") == "music_paper":
                return p
    print("extracting the music_paper table (experiments/table3_music_artist.yaml) ...", file=sys.stderr)
    subprocess.run([melodic, "run", "experiments/table3_music_artist.yaml", "-o", tempfile.mkdtemp(),
                    "--quiet", "--set", "models=[{name: lr, model: logreg}]", "--set", "ensembles=[]",
                    "--set", "tsne.enabled=false"], check=True)
    return find_table(melodic)


def load(path):
    with h5py.File(path, "r") as f:
        X, y, g = f["features"][:], f["labels"][:], f["groups"][:]
    keep = y >= 0
    return X[keep], y[keep], g[keep]


def sklearn_side(X, y, g, jobs):
    chosen, acc = [], []
    pipe = Pipeline([("scaler", StandardScaler()), ("lr", LogisticRegression(max_iter=1000))])
    t0, c0 = time.perf_counter(), time.process_time()
    for tr, te in GroupKFold(5).split(X, y, g):
        gs = GridSearchCV(pipe, {"lr__C": C_GRID}, scoring="f1_macro", cv=GroupKFold(4), n_jobs=jobs)
        gs.fit(X[tr], y[tr], groups=g[tr])
        chosen.append(gs.best_index_)
        acc.append(accuracy_score(y[te], gs.predict(X[te])))
    return chosen, acc, time.perf_counter() - t0, time.process_time() - c0


def melodic_side(table, melodic, jobs):
    out = tempfile.mkdtemp(prefix="bench_nested_")
    exp = os.path.join(out, "nested.yaml")
    with open(exp, "w") as f:
        f.write("name: bench_nested\nseed: 1\ntable: %s\nprotocol: {kind: group_kfold, n_folds: 5}\n"
                "preprocessing: {scaler: standard}\n"
                "models:\n  - {name: logreg, model: logreg, params: {max_iter: 1000}}\n"
                "search:\n  metric: macro_f1\n  inner: {kind: group_kfold, n_folds: 4}\n"
                "  models:\n    logreg: {C: [%s]}\ntsne: {enabled: false}\n"
                % (os.path.abspath(table), ", ".join(repr(c) for c in C_GRID)))
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([melodic, "run", exp, "-o", out, "-j", str(jobs), "--quiet"], check=True,
                   stderr=subprocess.DEVNULL)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        chosen = [int(f["models/logreg/search/%d/chosen" % r][0]) for r in range(5)]
        acc = list(f["models/logreg/metrics/accuracy"][:])
    return chosen, acc, wall, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("table", nargs="?")
    ap.add_argument("--melodic", default="build/melodic")
    ap.add_argument("-j", type=int, default=1)
    a = ap.parse_args()
    table = a.table or find_table(a.melodic)
    X, y, g = load(table)
    print("table %s: %d clips x %d features, %d classes, %d groups; C in %s; outer GroupKFold(5), inner GroupKFold(4)"
          % (table, X.shape[0], X.shape[1], len(set(y)), len(set(g)), C_GRID))
    mc, ma, mt, mcpu = melodic_side(table, a.melodic, a.j)
    sc, sa, st, scpu = sklearn_side(X, y, g, a.j)
    for r in range(5):
        print("outer fold %d: chosen C %-6g (scikit-learn %-6g)  accuracy %.4f (%.4f)"
              % (r + 1, C_GRID[mc[r]], C_GRID[sc[r]], ma[r], sa[r]))
    same = mc == sc
    print("same choices: %s; mean accuracy melodic %.4f, scikit-learn %.4f" % ("yes" if same else "NO", np.mean(ma), np.mean(sa)))
    print("wall: melodic %.1f s, scikit-learn %.1f s (%d jobs each): %.1fx" % (mt, st, a.j, st / mt))
    if a.j == 1:   # with n_jobs > 1 joblib's workers hide scikit-learn's CPU time
        print("CPU: melodic %.2f s, scikit-learn %.2f s: %.1fx" % (mcpu, scpu, scpu / mcpu))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
