#!/usr/bin/env python3
"""Export scikit-learn's bundled digits, wine and breast-cancer sets with fixed
stratified splits to tests/fixtures/sk_datasets.h5, shared by the learner tests
(trees, boosting, SVM, SMOTE). Run with /usr/bin/python3 from the repo root.

Layout: /<name>/X_train (n, d) float32, /<name>/y_train (n) int32,
/<name>/X_test, /<name>/y_test; group attributes n_classes, n_features,
source. Split: train_test_split(test_size=0.25, stratify=y, random_state=0).
Features are the raw values (no scaling). Datasets are gzip-compressed.
"""
import sys
import h5py
import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/sk_datasets.h5"
SETS = [("digits", load_digits), ("wine", load_wine), ("breast_cancer", load_breast_cancer)]

with h5py.File(OUT, "w") as f:
    f.attrs["format"] = "melodic-test-datasets"
    f.attrs["split"] = "train_test_split(test_size=0.25, stratify=y, random_state=0)"
    for name, loader in SETS:
        X, y = loader(return_X_y=True)
        X = X.astype(np.float32)
        y = y.astype(np.int32)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
        g = f.create_group(name)
        for k, v in (("X_train", Xtr), ("y_train", ytr), ("X_test", Xte), ("y_test", yte)):
            g.create_dataset(k, data=np.ascontiguousarray(v), compression="gzip",
                             compression_opts=9, shuffle=True)
        g.attrs["n_classes"] = np.int64(len(np.unique(y)))
        g.attrs["n_features"] = np.int64(X.shape[1])
        g.attrs["source"] = "sklearn.datasets.load_%s (scikit-learn 1.2.1)" % name
        print("%-14s train %4d test %4d d %3d classes %d" % (name, len(ytr), len(yte), X.shape[1],
                                                           len(np.unique(y))))
