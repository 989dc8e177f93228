#!/usr/bin/env python3
"""Reference for tests/test_search.c: scikit-learn 1.2's nested, group-aware
hyperparameter search on a small synthetic table. Run from the repo root with
/usr/bin/python3; writes tests/fixtures/search_nested.h5 (about 20 kB).

Outer protocol GroupKFold(4) by speaker; inside each outer training part
(rows in table order, as GroupKFold yields them) GridSearchCV(Pipeline(
StandardScaler, LogisticRegression), grid {C: [1e-4, 0.01, 1.0],
class_weight: [None, 'balanced']}, scoring f1_macro, cv=GroupKFold(4))
with the speakers of that part as groups. Every speaker has the same number
of clips of each class, so class_weight 'balanced' weighs every class 1 and
ties None exactly: the choice then exercises the tie rule (the first
candidate in ParameterGrid order: keys sorted, the last varying fastest).

Datasets: X (n, d) float32, y (n) int32, groups (n) int32,
  chosen (R) int32: best_index_ per outer round,
  scores (R, C, F) float64: split<f>_test_score of each candidate,
  mean (R, C) float64: mean_test_score, candidates (C) strings.
The features are float32; sklearn widens them after the scaler, as ours do.
"""
import sys

import h5py
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/search_nested.h5"
GRID = {"C": [1e-4, 0.01, 1.0], "class_weight": [None, "balanced"]}


def make_data(rng, n_groups=12, per_class=5, k=3, d=10):
    X, y, g = [], [], []
    for s in range(n_groups):
        offset = rng.normal(0, 0.8, d)               # the speaker's voice
        for c in range(k):
            for _ in range(per_class):
                x = rng.normal(0, 1.0, d) + offset
                x[c] += 1.2                          # class signal in 3 of the features
                x[3 + c] += 0.6 * rng.normal()
                X.append(x), y.append(c), g.append(101 + s)
    return np.array(X, np.float32), np.array(y, np.int32), np.array(g, np.int32)


def cand_text(p):
    cw = p["class_weight"]
    return "{C: %s, class_weight: %s}" % (repr(p["C"]), "none" if cw is None else cw)


def main():
    rng = np.random.default_rng(19)
    X, y, g = make_data(rng)
    pipe = Pipeline([("scaler", StandardScaler()), ("lr", LogisticRegression(max_iter=100, tol=1e-4))])
    grid = {"lr__" + k: v for k, v in GRID.items()}
    chosen, scores, means = [], [], []
    names = None
    for tr, te in GroupKFold(4).split(X, y, g):
        gs = GridSearchCV(pipe, grid, scoring="f1_macro", cv=GroupKFold(4), refit=True)
        gs.fit(X[tr], y[tr], groups=g[tr])
        C = len(gs.cv_results_["params"])
        names = [cand_text({k[4:]: v for k, v in p.items()}) for p in gs.cv_results_["params"]]
        scores.append([[gs.cv_results_["split%d_test_score" % f][c] for f in range(4)] for c in range(C)])
        means.append(gs.cv_results_["mean_test_score"])
        chosen.append(gs.best_index_)
        print("outer fold: chosen %d %s, mean inner F1 %s" % (gs.best_index_, names[gs.best_index_],
                                                              np.round(gs.cv_results_["mean_test_score"], 4)))
    with h5py.File(OUT, "w") as f:
        f["X"], f["y"], f["groups"] = X, y, g
        f["chosen"] = np.array(chosen, np.int32)
        f["scores"] = np.array(scores, np.float64)
        f["mean"] = np.array(means, np.float64)
        f["candidates"] = np.array(names, dtype=h5py.string_dtype())
    print("wrote", OUT)


if __name__ == "__main__":
    main()
