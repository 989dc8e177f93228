#!/usr/bin/env python3
"""Reference fixtures for the random forest and gradient boosting learners.
Run with /usr/bin/python3 from the repo root (after gen_sklearn_data.py).

tests/fixtures/trees_cart.h5  exact CART: DecisionTreeClassifier (= a forest of
    one tree, bootstrap off, max_features None) on continuous random features,
    predict_proba and feature importances for a few configurations. Each
    configuration is checked here to give the same predictions for 8 random
    states (so feature-order tie-breaking cannot matter).
tests/fixtures/trees_gbdt.h5  exact boosting: XGBClassifier(tree_method='hist')
    with few distinct feature values (< max_bin, so the quantile cuts are the
    values themselves), predict_proba for short runs on off-grid test points;
    and 10 rounds on breast_cancer (more distinct values than max_bin, fewer rows
    than 8 * max_bin so XGBoost's sketch is exact) to check the quantile cuts.
tests/fixtures/trees_acc.h5   accuracy of RandomForestClassifier (mean over
    random states 0..4) and XGBClassifier on sk_datasets.h5.
"""
import h5py
import numpy as np
import sklearn
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

F = "tests/fixtures/"
rng = np.random.RandomState(42)

# ---- exact CART ----
def cart_data(n):
    X = rng.randn(n, 6).astype(np.float32)
    s = X[:, 0] + 0.8 * X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + 0.3 * rng.randn(n)
    y = np.digitize(s, [-0.3, 1.2]).astype(np.int32)      # 3 classes, imbalanced
    return X, y

Xtr, ytr = cart_data(300)
Xte, _ = cart_data(200)
CART = [
    ("gini_d4", dict(criterion="gini", max_depth=4)),
    ("gini_d4_leaf10", dict(criterion="gini", max_depth=4, min_samples_leaf=10)),
    ("entropy_d5_split20", dict(criterion="entropy", max_depth=5, min_samples_split=20)),
    ("gini_balanced_d4", dict(criterion="gini", max_depth=4, class_weight="balanced")),
]
with h5py.File(F + "trees_cart.h5", "w") as f:
    f["X_train"], f["y_train"], f["X_test"] = Xtr, ytr, Xte
    f.attrs["sklearn"] = sklearn.__version__
    for name, kw in CART:
        probs = [DecisionTreeClassifier(random_state=s, **kw).fit(Xtr, ytr).predict_proba(Xte)
                 for s in range(8)]
        assert all(np.array_equal(probs[0], p) for p in probs), name + ": tie-dependent"
        t = DecisionTreeClassifier(random_state=0, **kw).fit(Xtr, ytr)
        rf = RandomForestClassifier(n_estimators=1, bootstrap=False, max_features=None,
                                    random_state=0, **kw).fit(Xtr, ytr)
        assert np.allclose(rf.predict_proba(Xte), probs[0]), name + ": RF(1 tree) differs"
        g = f.create_group(name)
        g["proba"] = probs[0].astype(np.float32)
        g["importances"] = t.feature_importances_
        g.attrs["node_count"] = t.tree_.node_count
        for k, v in kw.items():
            g.attrs[k] = v
        print("cart %-20s nodes %3d" % (name, t.tree_.node_count))

# ---- exact boosting ----
def grid_data(n, k):
    X = (rng.randint(0, 40, size=(n, 5)) / 8.0 - 2.0).astype(np.float32)
    s = X[:, 0] - X[:, 1] * 0.7 + np.sin(X[:, 2]) + 0.4 * rng.randn(n)
    y = (np.digitize(s, [-0.5, 0.7]) if k == 3 else (s > 0.1)).astype(np.int32)
    return X, y

Xg, yb = grid_data(400, 2)
y3 = np.digitize(Xg[:, 0] - 0.7 * Xg[:, 1] + np.sin(Xg[:, 2]) + 0.4 * rng.randn(400),
                 [-0.5, 0.7]).astype(np.int32)
Xgt = (rng.rand(150, 5) * 5.2 - 2.1).astype(np.float32)      # off the grid, beyond both ends
GB = [
    ("stump_binary", yb, dict(n_estimators=1, max_depth=1, learning_rate=0.3)),
    ("d2_multi_lambda2_mcw3", y3, dict(n_estimators=1, max_depth=2, reg_lambda=2.0,
                                      min_child_weight=3.0)),
    ("d3_binary_gamma_5r", yb, dict(n_estimators=5, max_depth=3, learning_rate=0.5, gamma=0.5)),
    ("d3_multi_5r", y3, dict(n_estimators=5, max_depth=3, reg_lambda=0.5, learning_rate=0.4)),
]
with h5py.File(F + "trees_gbdt.h5", "w") as f:
    f["X_train"], f["X_test"] = Xg, Xgt
    f["y_binary"], f["y_multi"] = yb, y3
    f.attrs["xgboost"] = xgb.__version__
    for name, y, kw in GB:
        m = xgb.XGBClassifier(tree_method="hist", max_bin=256, n_jobs=1, random_state=0, **kw)
        m.fit(Xg, y)
        g = f.create_group(name)
        g["proba"] = m.predict_proba(Xgt).astype(np.float32)
        g.attrs["labels"] = "y_binary" if y is yb else "y_multi"
        for k, v in kw.items():
            g.attrs[k] = v
        print("gbdt %-24s trees %d" % (name, len(m.get_booster().get_dump())))
    # more distinct values than bins: the quantile cuts (sketch pruning) must match too
    with h5py.File(F + "sk_datasets.h5", "r") as src:
        Xa, ya = src["breast_cancer/X_train"][:], src["breast_cancer/y_train"][:]
        Xb = src["breast_cancer/X_test"][:]
    for name, kw in (("bc_10r", dict(n_estimators=10)),):
        m = xgb.XGBClassifier(tree_method="hist", n_jobs=1, random_state=0, **kw).fit(Xa, ya)
        g = f.create_group(name)
        g["proba"] = m.predict_proba(Xb).astype(np.float32)
        for k, v in kw.items():
            g.attrs[k] = v
        print("gbdt %-24s (breast_cancer)" % name)

# ---- accuracy parity on the shared datasets ----
with h5py.File(F + "sk_datasets.h5", "r") as src, h5py.File(F + "trees_acc.h5", "w") as f:
    f.attrs["rf_params"] = "n_estimators=100 (defaults otherwise), mean over random_state 0..4"
    f.attrs["gbdt_params"] = "XGBClassifier(tree_method='hist', n_estimators=100) defaults"
    for name in ("digits", "wine", "breast_cancer"):
        Xa, ya = src[name]["X_train"][:], src[name]["y_train"][:]
        Xb, yb_ = src[name]["X_test"][:], src[name]["y_test"][:]
        rf = np.mean([(RandomForestClassifier(n_estimators=100, random_state=s, n_jobs=2)
                       .fit(Xa, ya).predict(Xb) == yb_).mean() for s in range(5)])
        gb = (xgb.XGBClassifier(tree_method="hist", n_estimators=100, n_jobs=2, random_state=0)
              .fit(Xa, ya).predict(Xb) == yb_).mean()
        f[name + "/rf_acc"] = np.float64(rf * 100)
        f[name + "/gbdt_acc"] = np.float64(gb * 100)
        print("acc %-14s rf %.2f  xgb %.2f" % (name, rf * 100, gb * 100))
