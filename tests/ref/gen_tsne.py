#!/usr/bin/python3
"""Reference fixture for src/eval/tsne from scikit-learn 1.2.1.

Run from the repository root: /usr/bin/python3 tests/ref/gen_tsne.py
Writes tests/fixtures/tsne_digits.h5 (~100 kB):
  X            (300, 50) float32: the first 300 sklearn digits, PCA'd to 50 dims
  kl           sklearn TSNE(perplexity=30, init='pca', learning_rate='auto',
               method='barnes_hut', angle=0.5).kl_divergence_ (BH estimate)
  n_iter       its n_iter_
  p_rowsum     (300) float32: row sums of sklearn's joint P (kNN + binary search + symmetrise)
  p_nnz        (300) int32: non-zeros per row of that P
  init         (300, 2) float32: sklearn's scaled PCA initialisation
  Y            (300, 2) float32: a random embedding (std 3)
  grad_exact   (300, 2) float32, kl_exact_at_Y: _kl_divergence_bh at Y with angle 0
  grad_bh      (300, 2) float32, kl_bh_at_Y: the same with angle 0.5
"""
import h5py
import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.manifold._t_sne import _joint_probabilities_nn, _kl_divergence_bh
from sklearn.neighbors import NearestNeighbors

X = load_digits().data[:300].astype(np.float64)
X = PCA(n_components=50, random_state=0).fit_transform(X).astype(np.float32)
n = X.shape[0]

tsne = TSNE(n_components=2, perplexity=30.0, init="pca", learning_rate="auto",
            method="barnes_hut", angle=0.5, random_state=0, n_jobs=1)
tsne.fit_transform(X)

# P as TSNE._fit builds it
k = min(n - 1, int(3.0 * 30.0 + 1))
knn = NearestNeighbors(algorithm="auto", n_neighbors=k).fit(X)
D = knn.kneighbors_graph(mode="distance")
D.data **= 2
P = _joint_probabilities_nn(D, 30.0, 0)

pca = PCA(n_components=2, svd_solver="randomized", random_state=np.random.RandomState(0))
init = pca.fit_transform(X).astype(np.float32)
init = init / np.std(init[:, 0]) * 1e-4

rng = np.random.RandomState(1)
Y = (3.0 * rng.standard_normal((n, 2))).astype(np.float32)
kl0, g0 = _kl_divergence_bh(Y.ravel(), P, 1, n, 2, angle=0.0)
kl5, g5 = _kl_divergence_bh(Y.ravel(), P, 1, n, 2, angle=0.5)

with h5py.File("tests/fixtures/tsne_digits.h5", "w") as f:
    f.attrs["sklearn"] = sklearn.__version__
    f["X"] = X
    f["kl"] = float(tsne.kl_divergence_)
    f["n_iter"] = int(tsne.n_iter_)
    f["p_rowsum"] = np.asarray(P.sum(axis=1)).ravel().astype(np.float32)
    f["p_nnz"] = np.diff(P.indptr).astype(np.int32)
    f["init"] = init.astype(np.float32)
    f["Y"] = Y
    f["grad_exact"] = g0.reshape(n, 2).astype(np.float32)
    f["kl_exact_at_Y"] = float(kl0)
    f["grad_bh"] = g5.reshape(n, 2).astype(np.float32)
    f["kl_bh_at_Y"] = float(kl5)
print("sklearn KL %.6f after %d iterations" % (tsne.kl_divergence_, tsne.n_iter_))
