"""Posterior collapse, seen three ways, plus the decoder's own view (SCIENCE.md).

Rules, per latent dimension j, over the N evaluation points:
- KL_j = mean_x 0.5 * (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1) (closed form; the dims sum to the KL).
- Activity (Burda et al. 2016): A_j = Var_x(mu_j(x)) with the *population* variance (ddof=0), and
  the unit is active when A_j > 0.01 (strict). He et al. 2019 use the unbiased variance and `>=`;
  with N in the hundreds the two differ by a factor N/(N-1) and rarely change the count.
- Posterior spread: mean_x sigma_j^2 > 0.8 means the dimension copies the prior (Asperti's practice).
- `collapsed_dims` are the dims with KL_j < 0.01 nats: a dim carrying (almost) no KL transmits
  (almost) no information about x, whatever its mean does. Each rule's own list is reported too,
  because under partial collapse the rules disagree.
- Decoder sensitivity: with every dim at its data mean, z_j is traversed over [-2, 2] (9 values);
  the sensitivity is the mean absolute pixel change |decode(z) - decode(z_mean)| over the 9 values
  and all pixels. It catches dims that carry KL but that the decoder ignores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..data import Dataset
from ._common import as_numpy, check_posterior, encode_all, model_device

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016: active when Var_x(mu_j) > 0.01
KL_THRESHOLD = 0.01  # nats; collapsed when KL_j < this
PRIOR_SIGMA2_THRESHOLD = 0.8  # Asperti: mean sigma_j^2 above this = the dim copies the prior
TRAVERSAL = tuple(np.linspace(-2.0, 2.0, 9).tolist())  # values given to z_j for the sensitivity
IGNORED_FRACTION = 0.01  # a non-collapsed dim whose sensitivity is < 1% of the largest is "ignored"


@dataclass(frozen=True)
class CollapseStats:
    """Per-dimension collapse statistics, each array (D,)."""

    kl_per_dim: np.ndarray  # mean_x KL_j, nats
    activity: np.ndarray  # Var_x(mu_j), population variance (ddof=0)
    mean_sigma2: np.ndarray  # mean_x sigma_j^2
    active: np.ndarray  # bool: activity > ACTIVE_THRESHOLD
    low_kl: np.ndarray  # bool: kl_per_dim < KL_THRESHOLD
    prior_like: np.ndarray  # bool: mean_sigma2 > PRIOR_SIGMA2_THRESHOLD
    sensitivity: np.ndarray | None = None  # mean |pixel change| under traversal; None if not computed

    @property
    def active_units(self) -> int:
        return int(self.active.sum())

    @property
    def collapsed_dims(self) -> list[int]:
        """Dims with KL_j < KL_THRESHOLD nats."""
        return [int(j) for j in np.flatnonzero(self.low_kl)]

    @property
    def inactive_dims(self) -> list[int]:
        return [int(j) for j in np.flatnonzero(~self.active)]

    @property
    def prior_like_dims(self) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.prior_like)]

    @property
    def insensitive(self) -> np.ndarray | None:
        """bool (D,): sensitivity at most 1% of the largest one (None if not computed)."""
        if self.sensitivity is None:
            return None
        top = float(self.sensitivity.max()) if self.sensitivity.size else 0.0
        return self.sensitivity <= IGNORED_FRACTION * top

    @property
    def decoder_ignored_dims(self) -> list[int]:
        """Dims not collapsed by KL that the decoder barely reacts to (`insensitive`)."""
        ins = self.insensitive
        return [] if ins is None else [int(j) for j in np.flatnonzero(ins & ~self.low_kl)]


def _collapse_stats(mu: Any, logvar: Any, sensitivity: np.ndarray | None = None, *,
                    active_threshold: float = ACTIVE_THRESHOLD, kl_threshold: float = KL_THRESHOLD,
                    sigma2_threshold: float = PRIOR_SIGMA2_THRESHOLD) -> CollapseStats:
    """The three collapse rules from posterior parameters mu, logvar (N, D)."""
    check_posterior(mu, logvar)
    mu_np = as_numpy(mu, "mu", 2)  # (N, D)
    logvar_np = as_numpy(logvar, "logvar", 2)  # (N, D)
    var = np.exp(logvar_np)
    kl = (0.5 * (mu_np ** 2 + var - logvar_np - 1.0)).mean(0)  # (D,) closed form, mean over x
    activity = mu_np.var(0, ddof=0)  # (D,) population variance, Burda et al.
    mean_sigma2 = var.mean(0)  # (D,)
    return CollapseStats(kl_per_dim=kl, activity=activity, mean_sigma2=mean_sigma2,
                         active=activity > active_threshold, low_kl=kl < kl_threshold,
                         prior_like=mean_sigma2 > sigma2_threshold, sensitivity=sensitivity)


@torch.inference_mode()
def _decoder_sensitivity(decode: Callable[[torch.Tensor], torch.Tensor], z_mean: torch.Tensor,
                         values: tuple[float, ...] = TRAVERSAL, max_rows: int = 4096) -> np.ndarray:
    """Mean |decode(z) - decode(z_mean)| when z_j takes each of `values`, others at z_mean: (D,)."""
    z_mean = torch.as_tensor(z_mean).float().reshape(-1)  # (D,)
    d, v = z_mean.shape[0], len(values)
    if v < 1:
        raise ValueError("values must hold at least one traversal value")
    vals = torch.tensor(values, dtype=z_mean.dtype, device=z_mean.device)  # (V,)
    z = z_mean.repeat(d * v, 1)  # (D*V, D): row j*V + i has z_j = values[i]
    z.view(d, v, d)[torch.arange(d), :, torch.arange(d)] = vals
    z = torch.cat([z_mean[None], z])  # row 0 is the base point
    out = torch.cat([decode(z[s:s + max_rows]).float() for s in range(0, z.shape[0], max_rows)])
    base, trav = out[:1], out[1:]  # (1, C, H, W), (D*V, C, H, W)
    change = (trav - base).abs().flatten(1).mean(1)  # (D*V,)
    return change.view(d, v).mean(1).double().cpu().numpy()


def posterior_collapse(model: Any, data: Dataset, *, batch_size: int = 500) -> CollapseStats:
    """Collapse statistics and decoder sensitivity of `model` on all of `data`."""
    x = data.x.to(model_device(model))
    mu, logvar = encode_all(model, x, batch_size)
    sens = _decoder_sensitivity(model.decode, mu.mean(0))
    return _collapse_stats(mu, logvar, sens)
