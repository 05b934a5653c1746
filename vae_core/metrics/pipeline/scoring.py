"""The bounds a diagnose report states: at which Gaussian scale (the decoder's own, or the calibrated
one when it declares none; see gaussian_scale.py), the figures at it, and what the notes say about it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..gaussian_scale import MIN_SCALE2, calibrated_recon_nll, decoder_scale
from ..iwae import Bounds, PointBounds, elbo_terms


@dataclass
class Scored:
    """The bounds at the scale the report uses (a Gaussian decoder's own, or the calibrated one)."""

    elbo: float
    recon_nll: float
    kl: float
    iwae: float
    own: Bounds  # the per-point summary at that scale (its standard errors)
    beside: Bounds | None  # at the calibrated scale, beside a declared or trained one
    scale: float | None
    source: str | None
    scale_known: bool


def score(model: Any, pts: PointBounds, kl_per_dim: list[float]) -> Scored:
    """The report's bounds from the per-point ones: kl is the sum of the closed-form per-dim means
    (kl_per_dim), recon_nll = -(MC ELBO) - kl (see iwae.py)."""
    scale, source, scale_known = decoder_scale(model)
    own = pts.summary(calibrated=source == "calibrated")
    if source == "calibrated":
        scale = pts.calibrated_scale
    beside = pts.summary(calibrated=True) if source in ("declared", "trained") else None
    kl = float(sum(kl_per_dim))
    elbo_pts = pts.elbo_cal if source == "calibrated" else pts.elbo  # (N,) per-point MC ELBO
    recon, elbo = elbo_terms(float(elbo_pts.mean()), kl)
    return Scored(elbo, recon, kl, max(own.iwae, elbo), own, beside, scale, source, scale_known)


def scale_notes(s: Scored, pts: PointBounds, iwae_k: int) -> list[str]:
    """What the notes say about a Gaussian decoder's scale (none for a Bernoulli decoder)."""
    notes = []
    if s.source == "calibrated":
        notes.append(f"The Gaussian decoder declares no scale, so it is scored with the calibrated scale "
                     f"s = {s.scale:.4g} (Rybkin et al. 2021: s^2 = mean squared error over the points, pixels and "
                     f"{iwae_k} posterior samples); with it the mean recon term per image is "
                     f"0.5 * P * (1 + log(2 pi s^2)) = {calibrated_recon_nll(s.scale, pts.n_pixels):.3f} nats.")
    elif s.source is not None:
        notes.append(f"The Gaussian decoder is scored with its {s.source} scale s = {s.scale:.4g}; at the calibrated "
                     f"scale s = {pts.calibrated_scale:.4g} (Rybkin et al. 2021) the ELBO would be "
                     f"{s.beside.elbo:.3f} (elbo_calibrated).")
        if not s.scale_known:
            notes.append("The model does not say whether its file declared a scale (no declared_scale); its "
                         f"scale s = {s.scale:.4g} was taken as declared. If it was trained with a plain MSE loss, "
                         "read elbo_calibrated instead.")
    if pts.calibrated_scale is not None and pts.calibrated_scale ** 2 <= MIN_SCALE2:
        notes.append("The decoder reproduces the data almost exactly: the calibrated s^2 was floored at "
                     f"{MIN_SCALE2:g}.")
    return notes
