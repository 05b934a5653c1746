"""A user's own data: `.npz` / `.npy` arrays, a CSV of pixel rows, a folder or `.zip` of images.

Every loader ends in `validate_array`, the one place that checks dtype, shape, NaN/Inf and value
range and brings the array to float32 (N, C, H, W) in [0, 1]; the upload UI reuses it. Nothing a
user gives is ever unpickled: numpy arrays are read from their header by this module, never by
`np.load`, and an object dtype is refused from the header.

Files come from strangers (DESIGN.md, "Trust boundary"), so every size is checked before memory
is allocated for it, against the budgets of `vae_core.limits`: the file on disk and a zip's
declared uncompressed size (max_file_mb), an array's shape from its header as float32
(max_data_mb), each image's width x height from its header before it is decoded
(max_image_pixels) and all images' pixels x channels together (max_total_pixels), a CSV's fields
(max_csv_field), columns (max_image_pixels) and rows (max_data_mb, as they accumulate), a zip's
member count (max_files). Zip members are read through a stream capped at their declared size.
Anything a bad file makes a library raise ends as one DataError naming the file.
"""
from __future__ import annotations

import contextlib
import csv
import io
import itertools
import logging
import math
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
import torch

from ..limits import ENV, LimitError, limits
from . import Dataset, DataError, DataLimitError, _check, _check_bytes

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SUPPORTED = (".npz", ".npy", ".csv", ".zip")
_SUPPORTED_TEXT = ".npz, .npy, .csv, .zip of images, or a folder of .png/.jpg images"
_LABEL_COLUMNS = ("label", "y")
_Loaded = tuple[torch.Tensor, np.ndarray | None, dict]  # images, labels, meta
_SHAPES_TEXT = "(N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3, or (N, P) rows with P a perfect square"
_IMAGE_FORMATS = ("PNG", "JPEG")  # the only Pillow decoders tried, whatever the suffix (JPEG covers MPO)
_READ_CHUNK = 1 << 20  # bytes per read from a file or zip member
_NPY_MAGIC = b"\x93NUMPY"
_NPY_MAX_HEADER = 10_000  # numpy's own default cap on an .npy header
_PICKLE_TEXT = "which are never loaded (they can run code); save a plain numeric array with np.save / np.savez"


def validate_array(x: np.ndarray, name: str) -> torch.Tensor:
    """Check an image array and return it as float32 (N, C, H, W) in [0, 1]; DataError if unusable."""
    x = np.asarray(x)
    kind = x.dtype.kind
    if x.size == 0:
        raise DataError(f"{name}: the array is empty (shape {x.shape}); it needs at least one image")
    if kind == "O":
        raise DataError(f"{name}: the array has dtype object (mixed or non-numeric values); save plain numbers")
    if kind == "c":
        raise DataError(f"{name}: the array is complex ({x.dtype}); images need real numbers")
    if kind not in "biuf":  # strings, bytes, records, datetimes
        raise DataError(f"{name}: the array holds non-numeric values ({x.dtype}); images need numbers")
    _check_bytes(f"{name}: the images as float32", int(x.size) * 4, "max_data_mb")
    x = _to_nchw(x, name)
    if kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            n_nan = int(np.isnan(x).sum())
            raise DataError(
                f"{name}: contains {n_nan} NaN and {int(bad.sum()) - n_nan} Inf value(s); "
                "remove or replace them before loading"
            )
    lo, hi = (float(x.min()), float(x.max())) if kind != "b" else (0.0, 1.0)
    if lo < 0 or hi > 255:
        raise DataError(f"{name}: values range over [{lo:g}, {hi:g}]; expected [0, 1] or 0..255 pixel values")
    # Always a fresh copy: the caller's array is never shared or scaled in place.
    out = torch.from_numpy(np.array(x, dtype=np.float32, order="C", copy=True))
    if hi > 1:  # 0..255 pixel values
        logger.info("%s: values in [%g, %g], scaled by 1/255", name, lo, hi)
        out = out.div_(255.0)
    return out


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


def load_file(path: Path, *, max_bytes: int | None = None) -> Dataset:
    """A user's .npz, .npy, .csv, .zip of images or folder of images, as a Dataset named after the file.

    Every size is checked against vae_core.limits before memory is allocated for it; `max_bytes`
    replaces the file budget (max_file_mb) when given. Whatever the file, the only exception is a
    DataError (DataLimitError for a budget) naming the file and what to do.
    """
    path = Path(path)
    with _reading(path):
        if not path.exists():
            raise DataError(f"{path}: no such file or folder; check the path")
        suffix = path.suffix.lower()
        if path.is_dir():
            loader = _load_folder
        elif suffix in _LOADERS:
            _check_file_bytes(path.stat().st_size, max_bytes, f"{path.name}: the file")
            loader = _LOADERS[suffix]
        else:
            raise DataError(f"{path}: unsupported file type '{suffix or path.name}'; use {_SUPPORTED_TEXT}")
        x, y, meta = loader(path, max_bytes)
        return Dataset(x=x, name=path.name, y=y, meta={"source": str(path), **meta})


def _check_file_bytes(nbytes: int, max_bytes: int | None, what: str) -> None:
    """Refuse more bytes than the file budget (a file on disk, or an archive's declared contents)."""
    if max_bytes is None:
        _check_bytes(what, nbytes, "max_file_mb")
    elif nbytes > max_bytes:
        raise DataError(
            f"{what} is {nbytes / 2**20:.1f} MB, over the {max_bytes / 2**20:.1f} MB limit given here; "
            "use fewer or smaller images"
        )


def _show(text: str, limit: int = 80) -> str:
    """Text from a file (a name, a library's message) made safe for a one-line message: printable, short."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _short(e: BaseException) -> str:
    """An exception as a short phrase for a message: its first line, printable, at most 160 characters."""
    return _show((str(e).strip().splitlines() or [""])[0] or type(e).__name__, 160)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn anything a bad file makes a library raise into one DataError naming the file."""
    from PIL import Image

    name = path.name or str(path)
    corrupt = "the file may be corrupt, truncated or not what its name says"
    try:
        yield
    except DataError:
        raise
    except LimitError as e:  # a budget variable that is not a number
        raise DataLimitError(str(e)) from None
    except UnicodeDecodeError as e:  # a ValueError: caught before the general case
        byte = e.object[e.start:e.start + 1].hex() if isinstance(e.object, bytes) else "?"
        raise DataError(
            f"{name}: could not be read as text: it is not UTF-8 (byte 0x{byte}: {e.reason}); "
            "save it as a UTF-8 CSV of numbers"
        ) from None
    except csv.Error as e:
        raise DataError(f"{name}: could not be read as CSV ({_short(e)}); save it as a plain CSV of numbers") from None
    except MemoryError:
        raise DataError(f"{name}: could not be read: it needs more memory than is free; use a smaller file") from None
    except RecursionError:
        raise DataError(f"{name}: could not be read: it is nested too deeply to parse; {corrupt}") from None
    except Image.DecompressionBombError as e:
        raise DataError(f"{name}: an image is over the image reader's own size limit ({_short(e)}); "
                        "use smaller images") from None
    except OSError as e:  # its text may name a server path: the reason alone
        raise DataError(f"{name}: could not be read ({_show(e.strerror or type(e).__name__)}); {corrupt}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, ArithmeticError, LookupError,
            TypeError, AttributeError, RuntimeError, SyntaxError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{name}: could not be read ({_short(e)}); {corrupt}") from None
    except Exception as e:  # noqa: BLE001 - nothing a file does may escape as anything but a sentence
        logger.warning("%s: unexpected %s while reading", name, type(e).__name__, exc_info=True)
        raise DataError(f"{name}: could not be read ({type(e).__name__}: {_short(e)}); {corrupt}") from None


def _labels(y: np.ndarray, n: int, name: str) -> tuple[np.ndarray, dict]:
    """Labels (n,) as int64 class indices; non-integer labels become indices into meta['classes']."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{name}: labels have shape {y.shape} but there are {n} images; give one label per image")
    if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()):
        return y.astype(np.int64), {}
    classes, idx = np.unique(y.astype(str), return_inverse=True)
    return idx.astype(np.int64), {"classes": tuple(classes.tolist())}


# ---------------------------------------------------------------- .npy / .npz: the header first


def _read_up_to(f: BinaryIO, n: int) -> bytes:
    """Up to n bytes (fewer only at the end of the stream), in chunks."""
    parts, got = [], 0
    while got < n:
        b = f.read(min(_READ_CHUNK, n - got))
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _npy_header(f: BinaryIO, what: str, size: int, *, text: bool = False) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the header of an .npy stream of `size` bytes in all.

    Reads only the header, and checks it before any array memory exists: a numeric dtype, the
    shape as float32 within max_data_mb, and exactly the data bytes the header claims left in
    the stream (else truncated or corrupt). `text`: strings are allowed too (labels).
    """
    from numpy.lib import format as npformat

    head = _read_up_to(f, 10)
    if len(head) < 10 or not head.startswith(_NPY_MAGIC):
        raise DataError(
            f"{what}: could not be read as a numpy file: it is corrupt, or pickled data, {_PICKLE_TEXT}"
        )
    major, minor = head[6], head[7]
    if major == 1:
        (hlen,) = struct.unpack("<H", head[8:10])
        prefix = head[8:10]
    elif major in (2, 3):
        more = _read_up_to(f, 2)
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
    header = _read_up_to(f, hlen)
    if len(header) < hlen:
        raise DataError(f"{what}: could not be read: the file ends inside its numpy header; it is truncated")
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
    _check_bytes(f"{what}: the array of shape {shape} as float32", count * 4, "max_data_mb")
    data = count * dtype.itemsize
    held = size - (8 + len(prefix) + hlen)  # bytes after magic, version, header length and header
    if held != data:
        raise DataError(
            f"{what}: could not be read: its header says shape {shape} of {dtype}, {data:,} bytes of data, but "
            f"{held:,} bytes follow it: it is truncated or corrupt; save the array again with np.save"
        )
    return shape, bool(fortran), dtype


def _read_npy_data(f: BinaryIO, shape: tuple[int, ...], fortran: bool, dtype: np.dtype, what: str) -> np.ndarray:
    """The array whose header _npy_header just read, from the rest of the stream (checked size)."""
    nbytes = math.prod(shape) * dtype.itemsize
    buf = np.empty(nbytes, dtype=np.uint8)
    view = memoryview(buf)
    pos = 0
    while pos < nbytes:
        got = f.readinto(view[pos:pos + _READ_CHUNK])
        if not got:
            raise DataError(f"{what}: could not be read: the data ends after {pos:,} of {nbytes:,} bytes; "
                            "it is truncated")
        pos += got
    return buf.view(dtype).reshape(shape, order="F" if fortran else "C")


def _load_npy(path: Path, max_bytes: int | None) -> _Loaded:
    with open(path, "rb") as f:
        shape, fortran, dtype = _npy_header(f, path.name, path.stat().st_size)
        a = _read_npy_data(f, shape, fortran, dtype, path.name)
    return validate_array(a, path.name), None, {}


def _load_npz(path: Path, max_bytes: int | None) -> _Loaded:
    name = path.name
    with _open_zip(path) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        # Compressed members can be far larger than the file: their declared sizes count.
        _check_file_bytes(sum(i.file_size for i in infos), max_bytes, f"{name} (uncompressed)")
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
            found = _show(", ".join(keys), 200) or "none"
            raise DataError(f"{name}: cannot tell which array holds the images (arrays: {found}); name it 'x'")
        x = validate_array(_read_npz_member(zf, members[key], name), f"{name}['{_show(key)}']")
        if "y" not in keys:
            return x, None, {}
        y, meta = _labels(_read_npz_member(zf, members["y"], name, text=True), len(x), f"{name}['y']")
    return x, y, meta


def _read_npz_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, *, text: bool = False) -> np.ndarray:
    """One array of an npz, its header read and checked through the member's stream first."""
    what = f"{name}: member '{_show(info.filename)}'"
    with _member_errors(what), zf.open(info) as f:
        shape, fortran, dtype = _npy_header(f, what, info.file_size, text=text)
        return _read_npy_data(f, shape, fortran, dtype, what)


# ---------------------------------------------------------------- zips


@contextlib.contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """The archive, its members counted (max_files) before ZipFile parses its directory into memory.

    ZipFile makes an object of about half a kilobyte for every directory entry, and an entry can
    be 46 bytes, whatever member count the end record claims; so the entries are counted here by
    walking their fixed-size headers, and the count checked, first.
    """
    name = path.name
    limit = limits().max_files
    with open(path, "rb") as fh:
        end = zipfile._EndRecData(fh)  # noqa: SLF001 - the end record, as ZipFile itself reads it
        size = fh.seek(0, 2)
        if end is None:
            raise DataError(f"{name}: could not be read: it is not a zip file (no zip directory at its end); "
                            "the file may be corrupt or truncated")
        _check(f"{name}: the zip's member count", int(end[zipfile._ECD_ENTRIES_TOTAL]), "max_files", unit="files")
        dir_bytes = int(end[zipfile._ECD_SIZE])
        start = int(end[zipfile._ECD_LOCATION]) - dir_bytes  # where ZipFile will look for it
        if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        if dir_bytes > size or start < 0:
            raise DataError(f"{name}: could not be read: its zip directory claims {dir_bytes:,} bytes, more than the "
                            "file holds; the file is corrupt or truncated")
        fh.seek(start)
        count, pos = 0, 0
        while pos < dir_bytes:
            entry = fh.read(46)
            if len(entry) < 46 or entry[:4] != b"PK\x01\x02":
                break  # ZipFile says what is wrong
            count += 1
            if count > limit:
                _check(f"{name}: the zip's member count, counted so far,", count, "max_files", unit="files")
            skip = sum(struct.unpack("<HHH", entry[28:34]))  # name, extra field and comment lengths
            fh.seek(skip, 1)
            pos += 46 + skip
    with zipfile.ZipFile(path) as zf:
        yield zf


@contextlib.contextmanager
def _member_errors(what: str) -> Iterator[None]:
    """A zip member's read error (bad CRC, bad deflate data, encryption...) as one DataError naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
            struct.error, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{what} is corrupt ({_short(e)}); make the zip again") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    """A member's bytes through a stream capped at its declared size; a header that lies is an error."""
    with _member_errors(what), zf.open(info) as f:
        data = _read_up_to(f, info.file_size)  # zipfile stops at the declared size and checks the CRC there
        if len(data) != info.file_size:
            raise DataError(f"{what} is corrupt (its header declares {info.file_size:,} bytes but it holds "
                            f"{len(data):,}); make the zip again")
    return data


# ---------------------------------------------------------------- images: folder or zip


def _load_folder(path: Path, max_bytes: int | None) -> _Loaded:
    name, limit = path.name, limits().max_files
    files = []
    for p in path.rglob("*"):
        if p.is_file() and _is_image(p.relative_to(path).as_posix()):
            files.append(p)
            if len(files) > limit:
                _check(f"{name}: the number of images", len(files), "max_files", unit="files")
    files.sort()
    _check_file_bytes(sum(p.stat().st_size for p in files), max_bytes, f"{name} (images)")
    return _load_images([(p.relative_to(path).as_posix(), lambda p=p: open(p, "rb")) for p in files], name)


def _load_zip(path: Path, max_bytes: int | None) -> _Loaded:
    name = path.name
    with _open_zip(path) as zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir() and _is_image(i.filename)), key=lambda i: i.filename)
        _check_file_bytes(sum(i.file_size for i in infos), max_bytes, f"{name} (uncompressed images)")
        # Read inside the with-block: each opener closes over the open archive.
        return _load_images(
            [(i.filename, lambda i=i: io.BytesIO(_read_member(zf, i, f"{name}: member '{_show(i.filename)}'")))
             for i in infos],
            name,
        )


def _is_image(rel: str) -> bool:
    """An image file by suffix, not hidden and not macOS archive metadata."""
    parts = PurePosixPath(rel).parts
    return (
        PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES
        and not any(p.startswith(".") or p == "__MACOSX" for p in parts)
    )


def _channels(mode: str) -> int:
    """Channels an image of this Pillow mode has after _to_8bit: 1 (grey) or 3."""
    return 1 if mode in ("1", "L", "I", "F") or mode.startswith("I;16") else 3


def _load_images(items: list[tuple[str, Callable[[], BinaryIO]]], name: str) -> _Loaded:
    """Decode (relative path, opener) images to one size (the most common) and validate them.

    Each image's size comes from its header (Image.open decodes nothing) and is checked against
    max_image_pixels, and the running total of pixels x channels against max_total_pixels,
    before it is decoded; the stacked float32 result against max_data_mb before it is built.
    """
    from PIL import Image, UnidentifiedImageError

    if not items:
        looked = ", ".join(IMAGE_SUFFIXES)
        raise DataError(f"{name}: no images found (looked for {looked}); add some or pick another source")
    images = []
    total = 0
    for rel, opener in items:
        what = f"{name}: image '{_show(rel)}'"
        try:
            with opener() as fh:
                with warnings.catch_warnings():  # sizes are checked below, against this project's budget
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    im = Image.open(fh, formats=_IMAGE_FORMATS)
                with im:
                    w, h = im.size
                    _check(f"{what} ({w:,} x {h:,})", w * h, "max_image_pixels", unit="pixels")
                    total += w * h * _channels(im.mode)
                    _check(f"{name}: the images up to '{_show(rel)}' together", total, "max_total_pixels",
                           unit="pixel values (width x height x channels)")
                    im.load()  # decode now, so a truncated file fails here with its name
                    images.append(_to_8bit(im))
        except DataError:
            raise
        except UnidentifiedImageError:  # its own text names the server's path of the file
            raise DataError(f"{what} could not be read (it is not a PNG or JPEG image); it may be corrupt or truncated") \
                from None
        except Image.DecompressionBombError as e:
            raise DataError(f"{what} is over the image reader's own size limit ({_short(e)}); use smaller images") \
                from None
        except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, TypeError, IndexError,
                KeyError, OverflowError, RuntimeError, Image.DecompressionBombWarning) as e:
            raise DataError(f"{what} could not be read ({_short(e)}); it may be corrupt or truncated") from None
    # Grey unless some image has real colour: RGB files whose channels are equal stay grey.
    colour = any(im.mode == "RGB" and _has_colour(np.asarray(im)) for im in images)
    mode = "RGB" if colour else "L"
    (w, h), count = Counter(im.size for im in images).most_common(1)[0]
    _check_bytes(f"{name}: {len(images):,} images of {w}x{h}{' RGB' if colour else ''} as float32",
                 len(images) * (3 if colour else 1) * w * h * 4, "max_data_mb")
    resized = len(images) - count
    arrays = []
    for k, im in enumerate(images):
        arrays.append(np.asarray((im if im.size == (w, h) else im.resize((w, h), Image.BILINEAR)).convert(mode)))
        images[k] = None  # each decoded image is freed once its array exists
    stack = np.stack(arrays)  # (N, H, W) grey or (N, H, W, 3)
    del arrays
    stack = stack[:, None] if stack.ndim == 3 else stack.transpose(0, 3, 1, 2)  # (N, C, H, W), no guessing
    x = validate_array(stack, name)
    rels = [PurePosixPath(rel) for rel, _ in items]
    y, meta = _folder_labels(rels)
    if resized:
        logger.info("%s: %d of %d images resized to %dx%d", name, resized, len(stack), w, h)
    return x, y, {**meta, "resized": resized, "files": [str(r) for r in rels]}


def _to_8bit(im: "Image.Image") -> "Image.Image":
    """An 8-bit grey ("L") or "RGB" copy of a decoded image."""
    from PIL import Image

    if im.mode.startswith("I;16"):  # 16-bit grey PNG: Pillow's convert would clip at 255
        a = np.asarray(im).astype(np.uint32)
        return Image.fromarray(((a + 128) // 257).astype(np.uint8))  # round(a / 257): 257 is odd, no ties
    return im.convert("L") if im.mode in ("L", "1", "I", "F") else im.convert("RGB")


def _has_colour(a: np.ndarray) -> bool:
    """Whether an (H, W, 3) image has any pixel whose channels differ."""
    return bool((a[..., 0] != a[..., 1]).any() or (a[..., 1] != a[..., 2]).any())


def _folder_labels(rels: list[PurePosixPath]) -> tuple[np.ndarray | None, dict]:
    """Labels from sub-folder names, when every image sits in one below the common root."""
    parents = [r.parent.parts for r in rels]
    depth = 0  # strip folders every image shares (a zip often wraps everything in one)
    while all(len(p) > depth for p in parents) and len({p[depth] for p in parents}) == 1:
        depth += 1
    if not all(len(p) > depth for p in parents):
        return None, {}
    names = np.array([p[depth] for p in parents])
    classes, idx = np.unique(names, return_inverse=True)
    return idx.astype(np.int64), {"classes": tuple(classes.tolist())}


# ---------------------------------------------------------------- CSV: streamed, row by row


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class _CsvRows:
    """A CSV's records, streamed: (line number, record) with blank lines skipped.

    A line without a quote stays one string (parsed later, in bulk); a line with one goes through
    the csv module, which may take more lines for a quoted newline. No line is split before its
    separators are counted, so no row makes a list of more than max_image_pixels + 1 fields. The
    csv module's field_size_limit is process-global, so it is left alone: field lengths are
    checked here against max_csv_field, and the module's own (larger) limit reads the same.
    """

    def __init__(self, fh, name: str) -> None:
        self.name = name
        self.max_values = limits().max_image_pixels + 1  # pixels and one label
        self.lineno = 0
        self._lines = self._checked(fh)

    def _checked(self, fh) -> Iterator[str]:
        for line in fh:
            self.lineno += 1
            # A line splits into at most len + 1 fields, so only a long one needs its separators counted.
            if len(line) >= self.max_values and (values := line.count(",") + 1) > self.max_values:
                raise DataError(
                    f"{self.name}: line {self.lineno} has {values:,} values, more than one label and the limit of "
                    f"{self.max_values - 1:,} pixels; set the environment variable {ENV['max_image_pixels']} "
                    "to raise it"
                )
            yield line

    def __iter__(self) -> Iterator[tuple[int, str | list[str]]]:
        for line in self._lines:
            start = self.lineno
            if not line.strip():
                continue  # blank lines are skipped, as pandas does
            if '"' not in line:
                yield start, line
                continue
            try:
                record = next(csv.reader(itertools.chain([line], self._lines)))
            except csv.Error as e:
                if "field limit" in str(e):
                    raise DataError(
                        f"{self.name}: a value on line {start} is over {csv.field_size_limit():,} characters, more "
                        f"than the limit of {limits().max_csv_field:,} characters; set the environment variable "
                        f"{ENV['max_csv_field']} to raise it"
                    ) from None
                raise DataError(f"{self.name}: line {start} is not valid CSV ({_short(e)}); "
                                "save the file again as plain CSV") from None
            except StopIteration:
                continue
            yield start, record


def _split(record: str | list[str]) -> list[str]:
    return record if isinstance(record, list) else record.rstrip("\r\n").split(",")


def _count(record: str | list[str]) -> int:
    return len(record) if isinstance(record, list) else record.count(",") + 1


def _longest_field(lines: list[str]) -> int:
    """An upper bound on the longest field of unquoted lines, in bytes (UTF-8), without splitting them."""
    b = np.frombuffer("".join(lines).encode("utf-8"), dtype=np.uint8)
    seps = np.flatnonzero((b == ord(",")) | (b == ord("\n")))  # a "\r" counts in: still an upper bound
    return int(np.diff(np.concatenate(([-1], seps, [len(b)]))).max()) - 1


class _CsvTable:
    """Data rows of a K-column CSV to float32 blocks and label strings, every row checked."""

    def __init__(self, name: str, k: int, label: int | None, has_header: bool) -> None:
        lim = limits()
        self.name, self.k, self.label, self.has_header = name, k, label, has_header
        self.p = k - (label is not None)  # pixel values per row
        if self.p < 1:
            raise DataError(f"{name}: the only column is the label; the file needs columns of pixel values too")
        _check(f"{name}: each row's image ({self.p:,} values)", self.p, "max_image_pixels", unit="pixels")
        self.max_field = lim.max_csv_field
        self.max_rows = lim.max_data_mb * 2**20 // (self.p * 4)
        self.cols = None if label is None else [j for j in range(k) if j != label]
        self.rows = 0  # data rows so far
        self.blocks: list[np.ndarray] = []
        self.labels: list[str] = []
        self.chunk = max(1, min(1024, 2**24 // (self.p * 4)))  # rows parsed at once: at most 16 MB of float32

    def _where(self, ln: int) -> str:
        return (f"data rows counted from 1 below the header: line {ln} of the file" if self.has_header
                else f"line {ln} of the file; there is no header row")

    def add(self, batch: list[tuple[int, str | list[str]]]) -> None:
        """Check and convert a batch of (line number, record) data rows."""
        first = self.rows + 1
        if self.rows + len(batch) > self.max_rows:
            _check_bytes(f"{self.name}: the rows read so far ({self.rows + len(batch):,} of {self.p:,} values) "
                         "as float32", (self.rows + len(batch)) * self.p * 4, "max_data_mb")
        if all(isinstance(rec, str) for _, rec in batch) and self._fast([rec for _, rec in batch]):
            self.rows += len(batch)
            return
        for i, (ln, rec) in enumerate(batch):  # the exact check, row by row, names the first bad one
            self._row(first + i, ln, rec)
        self.rows += len(batch)

    def _fast(self, lines: list[str]) -> bool:
        """Bulk parse (numpy's C reader) of unquoted lines that pass every check; False to go row by row."""
        if any(line.count(",") != self.k - 1 for line in lines):
            return False
        if max(map(len, lines)) > self.max_field and _longest_field(lines) > self.max_field:
            return False
        try:
            block = np.loadtxt(lines, delimiter=",", dtype=np.float32, comments=None, usecols=self.cols, ndmin=2)
        except ValueError:
            return False
        if block.shape != (len(lines), self.p):
            return False
        if self.label is not None:
            if self.label == 0:
                labels = [line.split(",", 1)[0] for line in lines]
            elif self.label == self.k - 1:
                labels = [line.rstrip("\r\n").rsplit(",", 1)[1] for line in lines]
            else:
                labels = [line.split(",")[self.label] for line in lines]
            self.labels.extend(s.strip() for s in labels)
        self.blocks.append(block)
        return True

    def _row(self, r: int, ln: int, rec: str | list[str]) -> None:
        n = _count(rec)
        if n != self.k:
            raise DataError(f"{self.name}: row {r} has {n} values, expected {self.k} ({self._where(ln)})")
        fields = _split(rec)
        for j, f in enumerate(fields):
            if len(f) > self.max_field:
                raise DataError(
                    f"{self.name}: the value in row {r}, column {j + 1} ({self._where(ln)}) is {len(f):,} "
                    f"characters, over the limit of {self.max_field:,} characters; set the environment variable "
                    f"{ENV['max_csv_field']} to raise it"
                )
        pixels = fields if self.label is None else fields[:self.label] + fields[self.label + 1:]
        try:
            values = np.asarray(pixels, dtype=np.float32)
        except ValueError:
            j = next(j for j, f in enumerate(fields) if j != self.label and not _is_number(f))
            shown = fields[j] if len(fields[j]) <= 40 else fields[j][:37] + "..."
            raise DataError(
                f"{self.name}: row {r}, column {j + 1}: {shown!r} is not a number ({self._where(ln)}); "
                "only the header row and a 'label' or 'y' column may hold non-numeric text"
            ) from None
        if self.label is not None:
            self.labels.append(fields[self.label].strip())
        self.blocks.append(values[None])

    def array(self) -> np.ndarray:
        out = self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)
        self.blocks = []
        return out


def _load_csv(path: Path, max_bytes: int | None) -> _Loaded:
    name = path.name
    with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: a byte-order mark (Excel) is dropped
        rows = iter(_CsvRows(fh, name))
        first = next(rows, None)
        if first is None:
            raise DataError(f"{name}: the file is empty; it needs at least one row of pixel values")
        ln, rec = first
        head = _split(rec)
        max_field = limits().max_csv_field
        for j, f in enumerate(head):
            if len(f) > max_field:
                raise DataError(
                    f"{name}: the value on line {ln}, column {j + 1} is {len(f):,} characters, over the limit of "
                    f"{max_field:,} characters; set the environment variable {ENV['max_csv_field']} to raise it"
                )
        has_header = not all(_is_number(c) for c in head)
        label = None
        if has_header:
            label = next((j for j, c in enumerate(head) if c.strip().lower() in _LABEL_COLUMNS), None)
        table = _CsvTable(name, len(head), label, has_header)
        if not has_header:
            table.add([first])
        while batch := list(itertools.islice(rows, table.chunk)):
            table.add(batch)
    if table.rows == 0:
        raise DataError(f"{name}: the file is empty apart from its header; it needs at least one row of pixel values")
    x = validate_array(table.array(), name)
    if label is None:
        return x, None, {}
    try:
        y = np.asarray(table.labels, dtype=np.float64)  # numbers stay numbers, as pandas would read them
    except ValueError:
        y = np.asarray(table.labels, dtype=str)
    return (x, *_labels(y, len(x), f"{name} column '{head[label].strip()}'"))


_LOADERS = {".npy": _load_npy, ".npz": _load_npz, ".csv": _load_csv, ".zip": _load_zip}

__all__ = ["IMAGE_SUFFIXES", "SUPPORTED", "load_file", "validate_array"]
