"""The aggregate posterior q(z) = mean_x q(z|x) against the prior N(0, I) (Asperti 2019).

Variance law, per dim j: Var_x(mu_j) + E_x[sigma_j^2] (population variance, ddof=0) is the
variance of q(z) along j (law of total variance); about 1 when q(z) matches N(0, 1). Far from 1,
prior samples land where the decoder was never trained ("holes").
Also: the mean and variance of one sample z_i ~ q(z|x_i) per point, and per-dim histograms of
those samples beside the N(0, 1) density, as arrays for plotting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import Dataset
from ._common import as_numpy, check_posterior, encode_all, model_device

N_BINS = 40
HIST_RANGE = 4.0  # histograms cover at least [-4, 4], wider when the samples reach further
HOLE_LOW, HOLE_HIGH = 0.5, 1.5  # variance law outside this band: flagged in the summary


@dataclass(frozen=True)
class AggregateStats:
    """Per-dim variance law and aggregate-posterior moments (D,); histograms (D, n_bins)."""

    variance_law: np.ndarray  # (D,) Var_x(mu_j) + E_x[sigma_j^2]
    sample_mean: np.ndarray  # (D,) mean of z samples
    sample_var: np.ndarray  # (D,) variance of z samples (ddof=0)
    hist_edges: np.ndarray  # (D, n_bins + 1)
    hist_counts: np.ndarray  # (D, n_bins) int
    hist_density: np.ndarray  # (D, n_bins) counts / (N * bin width): integrates to 1
    prior_density: np.ndarray  # (D, n_bins) N(0, 1) pdf at the bin centres

    @property
    def off_prior_dims(self) -> list[int]:
        """Dims whose variance law is outside [HOLE_LOW, HOLE_HIGH]."""
        off = (self.variance_law < HOLE_LOW) | (self.variance_law > HOLE_HIGH)
        return [int(j) for j in np.flatnonzero(off)]


def aggregate_core(mu: Any, logvar: Any, z: Any = None, *, n_bins: int = N_BINS,
                    rng: np.random.Generator | None = None) -> AggregateStats:
    """Variance law, moments and histograms from mu, logvar (N, D) and samples z (N, D)."""
    check_posterior(mu, logvar)
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins!r}")
    mu_np, logvar_np = as_numpy(mu, "mu", 2), as_numpy(logvar, "logvar", 2)  # (N, D)
    var = np.exp(logvar_np)
    if z is None:
        rng = rng if rng is not None else np.random.default_rng(0)
        z_np = mu_np + np.sqrt(var) * rng.standard_normal(mu_np.shape)
    else:
        z_np = as_numpy(z, "z", 2)
        if z_np.shape != mu_np.shape:
            raise ValueError(f"z must have the shape of mu {mu_np.shape}, got {z_np.shape}")
    n, d = z_np.shape
    edges = np.empty((d, n_bins + 1))
    counts = np.empty((d, n_bins), dtype=np.int64)
    for j in range(d):  # a loop over dims, each a vectorised histogram
        lo = min(-HIST_RANGE, float(z_np[:, j].min()))
        hi = max(HIST_RANGE, float(z_np[:, j].max()))
        counts[j], edges[j] = np.histogram(z_np[:, j], bins=n_bins, range=(lo, hi))
    width = np.diff(edges, axis=1)
    centres = 0.5 * (edges[:, 1:] + edges[:, :-1])
    return AggregateStats(
        variance_law=mu_np.var(0, ddof=0) + var.mean(0),
        sample_mean=z_np.mean(0), sample_var=z_np.var(0, ddof=0),
        hist_edges=edges, hist_counts=counts, hist_density=counts / (n * width),
        prior_density=np.exp(-0.5 * centres ** 2) / np.sqrt(2 * np.pi))


@torch.inference_mode()
def aggregate_posterior(model: Any, data: Dataset, *, batch_size: int = 500, seed: int = 0) -> AggregateStats:
    """Variance law and aggregate-posterior histograms of `model` on all of `data`."""
    mu, logvar = encode_all(model, data.x.to(model_device(model)), batch_size)
    return aggregate_core(mu, logvar, rng=np.random.default_rng(seed))
