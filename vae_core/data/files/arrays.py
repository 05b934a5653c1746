""".npy and .npz arrays, read header first: nothing is unpickled, an object dtype is refused from the
header, and the shape is checked against max_data_mb before any array memory exists. An .npy over
mmap_over_mb as float32 (or over the file budget) is instead left on disk (within max_mapped_mb)
and read in batches with os.pread (vae_core.data.lazy.NpyFile), never through a memory map: a
mapped file that shrinks under its reader is a SIGBUS that kills the process."""
from __future__ import annotations

import io
import math
import os
import struct
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from ...streams import READ_CHUNK, read_up_to
from ..errors import DataError, _check_bytes
from ...limits import limits
from ..lazy import NpyFile
from .validate import Loaded, check_file_bytes, class_labels, open_regular, show, validate_array, validate_mapped
from .zips import member_errors, open_zip

_NPY_MAGIC = b"\x93NUMPY"
_NPY_MAX_HEADER = 10_000  # numpy's own default cap on an .npy header
_PICKLE_TEXT = "which are never loaded (they can run code); save a plain numeric array with np.save / np.savez"


def _npy_header_bytes(f: BinaryIO, what: str) -> tuple[int, bytes, bytes]:
    """(major version, header-length field, header) read from the start of an .npy stream."""
    head = read_up_to(f, 10)
    if len(head) < 10 or not head.startswith(_NPY_MAGIC):
        raise DataError(
            f"{what}: could not be read as a numpy file: it is corrupt, or pickled data, {_PICKLE_TEXT}"
        )
    major, minor = head[6], head[7]
    if major == 1:
        (hlen,) = struct.unpack("<H", head[8:10])
        prefix = head[8:10]
    elif major in (2, 3):
        more = read_up_to(f, 2)
        if len(more) < 2:
            raise DataError(f"{what}: could not be read: the file ends inside its numpy header; it is truncated")
        (hlen,) = struct.unpack("<I", head[8:10] + more)
        prefix = head[8:10] + more
    else:
        raise DataError(f"{what}: could not be read: numpy format version {major}.{minor} is unknown; "
                        "save the array again with np.save")
    if hlen > _NPY_MAX_HEADER:
        raise DataError(f"{what}: could not be read: its numpy header claims {hlen:,} bytes (numpy writes a few "
                        "hundred); the file is corrupt")
    header = read_up_to(f, hlen)
    if len(header) < hlen:
        raise DataError(f"{what}: could not be read: the file ends inside its numpy header; it is truncated")
    return major, prefix, header


def npy_header(f: BinaryIO, what: str, size: int, *, text: bool = False,
               budget: Callable[[tuple[int, ...], np.dtype], None] | None = None,
               ) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the header of an .npy stream of `size` bytes in all.

    Reads only the header, and checks it before any array memory exists: a numeric dtype, the
    shape as float32 within max_data_mb (or `budget(shape, dtype)` raises), and exactly the data
    bytes the header claims left in the stream (else truncated or corrupt). `text`: strings are
    allowed too (labels).
    """
    from numpy.lib import format as npformat

    major, prefix, header = _npy_header_bytes(f, what)
    reader = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
    try:  # format 3.0 differs from 2.0 only in a utf-8 header, which only record field names need
        shape, fortran, dtype = reader(io.BytesIO(prefix + header))
    except Exception:  # noqa: BLE001 - numpy raises ValueError, SyntaxError, TypeError... for bad headers
        raise DataError(f"{what}: could not be read: its numpy header is corrupt; save the array again with np.save") \
            from None
    shape = tuple(int(s) for s in shape)
    if dtype.hasobject:
        raise DataError(f"{what}: holds pickled Python objects, {_PICKLE_TEXT}")
    if dtype.names is not None or dtype.subdtype is not None:
        raise DataError(f"{what}: holds a structured (record) array ({dtype}); images need a plain numeric array, "
                        "save one with np.save")
    if dtype.kind not in ("biufcUS" if text else "biufc"):
        raise DataError(f"{what}: the array holds non-numeric values ({dtype}); images need numbers")
    if any(s < 0 for s in shape):
        raise DataError(f"{what}: could not be read: its header gives a negative shape {shape}; it is corrupt")
    count = math.prod(shape)
    if budget is None:
        _check_bytes(f"{what}: the array of shape {shape} as float32", count * 4, "max_data_mb")
    else:
        budget(shape, dtype)
    data = count * dtype.itemsize
    held = size - (8 + len(prefix) + len(header))  # bytes after magic, version, header length and header
    if held != data:
        raise DataError(
            f"{what}: could not be read: its header says shape {shape} of {dtype}, {data:,} bytes of data, but "
            f"{held:,} bytes follow it: it is truncated or corrupt; save the array again with np.save"
        )
    return shape, bool(fortran), dtype


def read_npy_data(f: BinaryIO, shape: tuple[int, ...], fortran: bool, dtype: np.dtype, what: str) -> np.ndarray:
    """The array whose header npy_header just read, from the rest of the stream (checked size)."""
    nbytes = math.prod(shape) * dtype.itemsize
    buf = np.empty(nbytes, dtype=np.uint8)
    view = memoryview(buf)
    pos = 0
    while pos < nbytes:
        got = f.readinto(view[pos:pos + READ_CHUNK])
        if not got:
            raise DataError(f"{what}: could not be read: the data ends after {pos:,} of {nbytes:,} bytes; "
                            "it is truncated")
        pos += got
    return buf.view(dtype).reshape(shape, order="F" if fortran else "C")


def load_npy(path: Path, max_bytes: int | None) -> Loaded:
    """An .npy read whole, or left on disk when it is over mmap_over_mb as float32 or over the file
    budget on disk (then within max_mapped_mb, validated and later read in batches with os.pread)."""
    name = path.name
    mapped = []

    with open_regular(path, name) as f:
        size = os.fstat(f.fileno()).st_size

        def budget(shape: tuple[int, ...], dtype: np.dtype) -> None:
            count, lim = math.prod(shape), limits()
            file_budget = max_bytes if max_bytes is not None else lim.max_file_mb * 2**20
            if count * 4 > lim.mmap_over_mb * 2**20 or size > file_budget:
                _check_bytes(f"{name}: the array of shape {shape} (read from disk in batches)", count * dtype.itemsize,
                             "max_mapped_mb")
                mapped.append(True)
            else:
                _check_bytes(f"{name}: the array of shape {shape} as float32", count * 4, "max_data_mb")

        shape, fortran, dtype = npy_header(f, name, size, budget=budget)
        if not mapped:
            return validate_array(read_npy_data(f, shape, fortran, dtype, name), name), None, {}
        if fortran and len(shape) > 1:  # its rows are scattered over the file: no batch is one read
            raise DataError(f"{name}: a file this large must be stored in C (row) order to be read in batches, "
                            "and this one is in Fortran order; save it with np.save(f, np.ascontiguousarray(a))")
        rows = NpyFile(os.dup(f.fileno()), name, f.tell(), shape, dtype)  # the header checked its size
    return validate_mapped(rows, name), None, {"mapped": True}


def load_npz(path: Path, max_bytes: int | None) -> Loaded:
    """The images of an npz (its array 'x', or its only array but 'y'), and labels 'y' when present."""
    name = path.name
    with open_zip(path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        # Compressed members can be far larger than the file: their declared sizes count.
        check_file_bytes(sum(i.file_size for i in infos), max_bytes, f"{name} (uncompressed)")
        members: dict[str, zipfile.ZipInfo] = {}
        for i in infos:  # np.load's keys: member names less ".npy"
            members.setdefault(i.filename[:-4] if i.filename.endswith(".npy") else i.filename, i)
        keys = list(members)
        images = [k for k in keys if k != "y"]
        if "x" in keys:
            key = "x"
        elif len(images) == 1:
            key = images[0]
        else:
            found = show(", ".join(keys), 200) or "none"
            raise DataError(f"{name}: cannot tell which array holds the images (arrays: {found}); name it 'x'")
        x = validate_array(_read_npz_member(zf, members[key], name), f"{name}['{show(key)}']")
        if "y" not in keys:
            return x, None, {}
        y, meta = class_labels(_read_npz_member(zf, members["y"], name, text=True), len(x), f"{name}['y']")
    return x, y, meta


def _read_npz_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, *, text: bool = False) -> np.ndarray:
    """One array of an npz, its header read and checked through the member's stream first."""
    what = f"{name}: member '{show(info.filename)}'"
    with member_errors(what), zf.open(info) as f:
        shape, fortran, dtype = npy_header(f, what, info.file_size, text=text)
        return read_npy_data(f, shape, fortran, dtype, what)
