#!/usr/bin/env python3
"""Reference values for tests/test_smote.c from imbalanced-learn 0.10.0 and
scikit-learn 1.2.1. Run from the repo root with /usr/bin/python3; writes
tests/fixtures/smote_ref.h5.

  /counts : labels y where classes 1 and 2 tie at 7 rows and class 2 appears
      first (imblearn counts with np.unique, so ties go to the lower class),
      and per strategy the class counts after SMOTE(k_neighbors=5).fit_resample.
  /parity/<set> : indices into the sk_datasets.h5 training split that make it
      imbalanced; mean test accuracy over SMOTE seeds 0..4 of
      StandardScaler (fit on the imbalanced train) → SMOTE → SVC() (voting
      predict), and the same without SMOTE, plus the balanced accuracy.
"""
import sys
import h5py
import numpy as np
from imblearn.over_sampling import SMOTE
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/smote_ref.h5"
DATA = "tests/fixtures/sk_datasets.h5"

with h5py.File(OUT, "w") as f:
    f.attrs["source"] = "imbalanced-learn 0.10.0 SMOTE, scikit-learn 1.2.1 (tests/ref/gen_smote.py)"
    rng = np.random.default_rng(5)
    y = np.array([2] * 7 + [0] * 30 + [3] * 12 + [1] * 7, dtype=np.int32)
    y = np.concatenate([y[:1], rng.permutation(y[1:])])   # class 2 appears first
    X = rng.normal(size=(len(y), 3)).astype(np.float32)
    g = f.create_group("counts")
    g.create_dataset("y", data=y)
    # imblearn 0.10.0's parameter validation refuses 'minority' for SMOTE (its
    # constraint list has 'majority' instead), so 'minority' is checked in the
    # C test by hand: the smallest class raised to the majority's count.
    strategies = {"auto": "auto", "not_minority": "not minority",
                  "not_majority": "not majority", "all": "all", "targets": {1: 20, 3: 15}}
    for key, st in strategies.items():
        _, yr = SMOTE(sampling_strategy=st, k_neighbors=5, random_state=0).fit_resample(X, y)
        cnt = np.bincount(yr, minlength=4).astype(np.int64)
        g.create_dataset(key, data=cnt)
        # imblearn puts originals first, then new rows class by class, increasing
        assert (yr[:len(y)] == y).all() and (np.diff(yr[len(y):]) >= 0).all()
        print("%-13s" % key, cnt)

    par = f.create_group("parity")
    keep = {"breast_cancer": {0: 0.25}, "wine": {2: 0.3}, "digits": {5: 0.15, 6: 0.15, 7: 0.15}}
    with h5py.File(DATA, "r") as src:
        for name, frac in keep.items():
            s = src[name]
            Xtr, ytr, Xte, yte = (s[k][()] for k in ("X_train", "y_train", "X_test", "y_test"))
            r = np.random.default_rng(11)
            idx = []
            for c in np.unique(ytr):
                ic = np.flatnonzero(ytr == c)
                if c in frac:
                    ic = np.sort(r.choice(ic, size=max(8, int(len(ic) * frac[c])), replace=False))
                idx.append(ic)
            idx = np.sort(np.concatenate(idx)).astype(np.int32)
            Xi, yi = Xtr[idx], ytr[idx]
            sc = StandardScaler().fit(Xi)
            Zi, Zte = sc.transform(Xi), sc.transform(Xte)
            base = SVC().fit(Zi, yi).predict(Zte)
            accs, baccs = [], []
            for seed in range(5):
                Xr, yr = SMOTE(random_state=seed).fit_resample(Zi, yi)
                pred = SVC().fit(Xr, yr).predict(Zte)
                accs.append((pred == yte).mean())
                baccs.append(balanced_accuracy_score(yte, pred))
            g = par.create_group(name)
            g.create_dataset("train_idx", data=idx)
            g.attrs["acc_smote"] = float(np.mean(accs))
            g.attrs["bacc_smote"] = float(np.mean(baccs))
            g.attrs["acc_plain"] = float((base == yte).mean())
            print("%-14s n %4d counts %s acc plain %.4f smote %.4f (bal %.4f)" % (
                name, len(idx), np.bincount(yi), (base == yte).mean(), np.mean(accs), np.mean(baccs)))
