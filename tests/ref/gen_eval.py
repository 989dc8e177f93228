#!/usr/bin/python3
"""Reference fixtures for src/eval (splits, metrics, curves) from scikit-learn 1.2.1.

Run from the repository root with Debian's interpreter:
    /usr/bin/python3 tests/ref/gen_eval.py
Writes tests/fixtures/eval_splits.h5 and tests/fixtures/eval_metrics.h5 (a few kB each).
Variable-length cases are stored as one group per case: case_000, case_001, ...
"""
import warnings

import h5py
import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, average_precision_score,
                             balanced_accuracy_score, confusion_matrix,
                             precision_recall_curve,
                             precision_recall_fscore_support, roc_auc_score,
                             roc_curve)
from sklearn.model_selection import (GroupKFold, LeaveOneGroupOut,
                                     StratifiedGroupKFold, StratifiedKFold)

warnings.simplefilter("ignore")
rng = np.random.RandomState(20240611)


def folds_of(splitter, n, y, groups):
    fold = np.full(n, -1, dtype=np.int32)
    for f, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), y, groups)):
        fold[test] = f
    assert (fold >= 0).all()
    return fold


def ravdess_like(n_actors=24):
    """24 speakers x 60 clips: neutral 4, the 7 other emotions 8 each."""
    y, g = [], []
    for a in range(1, n_actors + 1):
        for c in range(8):
            m = 4 if c == 0 else 8
            y += [c] * m
            g += [a] * m
    return np.array(y, np.int32), np.array(g, np.int32)


def gen_splits(path):
    with h5py.File(path, "w") as f:
        f.attrs["sklearn"] = sklearn.__version__
        f.attrs["numpy"] = np.__version__
        # np.argsort (default introsort) on tie-heavy int64 arrays
        a = f.create_group("argsort")
        for i, n in enumerate([1, 2, 5, 16, 17, 24, 40, 61, 100, 300]):
            v = rng.randint(0, 1 + n // 4 if i % 2 else 3, size=n).astype(np.int64)
            c = a.create_group("case_%03d" % i)
            c["v"] = v
            c["idx"] = np.argsort(v).astype(np.int64)
        # GroupKFold
        cases = []
        y, g = ravdess_like()
        cases.append((g, 5))
        cases.append((g, 4))
        cases.append((g[rng.permutation(len(g))], 3))
        for n, ng, k in [(50, 7, 3), (200, 24, 5), (120, 10, 10), (90, 30, 4)]:
            sizes = rng.randint(1, 6, size=ng)          # many equal sizes: ties
            gg = rng.permutation(np.repeat(rng.choice(1000, ng, replace=False), sizes))
            cases.append((gg.astype(np.int32), k))
        gk = f.create_group("group_kfold")
        for i, (gg, k) in enumerate(cases):
            c = gk.create_group("case_%03d" % i)
            c["groups"] = gg
            c.attrs["k"] = k
            c["fold"] = folds_of(GroupKFold(k), len(gg), None, gg)
        # StratifiedKFold without shuffle (classes numbered by first appearance)
        sk = f.create_group("stratified_kfold")
        scases = [(y, 5), (y, 10)]
        for n, nc, k in [(37, 3, 3), (100, 5, 5), (64, 4, 7), (200, 8, 5)]:
            yy = rng.choice(np.array([7, 2, 9, 4, 0, 5, 1, 3])[:nc], size=n,
                            p=rng.dirichlet(np.ones(nc) * 3))
            cnt = np.bincount(yy, minlength=10)
            if cnt[cnt > 0].min() < k:                   # keep every class >= k members
                yy = np.concatenate([yy, np.repeat(np.unique(yy), k)])
            scases.append((rng.permutation(yy).astype(np.int32), k))
        for i, (yy, k) in enumerate(scases):
            c = sk.create_group("case_%03d" % i)
            c["y"] = yy
            c.attrs["k"] = k
            c["fold"] = folds_of(StratifiedKFold(k), len(yy), yy, None)
        # StratifiedGroupKFold without shuffle
        sg = f.create_group("stratified_group_kfold")
        gcases = [(y, g, 5), (y, g, 4)]
        for n, nc, ng, k in [(60, 3, 12, 3), (150, 4, 20, 5), (300, 8, 24, 5), (80, 2, 9, 4)]:
            gg = rng.randint(0, ng, size=n) * 3 + 11
            yy = rng.randint(0, nc, size=n)
            yy[:nc * k] = np.repeat(np.arange(nc), k)
            gcases.append((yy.astype(np.int32), gg.astype(np.int32), k))
        for i, (yy, gg, k) in enumerate(gcases):
            c = sg.create_group("case_%03d" % i)
            c["y"] = yy
            c["groups"] = gg
            c.attrs["k"] = k
            c["fold"] = folds_of(StratifiedGroupKFold(k), len(yy), yy, gg)
        # LeaveOneGroupOut
        gg = np.array([5, 3, 3, 9, 5, 1, 9, 9], np.int32)
        c = f.create_group("logo")
        c["groups"] = gg
        c["fold"] = folds_of(LeaveOneGroupOut(), len(gg), None, gg)


def gen_metrics(path):
    """Label metrics and one-vs-rest curves on random and edge cases."""
    cases = []
    # (y_true, y_pred, proba, n_classes, note)
    n, nc = 60, 4
    yt = rng.randint(0, nc, n)
    p = rng.dirichlet(np.ones(nc), n).astype(np.float32)
    cases.append((yt, p.argmax(1), p, nc, "random"))
    # ties in scores: probabilities rounded to a coarse grid
    n, nc = 80, 3
    yt = rng.randint(0, nc, n)
    p = np.round(rng.dirichlet(np.ones(nc) * 0.7, n) * 4) / 4
    p = np.where(p.sum(1, keepdims=True) == 0, 1.0 / nc, p).astype(np.float32)
    yp = rng.randint(0, nc, n)
    cases.append((yt, yp, p, nc, "score ties"))
    # a class never predicted (class 2), informative scores
    n, nc = 50, 4
    yt = rng.randint(0, nc, n)
    p = rng.dirichlet(np.ones(nc), n)
    p[np.arange(n), yt] += 0.5
    p = (p / p.sum(1, keepdims=True)).astype(np.float32)
    yp = p.argmax(1)
    yp[yp == 2] = 0
    cases.append((yt, yp, p, nc, "class 2 never predicted"))
    # a class absent from y_true (class 1) but predicted; class 3 absent from both
    n, nc = 40, 5
    yt = rng.choice([0, 2, 4], n)
    p = rng.dirichlet(np.ones(nc), n).astype(np.float32)
    yp = rng.choice([0, 1, 2, 4], n)
    cases.append((yt, yp, p, nc, "class 1 absent from y_true, class 3 absent from both"))
    # perfect predictions, all scores equal for one class
    n, nc = 30, 3
    yt = np.arange(n) % nc
    p = np.full((n, nc), 0.2, np.float32)
    p[np.arange(n), yt] = 0.6
    p[:, 1] = 0.5
    cases.append((yt, yt.copy(), p, nc, "perfect labels, constant column"))
    # binary with heavy ties
    n, nc = 25, 2
    yt = rng.randint(0, 2, n)
    s = rng.choice([0.1, 0.5, 0.9], n).astype(np.float32)
    p = np.stack([1 - s, s], 1).astype(np.float32)
    cases.append((yt, (s > 0.5).astype(int), p, nc, "binary ties"))

    with h5py.File(path, "w") as f:
        f.attrs["sklearn"] = sklearn.__version__
        for i, (yt, yp, p, nc, note) in enumerate(cases):
            c = f.create_group("case_%03d" % i)
            c.attrs["note"] = note
            c.attrs["n_classes"] = nc
            c["y_true"] = yt.astype(np.int32)
            c["y_pred"] = yp.astype(np.int32)
            c["proba"] = p.astype(np.float32)
            c["accuracy"] = accuracy_score(yt, yp)
            c["balanced_accuracy"] = balanced_accuracy_score(yt, yp)
            pr, rc, f1, _ = precision_recall_fscore_support(yt, yp, average="macro",
                                                            zero_division=0)
            c["macro"] = np.array([pr, rc, f1])
            pr, rc, f1, _ = precision_recall_fscore_support(yt, yp, average="weighted",
                                                            zero_division=0)
            c["weighted"] = np.array([pr, rc, f1])
            pr, rc, f1, sup = precision_recall_fscore_support(
                yt, yp, labels=np.arange(nc), average=None, zero_division=0)
            c["precision"], c["recall"], c["f1"] = pr, rc, f1
            c["support"] = sup.astype(np.int64)
            c["confusion"] = confusion_matrix(yt, yp, labels=np.arange(nc)).astype(np.int64)
            auc = np.full(nc, np.nan)
            ap = np.full(nc, np.nan)
            for k in range(nc):
                yb = (yt == k).astype(np.int32)
                sc = p[:, k]
                g = c.create_group("class_%d" % k)
                fpr, tpr, thr = roc_curve(yb, sc)
                g["fpr"], g["tpr"], g["roc_thr"] = fpr, tpr, thr.astype(np.float64)
                if 0 < yb.sum() < len(yb):
                    auc[k] = roc_auc_score(yb, sc)
                pre, rec, thr = precision_recall_curve(yb, sc)
                g["pr_precision"], g["pr_recall"] = pre, rec
                g["pr_thr"] = thr.astype(np.float64)
                ap[k] = average_precision_score(yb, sc)
            c["auc"], c["ap"] = auc, ap
            # multiclass macro AUC where sklearn defines it (every class present,
            # rows summing to 1 within np.allclose)
            macro = np.nan
            if nc > 2:
                try:
                    macro = roc_auc_score(yt, p.astype(np.float64), multi_class="ovr",
                                          average="macro")
                except ValueError:
                    pass
            c["macro_auc_ovr"] = macro


if __name__ == "__main__":
    gen_splits("tests/fixtures/eval_splits.h5")
    gen_metrics("tests/fixtures/eval_metrics.h5")
