#!/usr/bin/env python3
"""Reference values for tests/test_svm.c and tests/test_scaler.c, from
scikit-learn 1.2.1 (SVC wraps LIBSVM 3.x; StandardScaler). Run from the repo
root with /usr/bin/python3; writes tests/fixtures/svm_ref.h5 (float32 inputs).

Groups:
  /binary_<kernel>, /multi_rbf, /multi_balanced : X_train, y_train, X_test, params (attrs),
      dec (n_test, n_pairs) LIBSVM one-vs-one decision values (positive = the
      lower class; sklearn's binary decision_function is negated back),
      n_support (per class)
  /proba : SVC(probability=True) predict_proba on X_test, probA, probB
  /accuracy/<set> : StandardScaler + SVC(probability=True, random_state=0) on the
      tests/fixtures/sk_datasets.h5 splits: acc_predict, acc_proba
  /scaler : X (with a constant and a near-constant column), mean, scale, Z
"""
import sys
import h5py
import numpy as np
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/svm_ref.h5"
DATA = "tests/fixtures/sk_datasets.h5"


def problem(n, d, k, seed, weights=None):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=min(d, 4), n_redundant=0,
                               n_classes=k, n_clusters_per_class=1, flip_y=0.05, class_sep=1.0,
                               weights=weights, random_state=seed)
    X = X.astype(np.float32)
    ntr = n * 3 // 4
    return X[:ntr], y[:ntr].astype(np.int32), X[ntr:], y[ntr:].astype(np.int32)


def ovo_dec(clf, X, k):
    if k == 2:
        return -clf.decision_function(X).reshape(-1, 1)
    return clf.decision_function(X)


with h5py.File(OUT, "w") as f:
    f.attrs["source"] = "scikit-learn 1.2.1 SVC / StandardScaler (tests/ref/gen_svm.py)"
    cases = [("binary_rbf", 2, dict(kernel="rbf", C=2.0, gamma=0.15)),
             ("binary_linear", 2, dict(kernel="linear", C=0.5)),
             ("binary_poly", 2, dict(kernel="poly", C=1.0, gamma=0.2, degree=3, coef0=1.0)),
             ("binary_sigmoid", 2, dict(kernel="sigmoid", C=1.0, gamma=0.05, coef0=-0.5)),
             ("multi_rbf", 4, dict(kernel="rbf", C=3.0, gamma=0.1)),
             ("multi_balanced", 3, dict(kernel="rbf", C=2.0, gamma=0.2, class_weight="balanced"))]
    for name, k, params in cases:
        w = [0.6, 0.3, 0.1] if "balanced" in name else None
        Xtr, ytr, Xte, yte = problem(200, 6, k, 7 + k, w)
        clf = SVC(decision_function_shape="ovo", shrinking=True, tol=1e-3, **params)
        clf.fit(Xtr.astype(np.float64), ytr)
        g = f.create_group(name)
        for key, v in (("X_train", Xtr), ("y_train", ytr), ("X_test", Xte), ("y_test", yte)):
            g.create_dataset(key, data=v)
        g.create_dataset("dec", data=ovo_dec(clf, Xte.astype(np.float64), k))
        g.create_dataset("n_support", data=clf.n_support_.astype(np.int32))
        for key, v in params.items():
            g.attrs[key] = v
        print(name, "n_support", clf.n_support_, "acc", (clf.predict(Xte) == yte).mean())

    Xtr, ytr, Xte, yte = problem(240, 5, 3, 21)
    clf = SVC(kernel="rbf", C=1.0, gamma=0.2, probability=True, random_state=0).fit(Xtr, ytr)
    g = f.create_group("proba")
    for key, v in (("X_train", Xtr), ("y_train", ytr), ("X_test", Xte), ("y_test", yte)):
        g.create_dataset(key, data=v)
    g.create_dataset("proba", data=clf.predict_proba(Xte))
    g.create_dataset("probA", data=clf.probA_)
    g.create_dataset("probB", data=clf.probB_)
    g.attrs["C"] = 1.0
    g.attrs["gamma"] = 0.2

    acc = f.create_group("accuracy")
    with h5py.File(DATA, "r") as src:
        for name in ("digits", "wine", "breast_cancer"):
            s = src[name]
            Xtr, ytr, Xte, yte = (s[k][()] for k in ("X_train", "y_train", "X_test", "y_test"))
            sc = StandardScaler().fit(Xtr)
            clf = SVC(probability=True, random_state=0).fit(sc.transform(Xtr), ytr)
            Zte = sc.transform(Xte)
            a1 = float((clf.predict(Zte) == yte).mean())
            a2 = float((clf.predict_proba(Zte).argmax(1) == yte).mean())
            g = acc.create_group(name)
            g.attrs["acc_predict"] = a1
            g.attrs["acc_proba"] = a2
            g.attrs["n_sv"] = int(clf.n_support_.sum())
            print("%-14s acc predict %.4f proba %.4f n_sv %d" % (name, a1, a2, clf.n_support_.sum()))

    rng = np.random.default_rng(3)
    X = rng.normal(2.0, 3.0, size=(50, 6)).astype(np.float32)
    X[:, 2] = 7.5                       # constant column → scale 1
    X[:, 4] = 1e6                       # constant, large mean
    X[:, 5] = X[:, 5] * 1e-3 + 100.0    # small spread, large mean
    sc = StandardScaler().fit(X)
    g = f.create_group("scaler")
    g.create_dataset("X", data=X)
    g.create_dataset("mean", data=sc.mean_)
    g.create_dataset("scale", data=sc.scale_)
    g.create_dataset("Z", data=sc.transform(X).astype(np.float32))
