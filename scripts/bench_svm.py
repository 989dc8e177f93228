#!/usr/bin/env python3
"""Benchmark: scikit-learn 1.2.1 SVC and imbalanced-learn 0.10.0 SMOTE against
our mm_svm / mm_smote on the same tables, same hyperparameters (SVC defaults:
rbf, C=1, gamma='scale', tol=1e-3, cache 200 MB; SMOTE k=5, 'auto').
Tables from make_classification: 1,440 x 384 (8 classes, like RAVDESS
embeddings), 900 x 100 (4 classes, like 4Q features), 10,000 x 100 for SVC
(50,000 makes the reference SVC too slow for a routine run; probability off
there), and 50,000 x 100 imbalanced (60/25/10/5 %) for SMOTE. Train/test
75/25. Usage: scripts/bench_svm (builds the driver, then runs this).
"""
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
from imblearn.over_sampling import SMOTE
from sklearn.datasets import make_classification
from sklearn.svm import SVC

driver = sys.argv[1]
threads = [1, 2]


def table(n, d, k, seed, weights=None):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=min(d, 24), n_redundant=8,
                               n_classes=k, n_clusters_per_class=2, weights=weights, class_sep=1.2,
                               random_state=seed)
    return X.astype(np.float32), y.astype(np.int32)


svm_sets = [("t1440x384", 1440, 384, 8, True), ("t900x100", 900, 100, 4, True),
            ("t10000x100", 10000, 100, 4, False)]
ref = {}
path = os.path.join(tempfile.gettempdir(), "mm_bench_svm_%d.h5" % os.getpid())
with h5py.File(path, "w") as f:
    for name, n, d, k, prob in svm_sets:
        X, y = table(n, d, k, 1)
        ntr = n * 3 // 4
        g = f.create_group(name)
        g.attrs["kind"] = "svm"
        g.attrs["probability"] = np.int64(prob)
        for key, v in (("X_train", X[:ntr]), ("y_train", y[:ntr]), ("X_test", X[ntr:]), ("y_test", y[ntr:])):
            g.create_dataset(key, data=v)
        for p in ([False, True] if prob else [False]):
            t0 = time.perf_counter()
            clf = SVC(probability=p, random_state=0).fit(X[:ntr], y[:ntr])
            t1 = time.perf_counter()
            pred = clf.predict_proba(X[ntr:]).argmax(1) if p else clf.predict(X[ntr:])
            t2 = time.perf_counter()
            ref[("svm", name, int(p))] = (t1 - t0, t2 - t1, float((pred == y[ntr:]).mean()))
            print("sklearn SVC %-11s probability=%d fit %.3f s predict %.3f s acc %.4f" %
                  (name, p, t1 - t0, t2 - t1, ref[("svm", name, int(p))][2]), flush=True)
    X, y = table(50000, 100, 4, 2, weights=[0.6, 0.25, 0.1, 0.05])
    g = f.create_group("s50000x100")
    g.attrs["kind"] = "smote"
    g.create_dataset("X", data=X)
    g.create_dataset("y", data=y)
    t0 = time.perf_counter()
    Xr, yr = SMOTE(random_state=0).fit_resample(X, y)
    ref[("smote", "s50000x100")] = time.perf_counter() - t0
    print("imblearn SMOTE s50000x100 %.3f s -> %d rows" % (ref[("smote", "s50000x100")], len(yr)), flush=True)

ours = {}
for nt in threads:
    out = subprocess.run([driver, path, str(nt)] + [x[0] for x in svm_sets] + ["s50000x100"], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        kind, *kv = line.split()
        kv = dict(x.split("=") for x in kv)
        if kind == "svm":
            ours[("svm", kv["name"], int(kv["prob"]), nt)] = (float(kv["fit"]), float(kv["predict"]), float(kv["acc"]))
        else:
            ours[("smote", kv["name"], nt)] = float(kv["time"])
os.unlink(path)

print("\n%-12s %-5s %-3s | %-22s | %-22s | %-9s %-9s | %s" % ("table", "prob", "thr", "fit s (ref/ours/ratio)",
                                                          "predict s (ref/ours/x)", "acc ref", "acc ours", ""))
for name, n, d, k, prob in svm_sets:
    for p in ([0, 1] if prob else [0]):
        rf, rp, ra = ref[("svm", name, p)]
        for nt in threads:
            of, op, oa = ours[("svm", name, p, nt)]
            print("%-12s %-5d %-3d | %6.3f %6.3f %6.1fx | %6.3f %6.3f %6.1fx | %.4f    %.4f" %
                  (name, p, nt, rf, of, rf / of, rp, op, rp / max(op, 1e-9), ra, oa))
r = ref[("smote", "s50000x100")]
for nt in threads:
    o = ours[("smote", "s50000x100", nt)]
    print("SMOTE s50000x100 threads %d: imblearn %.3f s, ours %.3f s, %.1fx" % (nt, r, o, r / o))
