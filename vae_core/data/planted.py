"""`planted`: linear-Gaussian data with a known covariance spectrum, for checking theory exactly.

x = OFFSET + SCALE * (W z + e) in R^64, shown as 1 x 8 x 8 images, with z ~ N(0, I_4) and
e ~ N(0, NOISE I_64). W = U diag(sqrt(lambda_i - NOISE)) for four orthonormal directions U (Walsh
patterns: left/right halves, top/bottom halves, diagonal quadrants, middle columns against the
outer ones), so the covariance of W z + e has eigenvalues PLANTED_SPECTRUM = 9, 6, 4, 2.5 (along
U) and NOISE = 0.2 (60 times). docs/science.md ("Theory checks") gives the linear VAE's
prediction for such data.

The app's data contract is x in [0, 1]. The affine map x -> OFFSET + SCALE x (0.5 + 0.1 x)
multiplies every eigenvalue by SCALE^2 = 0.01, so the pixel-space spectrum is exactly
0.09, 0.06, 0.04, 0.025 and 60 x 0.002 (`SPECTRUM`, and the Dataset's meta["spectrum"]). The
directions are Walsh functions (entries +-1/8), so every pixel has the same variance,
SCALE^2 * 33.5 / 64 (sd 0.072), and [0, 1] is 6.9 standard deviations either side of 0.5: a value
outside it has probability 5e-12, none occurs in the shipped draw, and any that would is clipped
and counted (meta["clipped"]).
"""
from __future__ import annotations

import numpy as np
import torch

from .dataset import Dataset

SIDE = 8  # images are 1 x SIDE x SIDE
P = SIDE * SIDE
PLANTED_SPECTRUM = (9.0, 6.0, 4.0, 2.5)  # the strong directions' eigenvalues, before the affine map
NOISE = 0.2  # isotropic noise variance: the other P - 4 eigenvalues, before the affine map
SCALE, OFFSET = 0.1, 0.5  # the affine map into [0, 1]: eigenvalues are multiplied by SCALE^2
SPECTRUM = tuple(SCALE ** 2 * v for v in PLANTED_SPECTRUM + (NOISE,) * (P - len(PLANTED_SPECTRUM)))
DEFAULT_N = 10_000  # points generated (seed 0); `load_dataset("planted", n=...)` takes a seeded subset
# (row, column) Walsh indices of each direction: the image is the outer product of two rows of the
# 8 x 8 Sylvester Hadamard matrix (row 0 constant, 4 halves, 6 middle against outside)
_PATTERNS = ((0, 4), (4, 0), (4, 4), (0, 6))
DIRECTION_NAMES = ("left vs right", "top vs bottom", "diagonal quadrants", "middle vs outer columns")


def _hadamard8() -> np.ndarray:
    j = np.arange(SIDE)
    return np.array([[(-1) ** bin(a & b).count("1") for b in j] for a in j], dtype=np.float64)


def directions() -> np.ndarray:
    """The planted directions (4, 64), orthonormal, in flattened-pixel order (row-major 8 x 8)."""
    h = _hadamard8()
    return np.stack([np.outer(h[a], h[b]).ravel() / SIDE for a, b in _PATTERNS])


def make_planted(n: int = DEFAULT_N, seed: int = 0) -> Dataset:
    """n points of the planted linear-Gaussian data (seeded), as a Dataset of 1 x 8 x 8 images in
    [0, 1] whose meta holds the true spectrum in pixel space and the map that produced it."""
    if n < 1:
        raise ValueError(f"n must be >= 1 for planted, got {n}")
    rng = np.random.default_rng(seed)
    u = directions()  # (4, P)
    w = u.T * np.sqrt(np.array(PLANTED_SPECTRUM) - NOISE)  # (P, 4)
    z = rng.standard_normal((n, len(PLANTED_SPECTRUM)))
    e = rng.standard_normal((n, P)) * np.sqrt(NOISE)
    x = OFFSET + SCALE * (z @ w.T + e)  # (n, P) float64
    clipped = int(np.count_nonzero((x < 0) | (x > 1)))
    x = np.clip(x, 0.0, 1.0)
    return Dataset(
        x=torch.from_numpy(x.astype(np.float32)).reshape(n, 1, SIDE, SIDE),
        name="planted",
        meta={
            "seed": seed,
            "spectrum": list(SPECTRUM),  # eigenvalues of the covariance of x, in pixel space, descending
            "planted_spectrum": list(PLANTED_SPECTRUM) + [NOISE] * (P - len(PLANTED_SPECTRUM)),  # before the map
            "affine": {"scale": SCALE, "offset": OFFSET},  # x = offset + scale * (W z + e)
            "directions": DIRECTION_NAMES,
            "clipped": clipped,  # values clipped into [0, 1] (0 in the shipped draw)
        },
    )


__all__ = ["DEFAULT_N", "NOISE", "PLANTED_SPECTRUM", "SCALE", "OFFSET", "SPECTRUM", "directions", "make_planted"]
