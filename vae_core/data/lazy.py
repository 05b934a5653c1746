"""`Images`: a dataset's x read from a memory-mapped .npy a batch at a time, never whole.

It stands where `Dataset.x` is a float32 tensor (N, C, H, W) for the code that only ever slices x:
`x[i:j]`, `x[int]` or `x[index array]` return a float32 tensor in [0, 1] holding just those rows
(converted from the stored dtype, scaled by 1/255 when the file holds 0..255 values, exactly as
`validate_array` converts a whole array), and `x.to(device)` gives a view whose batches land on
that device. Sequential slices hand the file pages they touched back to the kernel (madvise), so
the process's memory stays about one batch whatever the file's size. Whole-array uses (`cpu()`,
`np.asarray(x)`) load everything, checked against max_data_mb first.
"""
from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import torch

from ..limits import limits

_PAGE = mmap.PAGESIZE


class Images:
    """(N, C, H, W) float32 images in [0, 1], read on demand from `array` (an (M, C, H, W) view of a
    np.memmap), optionally through `index` (the rows of `array` this view holds, a subset)."""

    dtype = torch.float32

    def __init__(self, array: np.ndarray, scale: bool, index: np.ndarray | None = None,
                 device: torch.device | str = "cpu"):
        self.array, self.scale, self.index = array, bool(scale), index
        self.device = torch.device(device)

    # --- what the tensor-slicing code reads ----------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.array.shape[1:]))

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return int(self.array.shape[0] if self.index is None else len(self.index))

    def to(self, device: Any = None, *args: Any, **kwargs: Any) -> "Images":
        """A view whose batches are moved to `device` (dtype arguments other than float32 are refused)."""
        dtype = kwargs.get("dtype", next((a for a in (device, *args) if isinstance(a, torch.dtype)), None))
        if dtype not in (None, torch.float32):
            raise TypeError(f"memory-mapped images are float32; cannot convert to {dtype}")
        dev = device if isinstance(device, (str, torch.device)) else self.device
        return Images(self.array, self.scale, self.index, dev)

    def __getitem__(self, key: Any) -> torch.Tensor:
        if isinstance(key, tuple):  # rows first, then the rest on the rows' tensor
            head = self[key[0]]
            return head[key[1:]] if isinstance(key[0], (int, np.integer)) else head[(slice(None), *key[1:])]
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"index {int(key)} is out of range for {len(self)} images")
            return self[i:i + 1][0]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if self.index is None and step == 1:
                out = self._tensor(self.array[start:stop])
                self._release(start, stop)
                return out
            key = np.arange(start, stop, step)
        rows = np.asarray(key)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64, copy=False)
        return self._tensor(self.array[rows if self.index is None else self.index[rows]])

    # --- subsets and whole-array uses ----------------------------------------------------------
    def take(self, rows: np.ndarray) -> "torch.Tensor | Images":
        """Rows `rows` of this view: a tensor in memory when they fit under mmap_over_mb as float32
        (a diagnose subset, a --n draw), else a lazy view of them (a held-out split of a huge file)."""
        rows = np.asarray(rows, dtype=np.int64)
        row_bytes = 4 * int(np.prod(self.array.shape[1:]))
        if len(rows) * row_bytes <= limits().mmap_over_mb * 2**20:
            return self[rows]
        return Images(self.array, self.scale, rows if self.index is None else self.index[rows], self.device)

    def cpu(self) -> torch.Tensor:
        """Every image in memory (checked against max_data_mb): for code that needs the whole array."""
        from . import _check_bytes

        _check_bytes("the memory-mapped images as float32", len(self) * 4 * int(np.prod(self.array.shape[1:])),
                     "max_data_mb")
        return self[:].cpu()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.cpu().numpy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"Images({tuple(self.shape)}, memory-mapped {self.array.dtype}, device={self.device})"

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))
        if self.scale:  # 0..255 pixel values: the same division validate_array makes
            t = t.div_(255.0)
        return t if self.device.type == "cpu" else t.to(self.device)

    def _release(self, start: int, stop: int) -> None:
        """Hand the file pages of rows [start, stop) back to the kernel (they are re-read if needed)."""
        release_rows(self.array, start, stop)


def release_rows(array: np.ndarray, start: int, stop: int) -> None:
    """madvise(DONTNEED) the pages of rows [start, stop) of a view of a read-only np.memmap: the
    process's resident memory then holds about one batch of a file read in order. Best effort."""
    mm = array
    while isinstance(mm, np.ndarray) and not isinstance(mm.base, mmap.mmap):
        mm = mm.base  # views (reshape, transpose) down to the memmap that owns the mapping
    if not (isinstance(mm, np.memmap) and mm.flags.c_contiguous and hasattr(mmap, "MADV_DONTNEED")) \
            or stop <= start:
        return
    raw = mm.base
    row = int(np.prod(array.shape[1:])) * array.dtype.itemsize
    begin = int(mm.offset) % mmap.ALLOCATIONGRANULARITY + start * row  # np.memmap maps from an aligned offset
    first = begin - begin % _PAGE
    length = min(begin + (stop - start) * row, len(raw)) - first
    try:
        raw.madvise(mmap.MADV_DONTNEED, first, length)
    except (OSError, ValueError):
        pass


__all__ = ["Images", "release_rows"]
