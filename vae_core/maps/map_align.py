"""Put one map (or set of codes) in the frame of another over the same points: an orthogonal
Procrustes fit, by scipy.

Two maps of the same points (two runs' PCA maps, two t-SNE fits, a training epoch and the final
one) can differ by a rotation, a reflection, a shift and a scale that mean nothing: PCA axes flip
sign, t-SNE and UMAP are free to turn, and a VAE's prior N(0, I) does not change under a rotation
of the latent space. ``procrustes_align`` finds the rotation/reflection R (an orthogonal matrix,
``scipy.linalg.orthogonal_procrustes``), the scale s and the shift that bring ``moving`` closest to
``ref`` in least squares, and applies them:

    aligned = s * (moving - mean(moving)) @ R + mean(ref)

With ``scale=False`` s stays 1 (a training replay keeps the codes' growth from the initial weights
visible). The residual is scipy's Procrustes disparity (``scipy.spatial.procrustes``): the sum of
squared differences after both sets are centred and scaled to unit Frobenius norm and aligned,
1 - (sum of singular values of A^T B)^2; 0 means the same shape, 1 nothing in common.

Only numpy and scipy.linalg; no plotting.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import orthogonal_procrustes

from .map_arrays import as_codes


@dataclass(frozen=True)
class Alignment:
    """The fit of ``procrustes_align``: aligned (N, K) float64, rotation R (K, K), scale s, the two
    means, and the disparity (0..1; scipy.spatial.procrustes's)."""

    aligned: np.ndarray
    rotation: np.ndarray
    scale: float
    mean_moving: np.ndarray
    mean_ref: np.ndarray
    disparity: float

    @property
    def reflects(self) -> bool:
        """True when R includes a reflection (det R = -1): the map was mirrored."""
        return bool(np.linalg.det(self.rotation) < 0)

    def apply(self, x: Any) -> np.ndarray:
        """Other points of the moving map's space (M, K), carried the same way."""
        x = np.asarray(x, dtype=np.float64)
        return self.scale * (x - self.mean_moving) @ self.rotation + self.mean_ref


def procrustes_align(ref: Any, moving: Any, *, scale: bool = True) -> Alignment:
    """Align ``moving`` (N, K) to ``ref`` (N, K), row i to row i: rotation/reflection, shift and (when
    ``scale``) a uniform scale, fitted by least squares. Raises ValueError when the shapes differ or
    either set is a single point repeated (nothing to rotate)."""
    a = as_codes("ref", ref)
    b = as_codes("moving", moving)
    if a.shape != b.shape:
        raise ValueError(f"ref {a.shape} and moving {b.shape} must hold the same points in the same dimensions")
    mean_a, mean_b = a.mean(0), b.mean(0)
    a0, b0 = a - mean_a, b - mean_b
    na, nb = float(np.linalg.norm(a0)), float(np.linalg.norm(b0))
    if na == 0 or nb == 0:
        raise ValueError("cannot align a map whose points all coincide")
    r, sv_sum = orthogonal_procrustes(b0, a0)  # argmin_R ||b0 R - a0||, sv_sum: sum of singular values of b0^T a0
    s = sv_sum / nb**2 if scale else 1.0
    disparity = max(0.0, 1.0 - (sv_sum / (na * nb)) ** 2)
    return Alignment(aligned=s * b0 @ r + mean_a, rotation=r, scale=float(s), mean_moving=mean_b, mean_ref=mean_a,
                     disparity=float(disparity))


def align_epochs(epoch_codes: Any, *, scale: bool = False) -> np.ndarray:
    """Every epoch's codes (E, S, D) aligned to the last epoch's: (E, S, D) float64.

    Each epoch gets its own orthogonal fit (``procrustes_align``, no scale by default) to the final
    codes, so a rotation or reflection of the latent space during training does not read as motion.
    An epoch whose codes all coincide is kept as it is, shifted to the final mean.
    """
    m = np.asarray(epoch_codes, dtype=np.float64)
    if m.ndim != 3 or m.shape[0] == 0:
        raise ValueError(f"epoch_codes must be (E, S, D) with E >= 1, got shape {m.shape}")
    final = m[-1]
    out = np.empty_like(m)
    for e in range(m.shape[0]):
        try:
            out[e] = procrustes_align(final, m[e], scale=scale).aligned
        except ValueError:
            out[e] = m[e] - m[e].mean(0) + final.mean(0)
    return out
