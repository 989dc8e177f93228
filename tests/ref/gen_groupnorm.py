#!/usr/bin/python3
"""gen_groupnorm.py — numpy reference for learn/groupnorm.c (tests/test_groupnorm.c).

Per-group standardisation, written from its definition: each row minus the
mean of its group's rows, divided by their population standard deviation
(a deviation below 1e-6 counts as 1), statistics in float64.
  all/         clips = 0: the statistics of every row of the group
  loo/         clips >= group size: the statistics of the group's other rows
Data: 30 rows x 5 float32 features in groups of 10, 12 and 8 rows (shuffled
order); column 3 is constant within group 1, to exercise the deviation rule.
Writes tests/fixtures/groupnorm.h5. Run from the repository root.
"""
import h5py
import numpy as np

rng = np.random.default_rng(7)
groups = np.array([0] * 10 + [1] * 12 + [2] * 8, dtype=np.int32)
rng.shuffle(groups)
X = (rng.normal(size=(30, 5)) * np.array([1, 10, 0.1, 3, 100]) + np.array([0, 5, -2, 1, 50])).astype(np.float32)
X[groups == 1, 3] = 4.5
X[:, 2] = X[:, 2] * np.float32(5) + np.float32(1e6)   # sd ~0.5 at 1e6: a one-pass variance is off by ~1e-4


def standardise(x, rows):
    s = rows.astype(np.float64)
    mean = s.mean(0)
    sd = s.std(0)                      # numpy: two passes, population (ddof 0)
    sd[sd < 1e-6] = 1.0
    return ((x.astype(np.float64) - mean) / sd).astype(np.float32)


all_ = np.stack([standardise(X[i], X[groups == groups[i]]) for i in range(30)])
loo = np.stack([standardise(X[i], X[(groups == groups[i]) & (np.arange(30) != i)]) for i in range(30)])
with h5py.File("tests/fixtures/groupnorm.h5", "w") as f:
    f["X"] = X
    f["groups"] = groups
    f["all"] = all_
    f["loo"] = loo
print("tests/fixtures/groupnorm.h5", all_.shape)
