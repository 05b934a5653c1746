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

Numerics (docs/science.md, "Mutual information"):
log N(z_i; mu_k, sigma_k^2) = -0.5 sum_j ((z_ij - mu_kj)^2 / sigma_kj^2 +
log sigma_kj^2 + log 2 pi) is computed directly, in float64, over chunks of k so memory stays
bounded (at most CHUNK_ELEMENTS float64 per temporary). The expanded form (z^2 - 2 z mu + mu^2) /
sigma^2 cancels catastrophically when sigma is tiny (trained conv encoders reach logvar -50 and
below). Where the sample is given as its noise eps (z_i = mu_i + sigma_i eps_i), the difference is
formed as (mu_i - mu_k) + sigma_i eps_i, so the diagonal term is exactly eps_i^2 even when sigma_i
is far below the float resolution of mu_i (z in float32 would equal mu there).

Standard error: the estimate is the mean over the N' = n_batches * B points used of the per-point
terms t_i = E_q[log q(z|x_i)] (closed form at x_i) - log q(z_i) (z_i's log aggregate density within
its batch), so `se` = sd(t_i) / sqrt(N'). The t_i are not independent (each log q(z_i) uses its
whole batch), so this measures the spread from point to point and from z_i's draw, not the bias
of a finite B (which the log B ceiling bounds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..data import Dataset
from ._common import check_batch_size, check_posterior, encode_all, model_device, std_error

CHUNK_ELEMENTS = 1 << 22  # float64 elements of one (B, chunk, D) temporary: 32 MB


@dataclass(frozen=True)
class MutualInfo:
    """I(x; z) estimate in nats, its bound log B, and the batch size B used."""

    mi: float  # min(unclipped, log_b)
    log_b: float  # log of the batch size: the estimator's ceiling
    batch_size: int
    n_batches: int
    unclipped: float  # mean of the per-batch He et al. estimates (= mean of the per-point terms)
    se: float = float("nan")  # sd(per-point terms) / sqrt(n_batches * batch_size); NaN for one point


def _as_f64(a: Any, name: str) -> torch.Tensor:
    """A float64 (N, D) tensor, keeping float64 input exact (never through float32)."""
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    if t.dim() != 2:
        raise ValueError(f"{name} must have 2 dimensions, got shape {tuple(t.shape)}")
    return t.detach().to(torch.float64)


def _log_q_chunks(mu: torch.Tensor, logvar: torch.Tensor, *, z: torch.Tensor | None = None,
                  eps: torch.Tensor | None = None, chunk_elements: int = CHUNK_ELEMENTS):
    """Yield (s, block): block (B, kc) float64 holds log N(z_i; mu_k, diag sigma_k^2) for k = s..s+kc-1,
    computed directly; z_i is given either as z (B, D) or as its noise eps (B, D), z_i = mu_i + sigma_i eps_i."""
    b, d = mu.shape
    log_2pi = math.log(2 * math.pi)
    inv_sd = torch.exp(-0.5 * logvar)  # (B, D) 1 / sigma_k
    const = logvar.sum(-1) + d * log_2pi  # (B,) sum_j log sigma_kj^2 + D log 2 pi
    kc = max(1, min(b, chunk_elements // max(1, b * d)))
    noise = None if eps is None else torch.exp(0.5 * logvar) * eps  # (B, D) sigma_i eps_i = z_i - mu_i
    base = mu if eps is not None else z
    for s in range(0, b, kc):
        diff = base[:, None, :] - mu[None, s:s + kc]  # (B, kc, D): z_i - mu_k, or mu_i - mu_k
        if noise is not None:
            diff += noise[:, None, :]  # (mu_i - mu_k) + sigma_i eps_i: exact 0 + sigma_i eps_i at k = i
        diff *= inv_sd[None, s:s + kc]  # (z_ij - mu_kj) / sigma_kj, in place: one temporary per chunk
        yield s, -0.5 * (diff.square_().sum(-1) + const[s:s + kc][None])


def _log_q_matrix(mu: torch.Tensor, logvar: torch.Tensor, *, z: torch.Tensor | None = None,
                  eps: torch.Tensor | None = None, chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """(B, B) float64: entry [i, k] = log N(z_i; mu_k, diag sigma_k^2), computed directly.

    z_i is given either as z (B, D) or as its noise eps (B, D) with z_i = mu_i + sigma_i eps_i.
    """
    b = mu.shape[0]
    out = torch.empty(b, b, dtype=torch.float64, device=mu.device)
    for s, block in _log_q_chunks(mu, logvar, z=z, eps=eps, chunk_elements=chunk_elements):
        out[:, s:s + block.shape[1]] = block
    return out


def _log_q_logsumexp(mu: torch.Tensor, logvar: torch.Tensor, *, z: torch.Tensor | None = None,
                     eps: torch.Tensor | None = None, chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """(B,) float64: logsumexp_k log N(z_i; mu_k, diag sigma_k^2), accumulated over chunks of k, so a
    batch of B points never holds the (B, B) matrix (B = 20,000 would be 3.2 GB)."""
    b = mu.shape[0]
    m = torch.full((b,), -math.inf, dtype=torch.float64, device=mu.device)  # running max
    acc = torch.zeros(b, dtype=torch.float64, device=mu.device)  # sum of exp(v - m)
    for _, block in _log_q_chunks(mu, logvar, z=z, eps=eps, chunk_elements=chunk_elements):
        m_new = torch.maximum(m, block.amax(1))
        shift = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
        acc = acc * torch.exp(m - shift) + torch.exp(block - shift[:, None]).sum(1)
        m = m_new
    shift = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return shift + torch.log(acc)


def mi_terms(mu: torch.Tensor, logvar: torch.Tensor, *, z: torch.Tensor | None = None,
              eps: torch.Tensor | None = None, chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """Per-point terms t_i (B,) of one batch, float64; their mean is He et al.'s `calc_mi`."""
    b, d = mu.shape
    neg_entropy = -0.5 * d * math.log(2 * math.pi) - 0.5 * (1 + logvar).sum(-1)  # (B,) E_q log q(z|x_i)
    log_qz = _log_q_logsumexp(mu, logvar, z=z, eps=eps, chunk_elements=chunk_elements) - math.log(b)  # (B,)
    return neg_entropy - log_qz


def _calc_mi(mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> float:
    """He et al. 2019 `calc_mi` on one batch: mu, logvar, z (B, D), z_i ~ q(z|x_i) -> nats."""
    return float(mi_terms(mu.double(), logvar.double(), z=z.double()).mean())


def mutual_info_core(mu: Any, logvar: Any, *, batch_size: int = 500, z: Any = None, eps: Any = None,
                      generator: torch.Generator | None = None, chunk_elements: int = CHUNK_ELEMENTS,
                      on_batch: Callable[[float], None] | None = None) -> MutualInfo:
    """I(x; z) from posterior parameters (N, D), averaged over batches of B = min(batch_size, N).

    The sample per point is z (N, D), or its noise eps (N, D) (z = mu + sigma * eps, the exact form
    for sharp posteriors), or drawn here from `generator`. Everything is float64.
    on_batch(fraction done) is called before each batch.
    """
    check_posterior(mu, logvar)
    mu, logvar = _as_f64(mu, "mu"), _as_f64(logvar, "logvar")
    if not (bool(torch.isfinite(mu).all()) and bool(torch.isfinite(logvar).all())):
        raise ValueError("mu and logvar must be finite")
    if z is not None and eps is not None:
        raise ValueError("give z or eps, not both")
    if z is None and eps is None:
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=torch.float64)
    sample = _as_f64(z if z is not None else eps, "z" if z is not None else "eps").to(mu.device)
    if sample.shape != mu.shape:
        raise ValueError(f"z must have the shape of mu {tuple(mu.shape)}, got {tuple(sample.shape)}")
    n = mu.shape[0]
    b = min(check_batch_size(batch_size), n)
    n_batches = n // b
    parts = []
    for i in range(n_batches):
        if on_batch is not None:
            on_batch(i / n_batches)
        parts.append(mi_terms(mu[i * b:(i + 1) * b], logvar[i * b:(i + 1) * b], chunk_elements=chunk_elements,
                               **{"z" if z is not None else "eps": sample[i * b:(i + 1) * b]}))
    terms = torch.cat(parts).cpu().numpy()  # (n_batches * B,)
    unclipped = float(terms.mean())  # = the mean of the per-batch estimates (equal batch sizes)
    log_b = math.log(b)
    return MutualInfo(mi=min(unclipped, log_b), log_b=log_b, batch_size=b, n_batches=n_batches,
                      unclipped=unclipped, se=std_error(terms))


@torch.inference_mode()
def mutual_information(model: Any, data: Dataset, *, batch_size: int = 500, seed: int = 0) -> MutualInfo:
    """He et al. 2019 estimate of I(x; z) for `model` on all of `data`."""
    dev = model_device(model)
    mu, logvar = encode_all(model, data.x.to(dev), batch_size)
    gen = torch.Generator(device=dev).manual_seed(seed)
    return mutual_info_core(mu, logvar, batch_size=batch_size, generator=gen)
