"""`Images`: a dataset's x read from a large .npy a batch at a time, never whole.

It stands where `Dataset.x` is a float32 tensor (N, C, H, W) for the code that only ever slices x:
`x[i:j]`, `x[int]` or `x[index array]` return a float32 tensor in [0, 1] holding just those rows
(converted from the stored dtype, scaled by 1/255 when the file holds 0..255 values, exactly as
`validate_array` converts a whole array), and `x.to(device)` gives a view whose batches land on
that device. Whole-array uses (`cpu()`, `np.asarray(x)`) load everything, checked against
max_data_mb first; `batches(x)` and `materialise(x)` serve code that takes a tensor.

The rows are read by `NpyFile` with `os.pread` into buffers allocated here, each read's length
checked, never through a memory map: a mapped file that shrinks under its reader kills the whole
process with SIGBUS on the next touch of a page past its end (an admin refreshing the server's
data folder with `cp`, which truncates the same inode first, does exactly that). A short read, or
a size or modification time that moved, is one DataError naming the file instead.
"""
from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ..limits import limits


def changed_error(name: str, why: str) -> Exception:
    """The one sentence for a file that changed under its reader (a DataError; imported late: no cycle)."""
    from .errors import DataError

    return DataError(f"{name}: the file changed while being read ({why}); reload it once it is complete")


class NpyFile:
    """The data rows of an .npy file on disk, read with os.pread: stored rows (N, *row_shape) of
    `dtype`, C order, starting at byte `offset`; `as_images` gives the view whose rows come out as
    (C, H, W) images (reshaped, and transposed from (H, W, C) files).

    It holds one file descriptor (closed when the last view goes) and the file's size and
    modification time when opened: every read checks its length and then that neither moved.
    """

    def __init__(self, fd: int, name: str, offset: int, shape: tuple[int, ...], dtype: np.dtype):
        self._handle = _Handle(fd)  # shared by every view of this file; closes the descriptor with the last
        st = os.fstat(fd)
        self.name, self.offset = name, int(offset)
        self.stored, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.shape: tuple[int, ...] = self.stored  # as stored, until as_images gives the (N, C, H, W) view
        self.perm: tuple[int, ...] | None = None
        self.row_bytes = int(np.prod(self.stored[1:], dtype=np.int64)) * self.dtype.itemsize
        self._stamp = (st.st_size, st.st_mtime_ns)

    def as_images(self, nchw: tuple[int, ...], perm: tuple[int, ...] | None) -> "NpyFile":
        """The same file (one descriptor, shared) seen as (N, *nchw) images."""
        out = object.__new__(NpyFile)
        out.__dict__.update(self.__dict__)
        out.shape, out.perm = (self.stored[0], *nchw), perm
        return out

    def close(self) -> None:
        """Close the file now (every view of it); later reads raise OSError."""
        self._handle.close()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        """Rows by slice (step 1) or by index array: a fresh array (n, *shape[1:]) of the stored dtype."""
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._shown(self._read_run(start, max(start, stop)), max(0, stop - start))
            key = np.arange(start, stop, step)
        rows = np.asarray(key, dtype=np.int64).reshape(-1)
        if rows.size == 0:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        if rows.min() < 0 or rows.max() >= len(self):
            raise IndexError(f"row index out of range for {len(self)} rows")
        uniq, inverse = np.unique(rows, return_inverse=True)
        # consecutive rows in one read each: (runs,) starts and ends into uniq
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
        starts, ends = np.r_[0, breaks].tolist(), np.r_[breaks, len(uniq)].tolist()
        rb, fd = self.row_bytes, self._handle.fd
        buf = np.empty(len(uniq) * rb, dtype=np.uint8)
        view, first = memoryview(buf), (self.offset + uniq[starts] * rb).tolist()  # byte offsets of the runs
        for a, b, at in zip(starts, ends, first):
            if os.preadv(fd, [view[a * rb:b * rb]], at) != (b - a) * rb:  # short: the loop that says why
                self._pread(buf[a * rb:b * rb], int(uniq[a]))
        self._check_unchanged()
        return self._shown(buf, len(uniq))[inverse]

    def _read_run(self, start: int, stop: int) -> np.ndarray:
        buf = np.empty((stop - start) * self.row_bytes, dtype=np.uint8)
        self._pread(buf, start)
        self._check_unchanged()
        return buf

    def _pread(self, buf: np.ndarray, row: int) -> None:
        """Fill buf (uint8) from row `row` on, looping over partial reads; a short file is a DataError."""
        view, pos, at = memoryview(buf), 0, self.offset + row * self.row_bytes
        while pos < len(buf):
            got = os.preadv(self._handle.fd, [view[pos:]], at + pos)
            if got <= 0:
                now = os.fstat(self._handle.fd).st_size
                raise changed_error(self.name, f"it is {now:,} bytes now, {self._stamp[0]:,} when it was opened")
            pos += got

    def _check_unchanged(self) -> None:
        st = os.fstat(self._handle.fd)
        if (st.st_size, st.st_mtime_ns) != self._stamp:
            raise changed_error(self.name, "its size or modification time moved")

    def _shown(self, buf: np.ndarray, n: int) -> np.ndarray:
        """Raw bytes of n stored rows -> (n, *shape[1:]) of dtype (a view of buf, copied only to transpose)."""
        a = buf.view(self.dtype).reshape(n, *self.stored[1:])
        if self.perm is not None:
            a = a.transpose(self.perm)
        return a.reshape(n, *self.shape[1:])

    def __repr__(self) -> str:
        return f"NpyFile({self.name!r}, {self.stored}, {self.dtype})"


class _Handle:
    """A file descriptor closed when no view holds it any more."""

    def __init__(self, fd: int):
        self.fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        self._finalizer()


class Images:
    """(N, C, H, W) float32 images in [0, 1], read on demand from `array` (an `NpyFile` of (M, C, H, W)
    rows, or any array of that shape), optionally through `index` (the rows of `array` this view
    holds, a subset)."""

    dtype = torch.float32

    def __init__(self, array: "NpyFile | np.ndarray", scale: bool, index: np.ndarray | None = None,
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
            raise TypeError(f"images read from a large file are float32; cannot convert to {dtype}")
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
                return self._tensor(self.array[start:max(start, stop)])
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
        if len(rows) * self.row_bytes() <= limits().mmap_over_mb * 2**20:
            return self[rows]
        return Images(self.array, self.scale, rows if self.index is None else self.index[rows], self.device)

    def row_bytes(self) -> int:
        """Bytes of one image as float32."""
        return 4 * int(np.prod(self.array.shape[1:]))

    def cpu(self) -> torch.Tensor:
        """Every image in memory (checked against max_data_mb): for code that needs the whole array."""
        from .errors import _check_bytes

        _check_bytes("the images of the large file as float32", len(self) * self.row_bytes(), "max_data_mb")
        return self[:].cpu()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.cpu().numpy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"Images({tuple(self.shape)}, read from {self.array!r}, device={self.device})"

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))
        if self.scale:  # 0..255 pixel values: the same division validate_array makes
            t = t.div_(255.0)
        return t if self.device.type == "cpu" else t.to(self.device)


def batch_rows(x: "torch.Tensor | Images", max_bytes: int = 64 * 2**20) -> int:
    """Images per batch so that one batch of x as float32 holds at most max_bytes (at least 1)."""
    return max(1, max_bytes // max(1, 4 * int(np.prod(tuple(x.shape[1:])))))


def batches(x: "torch.Tensor | Images", rows: int | None = None) -> Iterator[torch.Tensor]:
    """x (N, C, H, W) as consecutive tensors of at most `rows` images (default: 64 MB each), in order."""
    rows = rows or batch_rows(x)
    for s in range(0, int(x.shape[0]), rows):
        yield x[s:s + rows]


def materialise(x: "torch.Tensor | Images", what: str = "the images") -> torch.Tensor:
    """x as a tensor in memory: a tensor as is, lazy images read whole (checked against max_data_mb)."""
    if isinstance(x, torch.Tensor):
        return x
    from .errors import _check_bytes

    _check_bytes(f"{what} as float32", len(x) * x.row_bytes(), "max_data_mb")
    return x[:]


__all__ = ["Images", "NpyFile", "batch_rows", "batches", "changed_error", "materialise"]
