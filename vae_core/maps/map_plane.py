"""Layers over a fitted 2-D map's plane: the decoded manifold (a grid of codes to decode, laid out
like the map, as in Kingma & Welling's figure), the density of the points (a contour layer) and
the points' images as one sprite sheet (hover thumbnails).

Coordinates are the map's own (``Projection.embedding_``); bounds are (x0, x1, y0, y1) with
x0 < x1, y0 < y1. Nothing here decodes or draws: codes and arrays for the caller.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .map_arrays import as_codes

MAX_GRID_SIDE = 64  # manifold grid: at most 64 x 64 = 4,096 decodes for one figure


def _check_bounds(bounds: Sequence[float]) -> tuple[float, float, float, float]:
    try:
        x0, x1, y0, y1 = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be four numbers (x0, x1, y0, y1), got {bounds!r}") from None
    if not all(map(math.isfinite, (x0, x1, y0, y1))) or not (x0 < x1 and y0 < y1):
        raise ValueError(f"bounds must be finite with x0 < x1 and y0 < y1, got {(x0, x1, y0, y1)}")
    return x0, x1, y0, y1


def grid_points(bounds: Sequence[float], n: int) -> np.ndarray:
    """Centres of an n x n grid of cells over the plane: (n*n, 2), row-major from the top-left.

    Row r, column c is point r * n + c at x = x0 + (c + 0.5) * (x1 - x0) / n and
    y = y1 - (r + 0.5) * (y1 - y0) / n: rows run from y1 (top) down to y0, columns from x0 to x1,
    so an image grid laid out the same way sits on the map, each image over its own cell.
    """
    x0, x1, y0, y1 = _check_bounds(bounds)
    if not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_GRID_SIDE:
        raise ValueError(f"n must be an integer in [1, {MAX_GRID_SIDE}], got n={n!r}")
    t = (np.arange(n) + 0.5) / n  # (n,)
    xs, ys = x0 + t * (x1 - x0), y1 - t * (y1 - y0)
    gx, gy = np.meshgrid(xs, ys)  # (n, n): rows vary y, columns vary x
    return np.column_stack([gx.ravel(), gy.ravel()])


def manifold_grid(projection: Any, bounds: Sequence[float], n: int, *,
                  return_distance: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Latent codes (n*n, D) float32 for the cells of ``grid_points(bounds, n)`` on a fitted 2-D map.

    The codes come from ``projection.inverse``: exact for PCA (the point of the principal plane
    through the mean), local for t-SNE/UMAP (a weighted mean of nearby codes; label it with
    ``projection.inverse_kind``). return_distance: also the distance of each cell from the
    encoded data, (n*n,), in units of the map's typical spacing (>> 1: off the data).
    """
    if getattr(projection, "n_components", None) != 2:
        raise ValueError("the decoded manifold needs a 2-D map; choose 2 components")
    z, dist = projection.inverse(grid_points(bounds, n))
    return (z, dist) if return_distance else z


def density_grid(coords: Any, bounds: Sequence[float], bins: int = 100,
                 smooth: float = 1.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothed density of 2-D map points over the bounds: xs (bins,), ys (bins,), density (bins, bins).

    A 2-D histogram of the points inside the bounds (numpy ``histogram2d``), blurred by a Gaussian
    of ``smooth`` bins' standard deviation (``scipy.ndimage.gaussian_filter``, zero outside), then
    divided so that sum(density) * dx * dy = 1: a probability density over the plane, per unit
    of map area. density[r, c] is at (xs[c], ys[r]) (the cell centres, ys increasing), the layout
    plotly's contour takes as z. With no point inside the bounds it is all zeros.
    """
    from scipy.ndimage import gaussian_filter

    pts = as_codes("coords", coords, 2)
    x0, x1, y0, y1 = _check_bounds(bounds)
    if not isinstance(bins, (int, np.integer)) or not 2 <= bins <= 1000:
        raise ValueError(f"bins must be an integer in [2, 1000], got bins={bins!r}")
    if not (math.isfinite(smooth) and smooth >= 0):
        raise ValueError(f"smooth must be a number >= 0 (bins), got smooth={smooth!r}")
    h, xe, ye = np.histogram2d(pts[:, 0], pts[:, 1], bins=bins, range=[[x0, x1], [y0, y1]])
    h = gaussian_filter(h.T, sigma=smooth, mode="constant") if smooth > 0 else h.T  # (y, x)
    dx, dy = (x1 - x0) / bins, (y1 - y0) / bins
    total = h.sum() * dx * dy
    density = h / total if total > 0 else h
    return 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), density


# --- thumbnails: one sprite sheet of every point's image, for hovering and drawing on the map -----

# Pixel budget of a sheet (pixels x channels): 16.7 M, about 4 MB of PNG for 100,000 MNIST digits
# at 10 x 10 (measured: benchmarks/map_hover.py); the browser holds one sheet per dataset.
THUMB_BUDGET = 1 << 24
MIN_THUMB_SIDE = 10  # thumbnails shrink no further than this; beyond it, fewer points get one


@dataclass(frozen=True)
class ThumbnailSheet:
    """Images laid out in a grid: image i at row i // ncol, column i % ncol, each th x tw pixels."""

    sheet: np.ndarray  # (nrow * th, ncol * tw[, 3]) uint8
    count: int  # images in the sheet: rows 0..count-1 of the data (the rest have no thumbnail)
    th: int
    tw: int
    ncol: int
    factor: int  # each thumbnail pixel is the mean of a factor x factor block of the image


def thumbnail_layout(n: int, h: int, w: int, channels: int = 1, budget: int = THUMB_BUDGET,
                     min_side: int = MIN_THUMB_SIDE) -> tuple[int, int, int, int]:
    """(factor, th, tw, count) of the sheet of n images h x w: the smallest integer factor f with
    n * ceil(h/f) * ceil(w/f) * channels <= budget, but no f that brings the longer side below
    min_side (or the image's own side, if smaller); count = how many images then fit (<= n)."""
    floor = min(min_side, max(h, w))
    f = 1
    while n * math.ceil(h / f) * math.ceil(w / f) * channels > budget and \
            max(math.ceil(h / (f + 1)), math.ceil(w / (f + 1))) >= floor:
        f += 1
    th, tw = math.ceil(h / f), math.ceil(w / f)
    return f, th, tw, int(min(n, max(1, budget // (th * tw * channels))))


def thumbnail_sheet(images: Any, budget: int = THUMB_BUDGET, min_side: int = MIN_THUMB_SIDE,
                    n: int | None = None) -> ThumbnailSheet:
    """A sprite sheet of uint8 images (N, H, W) or (N, H, W, 3) within `budget` pixels x channels.

    n: the number of images the sheet is laid out for, when `images` holds only the first rows of
    them (at least the ``count`` the layout keeps: a large file's rows are then never all read).

    Each image shrinks by the integer factor f of ``thumbnail_layout`` (the mean of each f x f block,
    rounded half up; a partial block at the right/bottom edge counts zeros), so thumbnail i is exactly
    the block mean of image i. When even min_side thumbnails of all N exceed the budget, only the
    first ``count`` rows get one. Columns: ceil(sqrt(count)), so the sheet is about square.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] != 3) or len(x) == 0:
        raise ValueError(f"images must be a non-empty uint8 array (N, H, W) or (N, H, W, 3), got {x.dtype} {x.shape}")
    n, (h, w) = (len(x) if n is None else int(n)), x.shape[1:3]
    c = 1 if x.ndim == 3 else 3
    f, th, tw, count = thumbnail_layout(n, h, w, c, budget, min_side)
    if len(x) < count:
        raise ValueError(f"the sheet of {n} images holds {count}, but only {len(x)} were given")
    x = x[:count]
    if f > 1:
        pad = ((0, 0), (0, th * f - h), (0, tw * f - w)) + (((0, 0),) if c == 3 else ())
        acc = np.uint16 if f * f * 255 < 2 ** 16 else np.uint32
        padded = np.pad(x, pad)
        rows = sum(padded[:, k::f].astype(acc) for k in range(f))  # (count, th, tw * f): sums over f rows
        total = sum(rows[:, :, k::f] for k in range(f))  # (count, th, tw): then over f columns
        x = ((total + f * f // 2) // (f * f)).astype(np.uint8)  # the mean, rounded half up (integers only)
    ncol = math.ceil(math.sqrt(count))
    nrow = math.ceil(count / ncol)
    full = np.zeros((nrow * ncol, th, tw) + x.shape[3:], np.uint8)
    full[:count] = x
    sheet = full.reshape((nrow, ncol, th, tw) + x.shape[3:]).swapaxes(1, 2).reshape(
        (nrow * th, ncol * tw) + x.shape[3:])
    return ThumbnailSheet(sheet=sheet, count=count, th=th, tw=tw, ncol=ncol, factor=f)


def plane_through(axes: Any, xy: Sequence[float], code: Any) -> np.ndarray:
    """The origin (D,) of the plane z = origin + x*axes[0] + y*axes[1] that passes through `code`
    (D,) at map position xy = (x, y): the map's two directions (axes (2, D)) walked from a point's
    own full code, so position xy decodes exactly that point's reconstruction (the map's own
    inverse keeps only the 2-D part and drops the other dimensions of the code)."""
    a = np.asarray(axes, dtype=np.float64)
    z = np.asarray(code, dtype=np.float64).ravel()
    if a.ndim != 2 or a.shape[0] != 2 or a.shape[1] != z.size:
        raise ValueError(f"axes must be (2, D) with D = code's {z.size} numbers, got axes {a.shape}")
    x, y = (float(v) for v in xy)
    if not (math.isfinite(x) and math.isfinite(y)) or not np.isfinite(z).all():
        raise ValueError(f"xy and code must be finite, got xy={(x, y)}")
    return z - x * a[0] - y * a[1]
