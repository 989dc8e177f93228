#!/usr/bin/env python3
"""Reference values for tests/test_logreg.c from scikit-learn 1.2.1
LogisticRegression(penalty='l2', solver='lbfgs', multi_class='multinomial',
tol=1e-10, max_iter=10000) and scipy 1.10 L-BFGS-B. Run from the repo root
with /usr/bin/python3; writes tests/fixtures/logreg_ref.h5 (about 150 kB).

Each group (wine, breast_cancer, rand7_C0.01, rand7_C10, balanced4, wine_noint):
  X (n, d) float32 (standardised where noted), y (n) int32,
  attrs C, fit_intercept, balanced, n_iter_sk
  coef_sk (K, d), intercept_sk (K): sklearn's fit; for two classes sklearn keeps
      one row c and predicts softmax(-z, z): stored here as the two rows (-c, c)
  proba_sk (n, K): sklearn predict_proba on X
  obj_sk: the objective at sklearn's solution, from sklearn's own
      LinearModelLoss (sum of weighted cross-entropies + ||W||^2 / (2C))
  coef_opt, intercept_opt, obj_opt, grad_opt: a tighter optimum, scipy
      L-BFGS-B restarted from sklearn's solution with ftol=0, gtol=1e-12
      (sklearn's fit stops on scipy's relative-decrease test, ftol 2.2e-9)
sklearn is fitted on the float32 values widened to float64, as our C code does.
"""
import sys

import h5py
import numpy as np
from scipy import optimize
from sklearn._loss.loss import HalfMultinomialLoss
from sklearn.datasets import load_breast_cancer, load_wine, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model._linear_loss import LinearModelLoss
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/logreg_ref.h5"


def std32(X):
    return StandardScaler().fit_transform(X).astype(np.float32)


def case(f, name, X, y, C, fit_intercept=True, balanced=False):
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = y.astype(np.int32)
    X64 = X.astype(np.float64)
    clf = LogisticRegression(C=C, tol=1e-10, max_iter=10000, fit_intercept=fit_intercept,
                             class_weight="balanced" if balanced else None,
                             multi_class="multinomial", solver="lbfgs").fit(X64, y)
    K = len(clf.classes_)
    coef = clf.coef_ if K > 2 else np.vstack([-clf.coef_, clf.coef_])
    icpt = clf.intercept_ if K > 2 else np.array([-clf.intercept_[0], clf.intercept_[0]])
    if not fit_intercept:
        icpt = np.zeros(K)
    sw = np.ones(len(y))
    if balanced:
        sw = compute_class_weight("balanced", classes=np.unique(y), y=y)[y]
    loss = LinearModelLoss(base_loss=HalfMultinomialLoss(n_classes=K), fit_intercept=fit_intercept)
    w_sk = np.hstack([coef, icpt[:, None]]) if fit_intercept else coef.copy()
    obj_sk = loss.loss(w_sk, X64, y.astype(np.float64), sw, 1.0 / C)
    # polish: the same objective, scipy L-BFGS-B from sklearn's solution, no ftol stop
    w0 = w_sk.ravel(order="F")
    res = optimize.minimize(loss.loss_gradient, w0, method="L-BFGS-B", jac=True,
                            args=(X64, y.astype(np.float64), sw, 1.0 / C, 1),
                            options={"ftol": 0.0, "gtol": 1e-12, "maxiter": 100000, "maxfun": 100000})
    w_opt = res.x.reshape((K, -1), order="F")
    obj_opt, g_opt = loss.loss_gradient(w_opt, X64, y.astype(np.float64), sw, 1.0 / C)
    g = f.create_group(name)
    g.create_dataset("X", data=X)
    g.create_dataset("y", data=y)
    g.attrs["C"] = float(C)
    g.attrs["fit_intercept"] = np.int64(fit_intercept)
    g.attrs["balanced"] = np.int64(balanced)
    g.attrs["n_iter_sk"] = np.int64(clf.n_iter_[0])
    g.create_dataset("coef_sk", data=coef)
    g.create_dataset("intercept_sk", data=icpt)
    g.create_dataset("proba_sk", data=clf.predict_proba(X64))
    g.attrs["obj_sk"] = float(obj_sk)
    g.create_dataset("coef_opt", data=w_opt[:, :X.shape[1]])
    g.create_dataset("intercept_opt", data=w_opt[:, -1] if fit_intercept else np.zeros(K))
    g.attrs["obj_opt"] = float(obj_opt)
    g.attrs["grad_opt"] = float(np.abs(g_opt).max())
    dc = np.abs(w_opt[:, :X.shape[1]] - coef).max() / max(1.0, np.abs(coef).max())
    print("%-14s n=%d d=%d K=%d C=%g: sklearn %d iterations, obj %.10g, polished obj %.10g "
          "(max|grad| %.1e), rel coef change %.1e" % (name, X.shape[0], X.shape[1], K, C, clf.n_iter_[0],
                                                      obj_sk, obj_opt, np.abs(g_opt).max(), dc))


with h5py.File(OUT, "w") as f:
    Xw, yw = load_wine(return_X_y=True)
    case(f, "wine", std32(Xw), yw, 1.0)
    case(f, "wine_noint", std32(Xw), yw, 0.1, fit_intercept=False)
    Xb, yb = load_breast_cancer(return_X_y=True)
    rs = np.random.RandomState(0)
    sel = np.sort(rs.choice(len(yb), 300, replace=False))
    case(f, "breast_cancer", std32(Xb)[sel], yb[sel], 1.0)
    Xr, yr = make_classification(n_samples=300, n_features=50, n_informative=20, n_redundant=10,
                                 n_classes=7, n_clusters_per_class=1, class_sep=1.0, random_state=3)
    case(f, "rand7_C0.01", Xr, yr, 0.01)
    case(f, "rand7_C10", Xr, yr, 10.0)
    Xi, yi = make_classification(n_samples=200, n_features=20, n_informative=8, n_redundant=4,
                                 n_classes=4, n_clusters_per_class=1, weights=[0.6, 0.25, 0.1, 0.05],
                                 class_sep=1.0, random_state=5)
    case(f, "balanced4", Xi, yi, 1.0, balanced=True)
