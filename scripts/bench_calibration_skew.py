#!/usr/bin/python3
"""bench_calibration_skew.py — how much per-speaker calibration depends on
what the speaker's calibration clips sound like.

The experiment speech_calibrated_speaker draws each clip's 20 calibration
clips at random from the same RAVDESS actor's other clips, which cover every
emotion evenly; a real user's recordings do not. This script extracts the
mn04_layers table with `melodic extract` and, with scikit-learn's logistic
regression (the experiment's model and C) trained on evenly calibrated
speakers, tests speaker-independently (GroupKFold by actor, 5 folds) with the
test speaker calibrated by 20 clips drawn three ways: evenly (as the
experiment), half of them neutral or calm, and from only three of the eight
emotions. Prints accuracy and quadrant accuracy (the 4Q truth table of
bench_congruence.py) for each.
Usage: /usr/bin/python3 scripts/bench_calibration_skew.py [--bin build/melodic]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_congruence import TRUTH  # noqa: E402


def calibrate(X, groups, emo8, mode, rng, k=20):
    Z = np.empty_like(X, dtype=np.float64)
    n = len(X)
    for i in range(n):
        idx = np.where((groups == groups[i]) & (np.arange(n) != i))[0]
        if mode == "even":
            sub = rng.choice(idx, k, replace=False)
        elif mode == "half neutral/calm":
            nc, rest = idx[np.isin(emo8[idx], [1, 2])], idx[~np.isin(emo8[idx], [1, 2])]
            m = min(k // 2, len(nc))
            sub = np.concatenate([rng.choice(nc, m, replace=False), rng.choice(rest, k - m, replace=False)])
        else:  # three emotions only
            pool = idx[np.isin(emo8[idx], rng.choice(np.arange(1, 9), 3, replace=False))]
            sub = rng.choice(pool, min(k, len(pool)), replace=False)
        s = X[sub].astype(np.float64)
        sd = s.std(0)
        sd[sd < 1e-6] = 1.0
        Z[i] = (X[i] - s.mean(0)) / sd
    return Z


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/melodic")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "layers.h5")
        subprocess.run([a.bin, "extract", "experiments/speech_layers_speaker.yaml", "-o", out, "-j", "2"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with h5py.File(out, "r") as f:
            X = f["features"][:]
            y = f["labels"][:].astype(int)
            groups = f["groups"][:]
            names = [s.decode() if isinstance(s, bytes) else s for s in f["label_names"][:]]
            paths = [s.decode() if isinstance(s, bytes) else s for s in f["paths"][:]]
    emo8 = np.array([int(os.path.basename(p).split("-")[2]) for p in paths])
    Q = ["Q1", "Q2", "Q3", "Q4"]
    M = np.array([[TRUTH[l] == q for q in Q] for l in names], float)
    qt = np.array([Q.index(TRUTH[names[t]]) for t in y])
    rng = np.random.default_rng(0)
    Ztr = calibrate(X, groups, emo8, "even", rng)
    print("logistic regression (C 0.003) on mn04_layers; training speakers calibrated evenly; "
          "test speakers calibrated with 20 clips drawn:")
    for mode in ["even", "half neutral/calm", "three emotions"]:
        Zte = calibrate(X, groups, emo8, mode, rng)
        P = np.zeros((len(y), len(names)))
        for tr, te in GroupKFold(5).split(X, y, groups):
            sc = StandardScaler().fit(Ztr[tr])
            clf = LogisticRegression(C=0.003, max_iter=1000).fit(sc.transform(Ztr[tr]), y[tr])
            P[te] = clf.predict_proba(sc.transform(Zte[te]))
        print(f"  {mode:18s} accuracy {np.mean(P.argmax(1) == y):.3f}, quadrant accuracy "
              f"{np.mean((P @ M).argmax(1) == qt):.3f}")


if __name__ == "__main__":
    main()
