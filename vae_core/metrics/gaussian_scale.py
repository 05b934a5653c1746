"""The scale s of a Gaussian decoder p(x|z) = N(f(z), s^2 I), and log p(x|z) at any s.

Gaussian decoders (docs/science.md, "ELBO and its terms"):
log p(x|z) = -0.5 * (SSE / s^2 + P log(2 pi s^2)) with SSE the
squared error summed over the P pixels, so every figure is computed from SSE and can be rescored
at another scale without decoding again. The scale a model is scored with:
- "declared": the model states s (a run's fixed `gaussian_scale`, a TorchScript `scale`);
- "trained": a run that learned s (`--learn-scale`);
- "calibrated" (Rybkin, Daniilidis & Levine 2021): for a model that declares no scale (most MSE-
  trained code), the shared s maximising the bound, s^2 = mean over points, pixels and the k
  posterior samples of (x - f(z))^2. With it the mean recon term per image is exactly
  0.5 * P * (1 + log(2 pi s^2)). For a declared or trained scale the calibrated figures are
  reported beside the model's own.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..models import VAE

MIN_SCALE2 = 1e-12  # floor of the calibrated s^2 (a decoder reproducing x exactly has no finite bound)
LOG_2PI = math.log(2 * math.pi)
_MISSING = object()


def gaussian_log_px(sse: torch.Tensor, n_pixels: int, log_scale: float) -> torch.Tensor:
    """log N(x; f(z), s^2 I) from the summed squared error: -0.5 * (sse / s^2 + P log(2 pi s^2))."""
    return -0.5 * sse * math.exp(-2.0 * log_scale) - n_pixels * (log_scale + 0.5 * LOG_2PI)


def calibrated_scale(sse_sum: float, n_values: int) -> float:
    """Rybkin et al. 2021: s = sqrt(mean squared error), the mean over n_values = points x pixels x
    posterior samples; floored at sqrt(MIN_SCALE2)."""
    if n_values < 1:
        raise ValueError(f"n_values must be >= 1, got {n_values}")
    return math.sqrt(max(float(sse_sum) / n_values, MIN_SCALE2))


def calibrated_recon_nll(scale: float, n_pixels: int) -> float:
    """The mean recon term -E log p(x|z) per image at the calibrated scale: 0.5 P (1 + log(2 pi s^2))."""
    return 0.5 * n_pixels * (1.0 + math.log(2 * math.pi * scale ** 2))


def decoder_scale(model: Any) -> tuple[float | None, str | None, bool]:
    """(s, source, known) of a model's decoder: (None, None, True) for a Bernoulli decoder.

    source: "trained" (a run with a learned scale), "declared" (a run's fixed scale, a TorchScript
    `scale`) or "calibrated" (the model declares none: `declared_scale` is None; s is then None
    here and set from the data). known is False when the model does not say whether it declared
    a scale (no `declared_scale` attribute): its `log_scale` is then taken as declared.
    """
    if str(getattr(model, "likelihood", "bernoulli")) != "gaussian":
        return None, None, True
    if isinstance(model, VAE):
        return float(model.log_scale.detach().exp()), ("trained" if model.cfg.learn_scale else "declared"), True
    declared = getattr(model, "declared_scale", _MISSING)
    if declared is None:
        return None, "calibrated", True
    if declared is _MISSING:
        log_s = getattr(model, "log_scale", None)
        return (1.0 if log_s is None else float(torch.as_tensor(log_s).detach().double().exp())), "declared", False
    return float(declared), "declared", True


def own_log_scale(model: Any) -> float:
    """log s of the model's own Gaussian scale, from a declared float where there is one (exact),
    else its log_scale tensor; 0 (s = 1) when it has neither."""
    declared = getattr(model, "declared_scale", None)
    if declared is not None:
        return math.log(float(declared))
    log_s = getattr(model, "log_scale", None)
    return 0.0 if log_s is None else float(torch.as_tensor(log_s).detach().double())
