"""Maps of the latent space (PCA, t-SNE, UMAP) and their way back to latent codes.

The app draws encoded means ``mu`` (N, D) on a 2-D or 3-D map and lets a person drag a point on
it; the decoder needs a latent code for that point, so every map here has an ``inverse``:

- PCA: exact. A map point is a point of the PCA plane through the data mean
  (``mean + point @ components``); for D <= n_components it is the code itself.
- t-SNE and UMAP: *local*. Neither has an inverse, so a map point becomes the inverse-distance
  weighted mean of the codes of its K nearest embedded points. Away from the data this is a
  guess, so every inverse also returns how far the point is from encoded data (1 ~ among the
  data, >> 1 off-manifold) for the app to warn with.

t-SNE and UMAP come from openTSNE and umap-learn (`vae_core.maps.tsne_umap`, which says why openTSNE:
measured against scikit-learn's TSNE, the same maps in 0.30x the time, a ``transform`` that places new
points into a finished map, and callbacks that report progress and can stop a fit).

Scale: PCA always fits on every point. t-SNE/UMAP fit on at most ``max_fit_points`` (default
10,000: a random sample, stratified by label when labels are given) and the rest are placed into
the finished map with the fitted model's own ``transform`` (openTSNE's ``TSNEEmbedding.transform``,
umap-learn's ``UMAP.transform``), in chunks with progress. ``fitted_`` says which points were
fitted (True) and which placed (False), so a map can say so.

Imports: the app builds a PCA map the moment a page opens, so that path imports numpy and
``scipy.spatial`` only, never scikit-learn (`vae_core.maps.map_arrays` says why and how); openTSNE and
umap-learn are imported inside their fits (`vae_core.maps.tsne_umap`).

Progress (`vae_core.progress`): ``progress`` receives a ``Progress`` event per step of the fit,
``what`` naming the phase: "early_exaggeration" and "embedding" (the two t-SNE optimisation phases;
done counts 1..total iterations within each, every ``progress_every`` iterations; info has
``kl_divergence``, t-SNE's current KL(P||Q)), "transform" (placing the points beyond
``max_fit_points``: done = points placed so far, total = how many), umap-learn's own stages:
"umap_graph" (0 of 1 at the start, 1 of 1 when the nearest-neighbour graph and the initial layout
are done; umap-learn reports nothing inside it) then "umap_epochs" (done of total layout epochs, read
from umap-learn's epoch bar), or "pca" (once, when done). ``fraction`` weighs the phases by a rough
cost model (points x iterations for t-SNE; for UMAP the measured share of its graph stage,
``UMAP_GRAPH_SHARE``). Returning True stops a t-SNE fit and keeps the map as it is: t-SNE returns its current
(less converged) layout, and points not yet transformed are placed at the median of their nearest
fitted neighbours. UMAP's events cannot stop it (the return value is ignored there).
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from .map_arrays import PCA, LocalInverse, as_codes, stratified_sample
from ..progress import Progress, ProgressFn, Spans, report
from .tsne_umap import EARLY_EXAGGERATION_ITER, TRANSFORM_ITER, fit_tsne, fit_umap, tsne_place

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne", "umap")
N_COMPONENTS = (2, 3)
MAX_FIT_POINTS = 10_000  # t-SNE/UMAP fit sample; the rest are placed with transform
# UMAP's share of its fit before its layout epochs start (the nearest-neighbour graph, the fuzzy graph
# and the spectral initial layout), of the whole fit without placing: 98 s of 125 s for 10,000 points
# in 16-D on the shared 2-core machine, the first fit of a process (pynndescent's JIT included).
UMAP_GRAPH_SHARE = 0.75


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
        max_fit_points: t-SNE/UMAP fit on at most this many points, the rest are placed by transform.
        inverse_k: how many nearest embedded points the local inverse averages.
        n_jobs: threads for openTSNE.
        progress: a ``vae_core.progress`` callback (see the module docstring); True stops a t-SNE fit.
        progress_every: t-SNE iterations between progress events.

    After ``fit``: ``embedding_`` (N, n_components) float32, ``fit_indices_`` (sorted indices fitted
    on directly), ``fitted_`` (N,) bool (True: fitted on; False: placed by ``transform``; all True for
    PCA and for N <= max_fit_points), ``stopped_early_``, ``inverse_is_exact`` (True for PCA only).
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
        max_fit_points: int = MAX_FIT_POINTS,
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

    def _phases(self, n_fit: int, n_rest: int) -> Spans:
        """Each phase's share of the whole fit for the events' fraction: a rough cost model, not measured
        (t-SNE: points x iterations, a point placed costing about what a point fitted does per iteration;
        UMAP: points)."""
        if self.method == "pca":
            return Spans({"pca": 1.0})
        if self.method == "tsne":
            return Spans({"early_exaggeration": n_fit * EARLY_EXAGGERATION_ITER, "embedding": n_fit * self.n_iter,
                          "transform": n_rest * TRANSFORM_ITER})
        # UMAP: its graph before its layout epochs, as measured (UMAP_GRAPH_SHARE); a point placed
        # after costs about what a point fitted does
        return Spans({"umap_graph": UMAP_GRAPH_SHARE * n_fit, "umap_epochs": (1 - UMAP_GRAPH_SHARE) * n_fit,
                      "transform": n_rest})

    def _report(self, what: str, done: int, total: int, **info: Any) -> bool:
        """Send one progress event; True when the callback asks to stop."""
        if self.progress is None:
            return False
        return report(self.progress, Progress(what, done, total, self._where(what, done / max(total, 1)), info))

    # --- fit ---------------------------------------------------------------------------------

    def fit(self, mu: np.ndarray, labels: np.ndarray | None = None) -> "Projection":
        """Build the map of latent means mu (N, D); labels (N,) only stratify the fit sample."""
        mu = as_codes("mu", mu)
        n, d = mu.shape
        self._check_params(n)
        if labels is not None and np.asarray(labels).shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {np.asarray(labels).shape}")
        self.n_features_in_ = d
        self.stopped_early_ = False

        if self.method == "pca":
            self.fit_indices_ = np.arange(n)
            self._where = self._phases(n, 0)
            emb = self._fit_pca(mu)
        else:
            self.fit_indices_ = stratified_sample(n, self.max_fit_points, labels, self.seed)
            self._where = self._phases(self.fit_indices_.size, n - self.fit_indices_.size)
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
        self.fitted_ = np.zeros(n, dtype=bool)  # (N,) True: fitted on, False: placed by transform
        self.fitted_[self.fit_indices_] = True
        # The local inverse is built for every method: PCA uses it for the off-manifold distance.
        self._local = LocalInverse(self.embedding_, mu, k=self.inverse_k, seed=self.seed)
        return self

    def fit_transform(self, mu: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Fit, then return ``embedding_`` (N, n_components) float32."""
        return self.fit(mu, labels).embedding_

    def _fit_pca(self, mu: np.ndarray) -> np.ndarray:
        n, d = mu.shape
        # A latent space with fewer dimensions than the map (D=2 shown in 3-D) gets zero extra axes.
        k = min(self.n_components, d, n)
        self._pca = PCA(k).fit(mu)
        emb = np.zeros((n, self.n_components))
        emb[:, :k] = self._pca.transform(mu)
        self._report("pca", 1, 1)
        return emb

    def _fit_tsne(self, x: np.ndarray) -> np.ndarray:
        def event(phase: str, iteration: int, n_iter: int, kl: float) -> bool:
            return self._report(phase, iteration, n_iter, kl_divergence=kl)

        self._tsne, stopped = fit_tsne(x, n_components=self.n_components, perplexity=self.perplexity,
                                       seed=self.seed, n_jobs=self.n_jobs, n_iter=self.n_iter,
                                       every=self.progress_every, event=event if self.progress is not None else None)
        self.stopped_early_ = stopped
        return np.asarray(self._tsne)  # the TSNEEmbedding (n_fit, k) is kept for transform

    def _fit_umap(self, x: np.ndarray) -> np.ndarray:
        # umap-learn's own stages and epochs (vae_core.maps.tsne_umap.fit_umap); it cannot be interrupted
        self._umap = fit_umap(x, n_components=self.n_components, n_neighbors=self.n_neighbors,
                              min_dist=self.min_dist, seed=self.seed,
                              event=self._report if self.progress is not None else None)
        return np.asarray(self._umap.embedding_, dtype=np.float64)

    def _transform_in_chunks(self, x: np.ndarray, chunk: int = 5_000) -> np.ndarray:
        """Embed the points left out of the fit, reporting progress between chunks (a stop: t-SNE only)."""
        out = np.empty((x.shape[0], self.n_components))
        for start in range(0, x.shape[0], chunk):
            part = slice(start, start + chunk)
            out[part] = self._transform_fitted(x[part], optimise=not self.stopped_early_)
            done = min(start + chunk, x.shape[0])
            if self._report("transform", done, x.shape[0]) and self.method == "tsne":
                self.stopped_early_ = True
        return out

    # --- transform / inverse -----------------------------------------------------------------

    def _transform_fitted(self, x: np.ndarray, optimise: bool = True) -> np.ndarray:
        if self.method == "pca":
            emb = np.zeros((x.shape[0], self.n_components))
            emb[:, : self._pca.n_components_] = self._pca.transform(x)
            return emb
        if self.method == "tsne":
            return tsne_place(self._tsne, x, optimise)
        return np.asarray(self._umap.transform(x), dtype=np.float64)

    def transform(self, new_mu: np.ndarray) -> np.ndarray:
        """Place new latent codes (M, D) on the finished map -> (M, n_components) float32."""
        self._check_fitted()
        x = as_codes("new_mu", new_mu, self.n_features_in_)
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
        pts = as_codes("points", points, self.n_components)
        if self.method == "pca":
            z = self._pca.inverse_transform(pts[:, : self._pca.n_components_])  # (M, D)
            dist = self._local.distance(pts)
        else:
            z, dist = self._local(pts)
        return z.astype(np.float32), dist.astype(np.float32)
