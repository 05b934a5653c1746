"""`sprites`: a dSprites-like data set generated offline, with its five ground-truth factors.

Factors as in dSprites (Matthey et al. 2017): shape (square, ellipse, heart), scale (6 values,
0.5 to 1), orientation (40 values over 2 pi), x and y (32 values each over [0, 1]). Images are
binary. Each shape is the set where an implicit function is <= 0, evaluated at pixel centres in
the shape's own frame (the grid rotated and scaled), for a batch of sprites at once.
"""
from __future__ import annotations

import numpy as np
import torch

from .dataset import Dataset
from .errors import DataError, _check_bytes

FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.arange(40) * (2 * np.pi / 40)  # 0 .. 39/40 of a turn; 2 pi would repeat 0
POSITIONS = np.linspace(0.0, 1.0, 32)
FACTOR_SIZES = (len(SHAPES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), len(POSITIONS))

# Every shape fits the unit disc in its own frame (u, v), so one radius bounds all of them at
# any orientation. At scale 1 that disc has radius RADIUS * size pixels.
RADIUS = 0.2
_ELLIPSE_MINOR = 0.5  # semi-axes 1 and 0.5: long enough that orientation is visible
# The classic heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 spans y in [-1, 1.24]; centred at y = 0.25
# its farthest point is 1.256 away, so shrinking by 1.26 puts it in the unit disc.
_HEART_SHIFT, _HEART_SPAN = 0.25, 1.26
_CHUNK = 512  # sprites per vectorised batch: (512, 64, 64) float32 is 8 MB per temporary


def geometry(size: int) -> tuple[float, float]:
    """(radius of a scale-1 sprite, margin from the edge to the extreme centres), in pixels."""
    radius = RADIUS * size
    # One pixel beyond the bounding disc keeps the border rows and columns always empty, so a
    # sprite at x = 0 or 1 is never cut by the frame (dSprites likewise narrows the position range).
    return radius, radius + 1.0


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of points (u, v) (shape's frame, unit disc bounds it) inside the shape."""
    if shape == 0:  # square inscribed in the unit disc: half-side 1/sqrt(2)
        return np.maximum(np.abs(u), np.abs(v)) <= np.float32(np.sqrt(0.5))
    if shape == 1:
        return u * u + (v / np.float32(_ELLIPSE_MINOR)) ** 2 <= 1.0
    hx = u * np.float32(_HEART_SPAN)
    hy = v * np.float32(_HEART_SPAN) + np.float32(_HEART_SHIFT)
    r = hx * hx + hy * hy - 1.0
    return r * r * r - hx * hx * hy * hy * hy <= 0.0


def render_sprites(factors: np.ndarray, size: int = 64) -> np.ndarray:
    """Binary images (N, size, size) uint8 for factor indices (N, 5) in FACTOR_NAMES order."""
    f = np.asarray(factors, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 5:
        raise DataError(f"factors must have shape (N, 5), got {f.shape}")
    bad = (f < 0) | (f >= np.array(FACTOR_SIZES))
    if bad.any():
        k = int(np.argwhere(bad)[0, 1])
        raise DataError(f"factor '{FACTOR_NAMES[k]}' must be in 0..{FACTOR_SIZES[k] - 1}, got {f[bad.any(1)][0, k]}")
    if size < 8:
        raise DataError(f"size must be >= 8 pixels, got {size}")
    radius, margin = geometry(size)
    centres = (margin + POSITIONS * (size - 2 * margin)).astype(np.float32)  # (32,) pixels
    grid = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    out = np.zeros((len(f), size, size), dtype=np.uint8)
    for shape in range(len(SHAPES)):
        idx = np.flatnonzero(f[:, 0] == shape)
        for start in range(0, len(idx), _CHUNK):
            rows = idx[start : start + _CHUNK]
            g = f[rows]
            r = (radius * SCALES[g[:, 1]]).astype(np.float32)[:, None, None]  # (B, 1, 1)
            th = ORIENTATIONS[g[:, 2]]
            cos = np.cos(th).astype(np.float32)[:, None, None]
            sin = np.sin(th).astype(np.float32)[:, None, None]
            dx = grid[None, None, :] - centres[g[:, 3]][:, None, None]  # (B, 1, W): column offset
            dy = centres[g[:, 4]][:, None, None] - grid[None, :, None]  # (B, H, 1): y up, rows down
            # Rotating the grid by -theta turns the sprite by +theta (counter-clockwise on screen).
            u = (cos * dx + sin * dy) / r  # (B, H, W)
            v = (cos * dy - sin * dx) / r
            out[rows] = _inside(shape, u, v)
    return out


DEFAULT_N = 10_000  # sprites generated when no n is given (load_dataset("sprites") too)


def make_sprites(n: int = DEFAULT_N, seed: int = 0, size: int = 64) -> Dataset:
    """n sprites with one random factor combination each (seeded), as a Dataset with factors."""
    if n < 1:
        raise DataError(f"n must be >= 1 for sprites, got {n}")
    if size < 8:
        raise DataError(f"size must be >= 8 pixels, got {size}")
    # Refused before anything is generated: n x 1 x size x size float32 is what this returns.
    _check_bytes(f"--n {n:,} sprites of {size}x{size} pixels as float32", n * size * size * 4, "max_data_mb")
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, k, size=n) for k in FACTOR_SIZES], axis=1).astype(np.int64)  # (n, 5)
    images = render_sprites(factors, size)  # (n, size, size)
    x = torch.from_numpy(images).unsqueeze(1).float()  # (n, 1, size, size) in {0, 1}
    return Dataset(
        x=x,
        name="sprites",
        y=factors[:, 0].copy(),
        factors=factors,
        factor_names=FACTOR_NAMES,
        factor_sizes=FACTOR_SIZES,
        meta={
            "seed": seed,
            "size": size,
            "classes": SHAPES,
            "factor_values": {
                "shape": SHAPES,
                "scale": SCALES.tolist(),
                "orientation": ORIENTATIONS.tolist(),
                "x": POSITIONS.tolist(),
                "y": POSITIONS.tolist(),
            },
        },
    )


__all__ = ["FACTOR_NAMES", "FACTOR_SIZES", "SHAPES", "geometry", "make_sprites", "render_sprites"]
