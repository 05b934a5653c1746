"""The checks every user-file loader shares: the image array, its labels, the file budget, and
the text of a message.

`validate_array` is the one place that checks dtype, shape, NaN/Inf and value range and brings an
array to float32 (N, C, H, W) in [0, 1]; every loader of this package ends in it, and the upload UI
reuses it.
"""
from __future__ import annotations

import logging
import math
import os
import stat
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ..errors import DataError, _check_bytes
from ..lazy import Images, NpyFile

logger = logging.getLogger(__name__)

Loaded = tuple["torch.Tensor | Images", np.ndarray | None, dict]  # what a loader returns: images, labels, meta
_SHAPES_TEXT = "(N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3, or (N, P) rows with P a perfect square"


def validate_array(x: np.ndarray, name: str) -> torch.Tensor:
    """Check an image array and return it as float32 (N, C, H, W) in [0, 1]; DataError if unusable."""
    x = np.asarray(x)
    kind = _check_kind(x, name)
    _check_bytes(f"{name}: the images as float32", int(x.size) * 4, "max_data_mb")
    x = _to_nchw(x, name)
    lo, hi = _value_range(x, name, kind, len(x))
    # Always a fresh copy: the caller's array is never shared or scaled in place.
    out = torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True))
    if hi > 1:  # 0..255 pixel values
        logger.info("%s: values in [%g, %g], scaled by 1/255", name, lo, hi)
        out = out.div_(255.0)
    return out


def validate_mapped(x: "NpyFile | np.ndarray", name: str, batch_bytes: int = 16 * 2**20) -> Images:
    """validate_array's checks on an array left on disk (an `NpyFile`; any array works too), read
    `batch_bytes` at a time (each batch a buffer of our own: 16 MB keeps the load's peak small and
    the reads few): the images as a lazy `Images`, converted per batch as validate_array converts
    the whole."""
    kind = _check_kind(x, name)
    # the (N, C, H, W) view of the stored layout, found on an empty array of its row shape
    empty = np.empty((0, *x.shape[1:]), dtype=x.dtype)
    view = _to_nchw(empty, name)
    rows = max(1, batch_bytes // max(1, math.prod(x.shape[1:]) * x.dtype.itemsize))
    lo, hi = _value_range(x, name, kind, rows)
    if hi > 1:
        logger.info("%s: values in [%g, %g], scaled by 1/255", name, lo, hi)
    if isinstance(x, NpyFile):
        perm = (0, 3, 1, 2) if empty.ndim == 4 and view.shape != empty.shape else None
        return Images(x.as_images(view.shape[1:], perm), scale=hi > 1)
    return Images(_to_nchw(x, name), scale=hi > 1)


def _check_kind(x: "np.ndarray | NpyFile", name: str) -> str:
    """x's dtype kind, when it can hold images; DataError if empty or not plain numbers."""
    kind = x.dtype.kind
    if x.size == 0:
        raise DataError(f"{name}: the array is empty (shape {x.shape}); it needs at least one image")
    if kind == "O":
        raise DataError(f"{name}: the array has dtype object (mixed or non-numeric values); save plain numbers")
    if kind == "c":
        raise DataError(f"{name}: the array is complex ({x.dtype}); images need real numbers")
    if kind not in "biuf":  # strings, bytes, records, datetimes
        raise DataError(f"{name}: the array holds non-numeric values ({x.dtype}); images need numbers")
    return kind


def _value_range(x: "np.ndarray | NpyFile", name: str, kind: str, rows: int) -> tuple[float, float]:
    """(min, max) of x, `rows` rows at a time; DataError on NaN/Inf (counted over all of x) or values
    outside [0, 255]."""
    if kind == "b":
        return 0.0, 1.0
    lo, hi, n_nan, n_inf = math.inf, -math.inf, 0, 0
    for s in range(0, len(x), rows):
        c = x[s:s + rows]
        bad = ~np.isfinite(c) if kind == "f" else None
        if bad is not None and bad.any():
            k = int(np.isnan(c).sum())
            n_nan, n_inf = n_nan + k, n_inf + int(bad.sum()) - k
        elif not (n_nan or n_inf):
            lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    if n_nan or n_inf:
        raise DataError(f"{name}: contains {n_nan} NaN and {n_inf} Inf value(s); remove or replace them before loading")
    if lo < 0 or hi > 255:
        raise DataError(f"{name}: values range over [{lo:g}, {hi:g}]; expected [0, 1] or 0..255 pixel values")
    return lo, hi


def _to_nchw(x: np.ndarray, name: str) -> np.ndarray:
    """View x (one of the accepted layouts) as (N, C, H, W)."""
    if x.ndim == 2:  # (N, P) flat grey rows
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise DataError(
                f"{name}: rows of {x.shape[1]} values are not square images; accepted shapes: {_SHAPES_TEXT}"
            )
        return x.reshape(-1, 1, side, side)
    if x.ndim == 3:  # (N, H, W) grey
        return x[:, None]
    if x.ndim == 4:
        # Channels first wins a tie (PyTorch's layout); (N, H, W, C) only when C sits last alone.
        if x.shape[1] in (1, 3):
            return x
        if x.shape[3] in (1, 3):
            return x.transpose(0, 3, 1, 2)
        raise DataError(f"{name}: shape {x.shape} has no channel axis of size 1 or 3; accepted shapes: {_SHAPES_TEXT}")
    few_many = "too few" if x.ndim < 2 else "too many"
    raise DataError(
        f"{name}: {x.ndim}-D array of shape {x.shape} has {few_many} dimensions; accepted shapes: {_SHAPES_TEXT}"
    )


def class_labels(y: np.ndarray, n: int, name: str) -> tuple[np.ndarray, dict]:
    """Labels (n,) as int64 class indices; non-integer labels become indices into meta['classes']."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{name}: labels have shape {y.shape} but there are {n} images; give one label per image")
    if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()):
        return y.astype(np.int64), {}
    classes, idx = np.unique(y.astype(str), return_inverse=True)
    return idx.astype(np.int64), {"classes": tuple(classes.tolist())}


_NOT_A_FILE = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def check_regular(st: os.stat_result, what: str) -> None:
    """Refuse anything but a regular, non-empty file (from its stat, before or just after it is opened):
    a FIFO or a device would block a read or never end."""
    if not stat.S_ISREG(st.st_mode):
        kind = _NOT_A_FILE.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise DataError(f"{what}: it is {kind}, not a data file; give a regular .npz, .npy, .csv or .zip file")
    if st.st_size == 0:
        raise DataError(f"{what}: the file is empty (0 bytes); give the file with its data (was it still being "
                        "copied?)")


def open_regular(path: Path, what: str, mode: str = "rb", **kw: Any) -> IO[Any]:
    """path opened read-only, never blocking on the open (O_NONBLOCK: a FIFO swapped in after a stat
    cannot hang it), then checked as a regular non-empty file on the open descriptor itself."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        check_regular(os.fstat(fd), what)
        os.set_blocking(fd, True)  # a regular file: reads never wait; buffered IO expects blocking
        return os.fdopen(fd, mode, **kw)
    except BaseException:
        os.close(fd)
        raise


def check_file_bytes(nbytes: int, max_bytes: int | None, what: str) -> None:
    """Refuse more bytes than the file budget (a file on disk, or an archive's declared contents).

    `max_bytes` (load_file's argument) replaces max_file_mb when given.
    """
    if max_bytes is None:
        _check_bytes(what, nbytes, "max_file_mb")
    elif nbytes > max_bytes:
        raise DataError(
            f"{what} is {nbytes / 2**20:.1f} MB, over the {max_bytes / 2**20:.1f} MB limit given here; "
            "use fewer or smaller images"
        )


def show(text: str, limit: int = 80) -> str:
    """Text from a file (a name, a library's message) made safe for a one-line message: printable, short."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def short(e: BaseException) -> str:
    """An exception as a short phrase for a message: its first line, printable, at most 160 characters."""
    return show((str(e).strip().splitlines() or [""])[0] or type(e).__name__, 160)
