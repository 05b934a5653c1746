"""The ELBO and the importance-weighted bound L_k (Burda et al. 2016), on the same k samples.

Per data point x, with z_i ~ q(z|x), i = 1..k, and log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x):
- iwae(x) = logsumexp_i log w_i - log k  (L_k; tends to log p(x) as k grows)
- elbo(x) = mean_i log w_i                (the k-sample Monte Carlo ELBO = L_1 averaged)
- kl(x)   = closed-form KL(q(z|x) || N(0, I)), summed over dims
- recon_nll(x) = -elbo(x) - kl(x): an unbiased estimate of -E_q log p(x|z) from the same k samples
  (its expectation is (recon + KL) - KL), exact when q is the true posterior.
So elbo = -(recon_nll + kl) holds exactly and iwae >= elbo holds per point by Jensen's inequality.
All are nats per data point; the report gives their means over the evaluation points.
The k samples are vectorised (x repeated to (k*B, C, H, W)) and decoded in chunks of at most
`max_rows` images, so memory stays bounded; there is no Python loop over data points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data import Dataset
from ..losses import kl_per_dim
from ..models import VAE
from ._common import check_batch_size, check_posterior, encode_all, model_device

MAX_ROWS = 10_000  # images decoded per call: 10k x 784 float32 = 31 MB per temporary


@dataclass(frozen=True)
class Bounds:
    """Means over the data, nats per point: elbo = -(recon_nll + kl) and iwae >= elbo."""

    elbo: float
    recon_nll: float
    kl: float
    iwae: float
    k: int


def _check_k(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"iwae_k must be >= 1, got {k!r}")
    return int(k)


def _log_px_given_z(model: Any, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x_b|z_sb) for x (B, C, H, W) and z (S, B, D) -> (S, B), summed over pixels."""
    s, b, d = z.shape
    if isinstance(model, VAE) and model.likelihood == "bernoulli":
        # BCE with logits = softplus(l) - x * l (exactly `losses.bernoulli_nll`); the x * l sum is a
        # batched dot product, so x is never copied S times and one (S*B, P) temporary is saved
        logits = model.decode_logits(z.reshape(s * b, d)).reshape(s, b, -1)  # (S, B, P)
        return torch.einsum("sbp,bp->sb", logits, x.reshape(b, -1).to(logits.dtype)) - F.softplus(logits).sum(-1)
    xr = x.unsqueeze(0).expand(s, *x.shape).reshape(s * b, *x.shape[1:])  # (S*B, C, H, W)
    return -model.nll(xr, z.reshape(s * b, d)).view(s, b)


@torch.inference_mode()
def _log_weights(model: Any, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int, *,
                 generator: torch.Generator | None = None, max_rows: int = MAX_ROWS) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x): x (B, C, H, W) -> (k, B)."""
    check_posterior(mu, logvar)
    b, d = mu.shape
    k = _check_k(k)
    std = (0.5 * logvar).exp()
    log_2pi = math.log(2 * math.pi)
    kc = max(1, min(k, max_rows // b))  # samples per decode call
    # all noise drawn at once (k*B*D floats, small) so the result does not depend on max_rows
    eps_all = torch.randn(k, b, d, generator=generator, device=mu.device, dtype=mu.dtype)
    out = torch.empty(k, b, dtype=torch.float64, device=mu.device)
    for s in range(0, k, kc):
        n = min(kc, k - s)
        eps = eps_all[s:s + n]  # (n, B, D)
        z = mu + std * eps  # (n, B, D)
        log_px_z = _log_px_given_z(model, x, z).double()  # (n, B)
        log_pz = -0.5 * (z.double() ** 2).sum(-1) - 0.5 * d * log_2pi  # (n, B)
        log_qz = -0.5 * (eps.double() ** 2).sum(-1) - 0.5 * logvar.double().sum(-1) - 0.5 * d * log_2pi
        out[s:s + n] = log_px_z + log_pz - log_qz
    return out


def _bounds_core(model: Any, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int, *,
                 generator: torch.Generator | None = None,
                 max_rows: int = MAX_ROWS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per point (B,), float64: (iwae L_k, elbo = mean_i log w_i, closed-form kl)."""
    log_w = _log_weights(model, x, mu, logvar, k, generator=generator, max_rows=max_rows)  # (k, B)
    elbo = log_w.mean(0)
    iwae = torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
    iwae = torch.maximum(iwae, elbo)  # Jensen makes this hold; guards only float rounding
    kl = kl_per_dim(mu.double(), logvar.double()).sum(1)
    return iwae, elbo, kl


def _summarise(iwae: torch.Tensor, elbo: torch.Tensor, kl: torch.Tensor, k: int) -> Bounds:
    """Means over points, arranged so elbo = -(recon_nll + kl) holds exactly in floats."""
    kl_m = float(kl.mean())
    recon = -float(elbo.mean()) - kl_m
    elbo_m = -(recon + kl_m)
    return Bounds(elbo=elbo_m, recon_nll=recon, kl=kl_m, iwae=max(float(iwae.mean()), elbo_m), k=k)


def log_likelihood_bounds(model: Any, data: Dataset, *, k: int = 100, batch_size: int = 500,
                          seed: int = 0) -> Bounds:
    """ELBO, its two terms and IWAE L_k of `model` on all of `data`."""
    k = _check_k(k)
    batch_size = check_batch_size(batch_size)
    dev = model_device(model)
    x = data.x.to(dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    parts = []
    with torch.inference_mode():
        for s in range(0, x.shape[0], batch_size):
            xb = x[s:s + batch_size]
            mu, logvar = encode_all(model, xb, batch_size)
            parts.append(_bounds_core(model, xb, mu, logvar, k, generator=gen))
    iwae, elbo, kl = (torch.cat(p) for p in zip(*parts))
    return _summarise(iwae, elbo, kl, k)
