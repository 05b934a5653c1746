"""Mutual information I(x; z) under q, He et al. 2019 (`calc_mi` in their lagging-inference code).

I = E_x E_q[log q(z|x)] - E[log q(z)], with, per batch of B points:
- E_q[log q(z|x)] in closed form: -D/2 log(2 pi) - 0.5 * sum_j (1 + log sigma_j^2), averaged over x;
- one z_i ~ q(z|x_i) per point, and log q(z_i) = logsumexp_k log N(z_i; mu_k, sigma_k^2) - log B
  over the k = 1..B points of the same batch.
Since q(z_i) >= q(z_i|x_i) / B, the estimator's expectation is at most log B; it is reported beside
it. The N points are split into floor(N / B) batches of exactly B (default B = 500, or N if
smaller; a remainder of fewer than B points is left out so every batch has the same bound), and
the batch estimates are averaged. Because the first term is analytic and the second sampled, one
draw can overshoot log B by noise of order sqrt(D / 2B); the reported value is clipped to log B
(the unclipped mean is kept as `unclipped`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ..data import Dataset
from ._common import as_tensor, check_batch_size, check_posterior, encode_all, model_device


@dataclass(frozen=True)
class MutualInfo:
    """I(x; z) estimate in nats, its bound log B, and the batch size B used."""

    mi: float  # min(unclipped, log_b)
    log_b: float  # log of the batch size: the estimator's ceiling
    batch_size: int
    n_batches: int
    unclipped: float  # mean of the per-batch He et al. estimates


def _calc_mi(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> float:
    """He et al. 2019 `calc_mi` on one batch: mu, logvar, z (B, D), z_i ~ q(z|x_i) -> nats."""
    b, d = mu.shape
    mu, logvar, z = mu.double(), logvar.double(), z.double()
    # E_q[log q(z|x)] = -D/2 log(2 pi) - 0.5 sum_j (1 + logvar_j), mean over x
    neg_entropy = (-0.5 * d * math.log(2 * math.pi) - 0.5 * (1 + logvar).sum(-1)).mean()
    # sum_j (z_ij - mu_kj)^2 / var_kj, expanded into matmuls instead of a (B, B, D) tensor; float64
    # keeps the cancellation harmless (absolute error ~1e-16 * max(z^2, mu^2) / min(var))
    prec = (-logvar).exp()  # (B, D) 1 / sigma^2
    quad = (z ** 2) @ prec.T - 2 * z @ (mu * prec).T + (mu ** 2 * prec).sum(-1)[None]  # (B, B)
    log_density = -0.5 * quad - 0.5 * (d * math.log(2 * math.pi) + logvar.sum(-1))[None]  # log N(z_i; mu_k)
    log_qz = torch.logsumexp(log_density, dim=1) - math.log(b)  # (B,)
    return float(neg_entropy - log_qz.mean())


def _mutual_info_core(mu: Any, logvar: Any, *, batch_size: int = 500, z: Any = None,
                      generator: torch.Generator | None = None) -> MutualInfo:
    """I(x; z) from posterior parameters (N, D), averaged over batches of B = min(batch_size, N)."""
    check_posterior(mu, logvar)
    mu, logvar = as_tensor(mu, "mu", 2), as_tensor(logvar, "logvar", 2)
    if z is None:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()  # one z per point
    z = as_tensor(z, "z", 2)
    if z.shape != mu.shape:
        raise ValueError(f"z must have the shape of mu {tuple(mu.shape)}, got {tuple(z.shape)}")
    n = mu.shape[0]
    b = min(check_batch_size(batch_size), n)
    n_batches = n // b
    vals = [_calc_mi(mu[i * b:(i + 1) * b], logvar[i * b:(i + 1) * b], z[i * b:(i + 1) * b])
            for i in range(n_batches)]
    unclipped = sum(vals) / n_batches
    log_b = math.log(b)
    return MutualInfo(mi=min(unclipped, log_b), log_b=log_b, batch_size=b, n_batches=n_batches,
                      unclipped=unclipped)


@torch.inference_mode()
def mutual_information(model: Any, data: Dataset, *, batch_size: int = 500, seed: int = 0) -> MutualInfo:
    """He et al. 2019 estimate of I(x; z) for `model` on all of `data`."""
    dev = model_device(model)
    mu, logvar = encode_all(model, data.x.to(dev), batch_size)
    gen = torch.Generator(device=dev).manual_seed(seed)
    return _mutual_info_core(mu, logvar, batch_size=batch_size, generator=gen)
