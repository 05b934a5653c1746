"""The t-SNE and UMAP fits behind `vae_core.maps.projection.Projection`: openTSNE and umap-learn,
each imported inside its function (they import scikit-learn, ~1.5 s cold, and UMAP's numba JIT
takes ~10 s more on the first fit in a process), so a PCA map never pays for them.

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
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

EARLY_EXAGGERATION_ITER = 250  # openTSNE's default length of the first phase
# Optimisation steps of each point placed into a finished t-SNE map (openTSNE's default is 250).
# Measured on 9,000 codes placed into a 3,000-point map of the shipped run's MNIST codes: 250 steps
# 13.8 s, 100 steps 6.3 s, 50 steps 3.8 s, 25 steps 2.5 s, 0 (median of neighbours) 1.2 s, with 10-NN
# preservation 0.490, 0.490, 0.481, 0.467, 0.395: time is linear in the steps and the layout barely
# better past 50, while placing 90,000 points at 100 steps took 110 s of a 205 s map of 100,000.
# Chunks of 5,000 or 9,000 points cost the same. At 50 steps the 100,000-point map took 122.4 s
# (placing 49.8 s; `python -m benchmarks.scale_maps`, load 2.1) against the 120 s target; 25 steps
# keep 10-NN preservation within 0.014 of 50 (0.467 vs 0.481 above) for about a third less placing.
TRANSFORM_ITER = 25

# (phase, iteration, iterations in the phase, KL divergence) -> True to stop
PhaseEvent = Callable[[str, int, int, float], bool]


def fit_tsne(x: np.ndarray, *, n_components: int, perplexity: float, seed: int | None, n_jobs: int,
             n_iter: int, every: int, event: PhaseEvent | None) -> tuple[Any, bool]:
    """t-SNE of x (N, D): (openTSNE TSNEEmbedding (N, n_components), True when `event` stopped it).

    Runs openTSNE.TSNE.fit's two phases ("early_exaggeration", EARLY_EXAGGERATION_ITER
    iterations, then "embedding", n_iter) itself so that `event` can name the phase; it is called
    every `every` iterations. A stop keeps the layout as it is at that iteration.
    """
    import openTSNE  # imported here: ~1.5 s cold, only paid by t-SNE users

    # openTSNE's FFT gradient is 1-D/2-D only; Barnes-Hut works in 3-D (slower at large N).
    grad = "bh" if n_components == 3 else "auto"
    tsne = openTSNE.TSNE(n_components=n_components, perplexity=perplexity, random_state=seed, n_jobs=n_jobs,
                         early_exaggeration_iter=EARLY_EXAGGERATION_ITER, negative_gradient_method=grad)
    emb = tsne.prepare_initial(x)
    phases = [
        ("early_exaggeration", tsne.early_exaggeration_iter, tsne.early_exaggeration, tsne.initial_momentum),
        ("embedding", n_iter, tsne.exaggeration, tsne.final_momentum),
    ]
    stopped = False
    for phase, iters, exaggeration, momentum in phases:
        if iters == 0:
            continue
        # openTSNE calls back with (iteration, KL divergence, embedding); True stops it
        callbacks = None if event is None else [
            lambda it, err, _e, phase=phase, iters=iters: event(phase, it, iters, float(err))]
        try:
            emb = emb.optimize(n_iter=iters, exaggeration=exaggeration, momentum=momentum, callbacks=callbacks,
                               callbacks_every_iters=every, inplace=True, propagate_exception=True)
        except openTSNE.tsne.OptimizationInterrupt as stop:
            log.info("t-SNE stopped by the progress callback during %s", phase)
            emb, stopped = stop.final_embedding, True
            break
    # openTSNE's transform re-centres the reference map in place on its bounding box; doing it
    # now makes later transforms leave the map (and embedding_) where it is.
    emb -= (np.max(emb, axis=0) + np.min(emb, axis=0)) / 2
    log.info("t-SNE of %d points done, stopped early: %s", x.shape[0], stopped)
    return emb, stopped


def tsne_place(emb: Any, x: np.ndarray, optimise: bool = True) -> np.ndarray:
    """Place codes x (M, D) into the finished t-SNE map `emb` -> (M, n_components), the map left where it is.

    optimise=False (after a stop) leaves each point at the median of its nearest fitted neighbours.
    """
    anchor = np.array(emb[0])  # transform re-centres the map; undo any shift below
    new = emb.transform(x, n_iter=TRANSFORM_ITER if optimise else 0)
    return np.asarray(new) + (anchor - np.asarray(emb[0]))


class _EpochWriter:
    """A file for umap-learn's tqdm bar over its layout epochs (its `tqdm_kwds`): the bar is drawn as
    "n/total" (`bar_format`), and each drawing is read back and passed on as `on_epoch(n, total)`.
    umap-learn makes the bar when its epochs start, so the first call also marks the end of the
    nearest-neighbour graph and the initial layout."""

    _NUMBERS = re.compile(r"(\d+)/(\d+)")

    def __init__(self, on_epoch: Callable[[int, int], None]):
        self.on_epoch = on_epoch
        self.last: tuple[int, int] | None = None

    def write(self, text: str) -> int:
        found = self._NUMBERS.findall(text)
        if found:
            n, total = (int(v) for v in found[-1])
            if (n, total) != self.last:
                self.last = (n, total)
                self.on_epoch(n, total)
        return len(text)

    def flush(self) -> None:
        pass


def fit_umap(x: np.ndarray, *, n_components: int, n_neighbors: int, min_dist: float, seed: int | None,
             event: Callable[[str, int, int], Any] | None = None) -> Any:
    """A fitted umap.UMAP of x (N, D).

    event(stage, done, total), when given, follows umap-learn's own two stages: "umap_graph" (the
    nearest-neighbour graph and the initial layout: 0 of 1 at the start, 1 of 1 when the epochs
    start; umap-learn reports nothing inside it) and "umap_epochs" (done of total layout epochs,
    read from umap-learn's own epoch bar). umap-learn cannot be interrupted: event's answer is not
    asked for."""
    import umap  # imported here: ~1.5 s cold plus ~10 s numba JIT on the first fit in a process

    tqdm_kwds: dict[str, Any] = {"disable": True}
    if event is not None:
        def on_epoch(n: int, total: int) -> None:
            if n == 0:
                event("umap_graph", 1, 1)
            event("umap_epochs", n, total)

        # disable=False turns the bar on without umap-learn's verbose prints; mininterval 0 and
        # miniters 1: every epoch is drawn (an epoch of 10,000 points takes tens of milliseconds)
        tqdm_kwds = {"disable": False, "file": _EpochWriter(on_epoch), "bar_format": "{n}/{total}",
                     "mininterval": 0, "miniters": 1, "ascii": True, "leave": False}
        event("umap_graph", 0, 1)
    model = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        random_state=seed,
        # A seed makes umap-learn single-threaded anyway; saying so avoids its warning.
        n_jobs=1 if seed is not None else -1,
        tqdm_kwds=tqdm_kwds,
    ).fit(x)
    model.tqdm_kwds = {"disable": True}  # its transform draws no bar, and the model keeps no callback
    return model
