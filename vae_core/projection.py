"""Maps of the latent space (PCA, t-SNE, UMAP) and their way back to latent codes.

The app draws encoded means ``mu`` (N, D) on a 2-D or 3-D map and lets a person drag a point on
it; the decoder needs a latent code for that point, so every map here has an ``inverse``:

- PCA: exact. A map point is a point of the PCA plane through the data mean
  (``mean + point @ components``); for D <= n_components it is the code itself.
- t-SNE and UMAP: *local*. Neither has an inverse, so a map point becomes the inverse-distance
  weighted mean of the codes of its K nearest embedded points. Away from the data this is a
  guess, so every inverse also returns how far the point is from encoded data (1 ~ among the
  data, >> 1 off-manifold) for the app to warn with.

Why openTSNE, measured (``python benchmarks/tsne_choice.py``: sklearn digits, 1,797 points
PCA-whitened to 20-D, perplexity 30, seed 0, n_jobs=2 both, each library's defaults otherwise
(sklearn 1000 iterations, openTSNE 250 + 500), best of 2 interleaved runs, on the shared 2-core
machine under load from other work, so compare within the table):

    library          wall s   CPU s   neighbour preservation@10   trustworthiness@10
    sklearn TSNE      43.7    43.6                        0.586                0.989
    openTSNE          12.9    12.7                        0.585                0.987
    (UMAP 4.7 s warm, 0.486 / 0.975; PCA 0.03 s, 0.044 / 0.627. An earlier, more loaded run:
    sklearn 79.2 s, openTSNE 49.8 s, same quality figures.)

Same map quality in 0.30x the time (0.63x in the more loaded run), and openTSNE also does what
sklearn's TSNE cannot: ``TSNEEmbedding.transform`` places new points into a finished map (needed
for points beyond ``max_fit_points`` and for new codes), and its callbacks report progress and
can stop a fit.

Scale: PCA always fits on every point. t-SNE/UMAP fit on at most ``max_fit_points`` (a random
sample, stratified by label when labels are given) and the rest are embedded with ``transform``.

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
imported inside their fits.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from scipy.spatial import cKDTree

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne", "umap")
N_COMPONENTS = (2, 3)


@dataclass(frozen=True)
class Progress:
    """What a ``progress`` callback receives; the callback returns True to stop.

    phase: "early_exaggeration" and "embedding" (the two t-SNE optimisation phases; iteration
    counts 1..n_iter within each, every ``progress_every`` iterations), "transform" (embedding
    the points beyond ``max_fit_points``: iteration = points placed so far, n_iter = how many),
    "umap" (called once before and once after; umap-learn cannot be interrupted, so the
    return value is ignored there), or "pca" (once, when done). kl_divergence is t-SNE's
    current KL(P||Q), NaN elsewhere.
    Stopping keeps the map as it is: t-SNE returns its current (less converged) layout, and points
    not yet transformed are placed at the median of their nearest fitted neighbours.
    """

    phase: str
    iteration: int
    n_iter: int
    kl_divergence: float = float("nan")


ProgressFn = Callable[[Progress], Optional[bool]]


# ---------------------------------------------------------------------------------------------
# validation helpers


def _as_codes(name: str, x: Any, n_dims: int | None = None) -> np.ndarray:
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
    high = _as_codes("high", high)
    low = _as_codes("low", low)
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


# ---------------------------------------------------------------------------------------------
# PCA and the local inverse: plain arrays in, plain arrays out


class _PCA:
    """PCA of (N, D) codes by SVD of the centred data: what ``sklearn.decomposition.PCA(k,
    svd_solver="full")`` computes, with its sign convention, without importing scikit-learn."""

    def __init__(self, n_components: int):
        self.n_components_ = int(n_components)

    def fit(self, x: np.ndarray) -> "_PCA":
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


class _LocalInverse:
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


# ---------------------------------------------------------------------------------------------


class Projection:
    """A 2-D/3-D map of latent codes (PCA, t-SNE or UMAP) that can place new codes and invert map points.

    Parameters (stored as given; checked in ``fit``, as in scikit-learn):
        method: "pca", "tsne" or "umap".
        n_components: 2 or 3.
        seed: random seed (t-SNE/UMAP initialisation, sampling). t-SNE and UMAP are deterministic
            given the seed (UMAP then runs single-threaded).
        perplexity: t-SNE's effective number of neighbours; needs N > 3 * perplexity points.
        n_iter: t-SNE iterations after the 250 early-exaggeration ones.
        n_neighbors, min_dist: UMAP's locality and packing.
        max_fit_points: t-SNE/UMAP fit on at most this many points, the rest are transformed in.
        inverse_k: how many nearest embedded points the local inverse averages.
        n_jobs: threads for openTSNE.
        progress: callable receiving a ``Progress``; returning True stops a t-SNE fit.
        progress_every: t-SNE iterations between progress calls.

    After ``fit``: ``embedding_`` (N, n_components) float32, ``fit_indices_`` (indices fitted on
    directly), ``stopped_early_``, ``inverse_is_exact`` (True for PCA only).
    """

    def __init__(
        self,
        method: str = "pca",
        n_components: int = 2,
        seed: int | None = 0,
        *,
        perplexity: float = 30.0,
        n_iter: int = 500,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        max_fit_points: int = 20_000,
        inverse_k: int = 8,
        n_jobs: int = 1,
        progress: ProgressFn | None = None,
        progress_every: int = 25,
    ):
        self.method = method
        self.n_components = n_components
        self.seed = seed
        self.perplexity = perplexity
        self.n_iter = n_iter
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.max_fit_points = max_fit_points
        self.inverse_k = inverse_k
        self.n_jobs = n_jobs
        self.progress = progress
        self.progress_every = progress_every

    def __repr__(self) -> str:
        return f"Projection(method={self.method!r}, n_components={self.n_components!r}, seed={self.seed!r})"

    @property
    def inverse_is_exact(self) -> bool:
        """True when ``inverse`` is exact (PCA); False for the local nearest-codes inverse (t-SNE, UMAP)."""
        return self.method == "pca"

    @property
    def inverse_kind(self) -> str:
        """'exact' or 'local': a label the app can show beside a decoded map point."""
        return "exact" if self.inverse_is_exact else "local"

    # --- parameter checks --------------------------------------------------------------------

    def _check_params(self, n: int) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        nc = self.n_components
        if isinstance(nc, bool) or not isinstance(nc, (int, np.integer)) or nc not in N_COMPONENTS:
            raise ValueError(f"n_components must be 2 or 3, got {self.n_components!r}")
        if not (isinstance(self.max_fit_points, (int, np.integer)) and self.max_fit_points >= 10):
            raise ValueError(f"max_fit_points must be an integer >= 10, got {self.max_fit_points!r}")
        if not (isinstance(self.inverse_k, (int, np.integer)) and self.inverse_k >= 1):
            raise ValueError(f"inverse_k must be an integer >= 1, got {self.inverse_k!r}")
        if self.progress is not None and not callable(self.progress):
            raise ValueError(f"progress must be callable or None, got {self.progress!r}")
        n_fit = min(n, self.max_fit_points)
        if self.method == "pca" and n < 2:
            raise ValueError(f"mu must hold at least 2 points for PCA, got N={n}")
        if self.method == "tsne":
            p = self.perplexity
            if not (isinstance(p, (int, float, np.number)) and math.isfinite(p) and p > 0):
                raise ValueError(f"perplexity must be a positive number, got {p!r}")
            # openTSNE builds the affinities from the 3 * perplexity nearest neighbours.
            if n_fit <= 3 * p:
                raise ValueError(
                    f"perplexity={p!r} is too large for N={n_fit} points (t-SNE needs N > 3 * perplexity "
                    f"= {3 * p:g}); use perplexity <= {(n_fit - 1) / 3:.1f} or more points"
                )
            if not (isinstance(self.n_iter, (int, np.integer)) and self.n_iter >= 0):
                raise ValueError(f"n_iter must be an integer >= 0, got {self.n_iter!r}")
            if not (isinstance(self.progress_every, (int, np.integer)) and self.progress_every >= 1):
                raise ValueError(f"progress_every must be an integer >= 1, got {self.progress_every!r}")
        if self.method == "umap":
            k = self.n_neighbors
            if not (isinstance(k, (int, np.integer)) and 2 <= k < n_fit):
                raise ValueError(
                    f"n_neighbors must be an integer in [2, N-1] = [2, {n_fit - 1}] for N={n_fit} points, got {k!r}"
                )
            if not (isinstance(self.min_dist, (int, float, np.number)) and 0 <= self.min_dist):
                raise ValueError(f"min_dist must be a number >= 0, got {self.min_dist!r}")
            # umap-learn also needs enough points for its spectral initialisation.
            if n_fit <= self.n_components + 1:
                raise ValueError(f"mu must hold more than {self.n_components + 1} points for UMAP, got N={n_fit}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "embedding_"):
            raise RuntimeError("this Projection is not fitted yet; call fit(mu) first")

    def _report(self, event: Progress) -> bool:
        return bool(self.progress(event)) if self.progress is not None else False

    # --- fit ---------------------------------------------------------------------------------

    def fit(self, mu: np.ndarray, labels: np.ndarray | None = None) -> "Projection":
        """Build the map of latent means mu (N, D); labels (N,) only stratify the fit sample."""
        mu = _as_codes("mu", mu)
        n, d = mu.shape
        self._check_params(n)
        if labels is not None and np.asarray(labels).shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {np.asarray(labels).shape}")
        self.n_features_in_ = d
        self.stopped_early_ = False

        if self.method == "pca":
            self.fit_indices_ = np.arange(n)
            emb = self._fit_pca(mu)
        else:
            self.fit_indices_ = stratified_sample(n, self.max_fit_points, labels, self.seed)
            sample = mu[self.fit_indices_]  # (n_fit, D)
            fit_emb = self._fit_tsne(sample) if self.method == "tsne" else self._fit_umap(sample)
            emb = np.empty((n, self.n_components))
            emb[self.fit_indices_] = fit_emb
            rest = np.setdiff1d(np.arange(n), self.fit_indices_)
            if rest.size:
                log.info("%s: fitted on %d points, embedding the other %d",
                         self.method, self.fit_indices_.size, rest.size)
                emb[rest] = self._transform_in_chunks(mu[rest])

        self.embedding_ = emb.astype(np.float32)  # (N, k)
        # The local inverse is built for every method: PCA uses it for the off-manifold distance.
        self._local = _LocalInverse(self.embedding_, mu, k=self.inverse_k, seed=self.seed)
        return self

    def fit_transform(self, mu: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Fit, then return ``embedding_`` (N, n_components) float32."""
        return self.fit(mu, labels).embedding_

    def _fit_pca(self, mu: np.ndarray) -> np.ndarray:
        n, d = mu.shape
        # A latent space with fewer dimensions than the map (D=2 shown in 3-D) gets zero extra axes.
        k = min(self.n_components, d, n)
        self._pca = _PCA(k).fit(mu)
        emb = np.zeros((n, self.n_components))
        emb[:, :k] = self._pca.transform(mu)
        self._report(Progress("pca", 1, 1))
        return emb

    def _fit_tsne(self, x: np.ndarray) -> np.ndarray:
        import openTSNE  # imported here: ~1.5 s cold, only paid by t-SNE users

        n = x.shape[0]
        # openTSNE's FFT gradient is 1-D/2-D only; Barnes-Hut works in 3-D (slower at large N).
        grad = "bh" if self.n_components == 3 else "auto"
        tsne = openTSNE.TSNE(
            n_components=self.n_components,
            perplexity=self.perplexity,
            random_state=self.seed,
            n_jobs=self.n_jobs,
            negative_gradient_method=grad,
        )
        emb = tsne.prepare_initial(x)
        # The same two phases as openTSNE.TSNE.fit, run here so progress can name the phase.
        phases = [
            ("early_exaggeration", tsne.early_exaggeration_iter, tsne.early_exaggeration, tsne.initial_momentum),
            ("embedding", self.n_iter, tsne.exaggeration, tsne.final_momentum),
        ]
        for phase, n_iter, exaggeration, momentum in phases:
            if n_iter == 0:
                continue
            callbacks = None
            if self.progress is not None:
                # openTSNE calls back with (iteration, KL divergence, embedding).
                callbacks = [lambda it, err, _e, phase=phase, n_iter=n_iter:
                             self._report(Progress(phase, it, n_iter, float(err)))]
            try:
                emb = emb.optimize(
                    n_iter=n_iter,
                    exaggeration=exaggeration,
                    momentum=momentum,
                    callbacks=callbacks,
                    callbacks_every_iters=self.progress_every,
                    inplace=True,
                    propagate_exception=True,
                )
            except openTSNE.tsne.OptimizationInterrupt as stop:
                log.info("t-SNE stopped by the progress callback during %s", phase)
                emb = stop.final_embedding
                self.stopped_early_ = True
                break
        # openTSNE's transform re-centres the reference map in place on its bounding box; doing it
        # now makes later transforms leave the map (and embedding_) where it is.
        emb -= (np.max(emb, axis=0) + np.min(emb, axis=0)) / 2
        self._tsne = emb  # TSNEEmbedding (n_fit, k), kept for transform
        log.info("t-SNE of %d points done, stopped early: %s", n, self.stopped_early_)
        return np.asarray(emb)

    def _fit_umap(self, x: np.ndarray) -> np.ndarray:
        import umap  # imported here: ~1.5 s cold plus ~10 s numba JIT on the first fit in a process

        self._report(Progress("umap", 0, 1))
        self._umap = umap.UMAP(
            n_components=self.n_components,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            random_state=self.seed,
            # A seed makes umap-learn single-threaded anyway; saying so avoids its warning.
            n_jobs=1 if self.seed is not None else -1,
        ).fit(x)
        self._report(Progress("umap", 1, 1))
        return np.asarray(self._umap.embedding_, dtype=np.float64)

    def _transform_in_chunks(self, x: np.ndarray, chunk: int = 5_000) -> np.ndarray:
        """Embed the points left out of the fit, reporting progress between chunks."""
        out = np.empty((x.shape[0], self.n_components))
        for start in range(0, x.shape[0], chunk):
            part = slice(start, start + chunk)
            out[part] = self._transform_fitted(x[part], optimise=not self.stopped_early_)
            done = min(start + chunk, x.shape[0])
            if self.method == "tsne" and self._report(Progress("transform", done, x.shape[0])):
                self.stopped_early_ = True
        return out

    # --- transform / inverse -----------------------------------------------------------------

    def _transform_fitted(self, x: np.ndarray, optimise: bool = True) -> np.ndarray:
        if self.method == "pca":
            emb = np.zeros((x.shape[0], self.n_components))
            emb[:, : self._pca.n_components_] = self._pca.transform(x)
            return emb
        if self.method == "tsne":
            anchor = np.array(self._tsne[0])  # transform re-centres the map; undo any shift below
            # n_iter=0 (after a stop) leaves each point at the median of its nearest fitted neighbours.
            new = self._tsne.transform(x, n_iter=250 if optimise else 0)
            return np.asarray(new) + (anchor - np.asarray(self._tsne[0]))
        return np.asarray(self._umap.transform(x), dtype=np.float64)

    def transform(self, new_mu: np.ndarray) -> np.ndarray:
        """Place new latent codes (M, D) on the finished map -> (M, n_components) float32."""
        self._check_fitted()
        x = _as_codes("new_mu", new_mu, self.n_features_in_)
        return self._transform_fitted(x).astype(np.float32)

    def inverse(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map points (M, n_components) -> latent codes z (M, D) float32 and distance-from-data (M,) float32.

        PCA: exact (the code in the PCA plane through the mean). t-SNE/UMAP: local, the
        inverse-distance weighted mean of the ``inverse_k`` nearest embedded points' codes (a
        point exactly on an embedded point returns its code). distance: map distance to the
        nearest embedded point over the median nearest-neighbour spacing of the map (~1 among
        the data, >> 1 off-manifold).
        """
        self._check_fitted()
        pts = _as_codes("points", points, self.n_components)
        if self.method == "pca":
            z = self._pca.inverse_transform(pts[:, : self._pca.n_components_])  # (M, D)
            dist = self._local.distance(pts)
        else:
            z, dist = self._local(pts)
        return z.astype(np.float32), dist.astype(np.float32)
