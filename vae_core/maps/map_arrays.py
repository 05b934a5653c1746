"""Plain-array pieces of the latent maps (`vae_core.maps.projection`): input checks, a stratified
sample, PCA by SVD, the local inverse of a map, and neighbour preservation (a map's quality).

Imports: the app builds a PCA map the moment a page opens, so that path imports numpy and
``scipy.spatial`` only, never scikit-learn (``sklearn.decomposition`` took ~2.0 s to import and
``sklearn.neighbors`` ~1.3 s in a fresh interpreter on the 2-core machine, ``scipy.spatial``
~0.4 s; with torch already loaded sklearn was the largest part of the Explore page's cold
start). PCA is ``numpy.linalg.svd`` of the centred codes, the computation scikit-learn's
``PCA(svd_solver="full")`` does, with its sign rule (``svd_flip(u_based_decision=False)``: each
axis points so that its largest-magnitude loading is positive), so maps look as before. Nearest
neighbours on the map (2-D/3-D: the local inverse and distance-from-data) come from
``scipy.spatial.cKDTree``: exact Euclidean k-NN, nearest first, and the right tool in few
dimensions. ``neighbour_preservation`` also searches the latent codes (16-D and more, where a k-d
tree degrades to slower than brute force), so it keeps scikit-learn's ``NearestNeighbors``,
imported when called; openTSNE and umap-learn (which import scikit-learn themselves) are
imported inside their fits (`vae_core.maps.tsne_umap`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree


def as_codes(name: str, x: Any, n_dims: int | None = None) -> np.ndarray:
    """Validate a (N, D) float array of finite values; return it as float64."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if n_dims is not None and arr.shape[1] != n_dims:
        raise ValueError(f"{name} must have {n_dims} columns, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"{name} contains NaN or Inf ({int(bad.sum())} values; first in row {row})")
    return arr


def neighbour_preservation(high: np.ndarray, low: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each point's k nearest neighbours in `high` that are also among its k nearest in `low`."""
    high = as_codes("high", high)
    low = as_codes("low", low)
    n = high.shape[0]
    if low.shape[0] != n:
        raise ValueError(f"low must have as many rows as high ({n}), got shape {low.shape}")
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} points, got k={k!r}")
    a = _knn_without_self(high, k)  # (N, k)
    b = _knn_without_self(low, k)  # (N, k)
    # Each row of a and b holds distinct indices, so a repeat in their sorted union is a shared one.
    both = np.sort(np.hstack([a, b]), axis=1)  # (N, 2k)
    shared = (both[:, 1:] == both[:, :-1]).sum(axis=1)  # (N,)
    return float(shared.mean() / k)


def _knn(tree: cKDTree, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices (M, k) of the k nearest points of `tree` to each of `points`, nearest first."""
    dist, idx = tree.query(points, k=k)
    # cKDTree drops the k axis for k=1; keep (M, k) always.
    return dist.reshape(len(points), k), idx.reshape(len(points), k)


def _knn_without_self(x: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of each row's k nearest other rows."""
    # scikit-learn here, imported on use: x is often the latent codes (16-D and more), where a k-d
    # tree is no better than brute force (20,000 x 16-D, k=10: cKDTree 8.5 s, sklearn 0.8 s).
    from sklearn.neighbors import NearestNeighbors

    n = x.shape[0]
    idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
    # With duplicate rows the point itself need not come first; drop it wherever it is, or
    # drop the farthest neighbour when a duplicate pushed it out of the list.
    drop = idx == np.arange(n)[:, None]  # (N, k+1)
    drop[~drop.any(axis=1), -1] = True
    return idx[~drop].reshape(n, k)


def stratified_sample(n: int, size: int, labels: np.ndarray | None, seed: int | None) -> np.ndarray:
    """Sorted indices of a random sample of `size` out of `n`, proportional per label when labels are given."""
    rng = np.random.default_rng(seed)
    if size >= n:
        return np.arange(n)
    if labels is None:
        return np.sort(rng.choice(n, size=size, replace=False))
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    # Largest-remainder rounding keeps the total exactly `size`; every class keeps at least one
    # point so that a rare class still anchors its region of the map.
    quota = counts * (size / n)
    take = np.floor(quota).astype(int)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: size - take.sum()]] += 1
    take = np.clip(take, 1, counts)
    picked = [rng.choice(np.flatnonzero(inverse == c), size=t, replace=False) for c, t in enumerate(take)]
    return np.sort(np.concatenate(picked))


class PCA:
    """PCA of (N, D) codes by SVD of the centred data: what ``sklearn.decomposition.PCA(k,
    svd_solver="full")`` computes, with its sign convention, without importing scikit-learn."""

    def __init__(self, n_components: int):
        self.n_components_ = int(n_components)

    def fit(self, x: np.ndarray) -> "PCA":
        self.mean_ = x.mean(axis=0)  # (D,)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)  # vt (min(N, D), D)
        # sklearn's svd_flip(u_based_decision=False): each row of vt gets the sign that makes its
        # largest-magnitude entry positive (the first such entry on ties), so the axes are deterministic.
        top = np.argmax(np.abs(vt), axis=1)
        vt = vt * np.sign(vt[np.arange(vt.shape[0]), top])[:, None]
        k = self.n_components_
        self.components_ = np.ascontiguousarray(vt[:k])  # (k, D), orthonormal rows
        self.explained_variance_ = s[:k] ** 2 / max(x.shape[0] - 1, 1)  # (k,)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(M, D) -> (M, k) coordinates on the principal axes."""
        return (x - self.mean_) @ self.components_.T

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """(M, k) -> (M, D): the point of the principal plane through the mean (exact inverse on it)."""
        return y @ self.components_ + self.mean_


class LocalInverse:
    """Inverse-distance weighted mean of the codes of the K nearest embedded points."""

    def __init__(self, embedding: np.ndarray, codes: np.ndarray, k: int = 8, seed: int | None = 0):
        self.embedding = np.asarray(embedding, dtype=np.float64)  # (N, k_map)
        self.codes = np.asarray(codes, dtype=np.float64)  # (N, D)
        assert self.embedding.shape[0] == self.codes.shape[0]
        n = self.embedding.shape[0]
        self.k = max(1, min(int(k), n))
        self.tree = cKDTree(self.embedding)
        self.scale = self._typical_spacing(seed)

    def _typical_spacing(self, seed: int | None) -> float:
        """Median distance from an embedded point to its nearest other embedded point."""
        n = self.embedding.shape[0]
        if n < 2:
            return 1.0
        # A 10k sample pins the median well and keeps fit cheap at 100k+ points.
        rows = np.arange(n) if n <= 10_000 else np.random.default_rng(seed).choice(n, 10_000, replace=False)
        dist, _ = _knn(self.tree, self.embedding[rows], 2)  # (S, 2), column 0 is self
        d = dist[:, 1]
        d = d[d > 0]  # exact duplicates say nothing about spacing
        return float(np.median(d)) if d.size else 1.0

    def distance(self, points: np.ndarray) -> np.ndarray:
        """(M,) distance to the nearest embedded point, in units of the typical spacing."""
        dist, _ = _knn(self.tree, points, 1)
        return dist[:, 0] / self.scale

    def __call__(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = _knn(self.tree, points, self.k)  # (M, K), nearest first
        on_point = dist[:, 0] <= 1e-12 * self.scale
        w = 1.0 / np.maximum(dist, 1e-300)  # (M, K)
        w /= w.sum(axis=1, keepdims=True)
        z = np.einsum("mk,mkd->md", w, self.codes[idx])  # (M, D)
        # Sitting on an embedded point means "this code": return it exactly, not a blend.
        z[on_point] = self.codes[idx[on_point, 0]]
        return z, dist[:, 0] / self.scale
