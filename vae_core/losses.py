"""The VAE objective as pure functions (Kingma & Welling 2014, Appendix B).

Reductions, stated once: every per-sample function sums over pixels (C*H*W) or latent dims (D)
and returns shape (B,) or (B, D); the mean over the batch is taken once, in `elbo_loss`.
Units are nats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per dimension, closed form: (B, D) -> (B, D).

    KL_j = 0.5 * (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1)
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


def mean_kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean over the rows of KL(q(z|x) || N(0, I)) per dimension, in float64: (M, D) -> (D,) nats.

    Closed form per point and dimension (docs/science.md, "ELBO and its terms"; `kl_per_dim`):
    KL_j(x) = 0.5 * (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1); summed over j it is the point's KL.
    """
    t = kl_per_dim(torch.as_tensor(np.asarray(mu, dtype=np.float64)),
                   torch.as_tensor(np.asarray(logvar, dtype=np.float64)))
    return t.mean(dim=0).numpy()


def bernoulli_nll(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) for a Bernoulli decoder, summed over pixels: (B, C, H, W) -> (B,).

    Computed as BCE with logits, which is exact for x in {0, 1}. For grey values in (0, 1) it is
    the cross-entropy, not a normalised likelihood (the continuous Bernoulli would be).
    """
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def bernoulli_nll_from_mean(x: torch.Tensor, mean: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """`bernoulli_nll` when only the decoder's mean in [0, 1] is known (TorchScript models): (B,)."""
    p = mean.clamp(eps, 1.0 - eps)
    return -(x * p.log() + (1.0 - x) * torch.log1p(-p)).flatten(1).sum(1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor | float) -> torch.Tensor:
    """-log N(x; mean, s^2) summed over pixels: (B, C, H, W) -> (B,).

    = 0.5 * sum((x - mean)^2 / s^2 + log(2 pi s^2)); with fixed s this is a beta-VAE on summed
    squared error with beta = 2 s^2.
    """
    log_scale = torch.as_tensor(log_scale, dtype=x.dtype, device=x.device)
    per_pixel = 0.5 * ((x - mean) ** 2 * torch.exp(-2.0 * log_scale) + math.log(2 * math.pi)) + log_scale
    return per_pixel.flatten(1).sum(1)


def kl_weight(progress: float, beta: float, schedule: str = "constant", *, warmup_fraction: float = 0.3,
              beta_start: float = 0.0, cycles: int = 4, ramp_fraction: float = 0.5) -> float:
    """The KL weight at `progress` in [0, 1] (fraction of training steps done).

    constant: beta. linear: from beta_start to beta over the first warmup_fraction, then beta.
    cyclical (Fu et al. 2019): `cycles` cycles; within each, 0 -> beta linearly over the first
    ramp_fraction of the cycle, then beta.
    """
    progress = min(max(float(progress), 0.0), 1.0)
    if schedule == "constant":
        return float(beta)
    if schedule == "linear":
        t = min(progress / warmup_fraction, 1.0)
        return float(beta_start + (beta - beta_start) * t)
    if schedule == "cyclical":
        period = 1.0 / cycles
        tau = (progress % period) / period if progress < 1.0 else 1.0
        return float(beta * min(tau / ramp_fraction, 1.0))
    raise ValueError(f"kl_schedule must be constant, linear or cyclical, got {schedule!r}")


@dataclass
class LossTerms:
    """Batch means (scalars) of the pieces of the objective, in nats per data point."""

    loss: torch.Tensor  # what is minimised: recon_nll + beta * kl_term
    recon_nll: torch.Tensor  # E_q[-log p(x|z)], one sample of z
    kl: torch.Tensor  # the true KL (without free bits), summed over dims
    kl_per_dim: torch.Tensor  # (D,) batch mean per dimension


def elbo_loss(recon_nll: torch.Tensor, kl_dims: torch.Tensor, beta: float = 1.0,
              free_bits: float = 0.0) -> LossTerms:
    """Negative (beta-)ELBO: mean over the batch of recon_nll + beta * KL.

    recon_nll: (B,), summed over pixels. kl_dims: (B, D) from `kl_per_dim`.
    Free bits (Kingma et al. 2016): the KL term is sum_j max(lambda, batch-mean KL_j), so a
    dimension below lambda nats gets no gradient pushing it further toward the prior.
    With beta = 1 and free_bits = 0, loss = -ELBO.
    """
    kl_mean_dims = kl_dims.mean(0)  # (D,)
    kl = kl_mean_dims.sum()
    kl_term = torch.clamp(kl_mean_dims, min=free_bits).sum() if free_bits > 0 else kl
    recon = recon_nll.mean()
    return LossTerms(loss=recon + beta * kl_term, recon_nll=recon, kl=kl, kl_per_dim=kl_mean_dims)
