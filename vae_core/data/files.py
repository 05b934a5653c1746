"""A user's own data: `.npz` / `.npy` arrays, a CSV of pixel rows, a folder or `.zip` of images.

Every loader ends in `validate_array`, the one place that checks dtype, shape, NaN/Inf and value
range and brings the array to float32 (N, C, H, W) in [0, 1]; the upload UI reuses it. Nothing a
user gives is ever unpickled: numpy files load with `allow_pickle=False`.
"""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from . import Dataset, DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SUPPORTED = (".npz", ".npy", ".csv", ".zip")
_SUPPORTED_TEXT = ".npz, .npy, .csv, .zip of images, or a folder of .png/.jpg images"
_LABEL_COLUMNS = ("label", "y")
_Loaded = tuple[torch.Tensor, np.ndarray | None, dict]  # images, labels, meta
_SHAPES_TEXT = "(N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3, or (N, P) rows with P a perfect square"


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


def load_file(path: Path, *, max_bytes: int = 200 * 2**20) -> Dataset:
    """A user's .npz, .npy, .csv, .zip of images or folder of images, as a Dataset named after the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; check the path")
    suffix = path.suffix.lower()
    if path.is_dir():
        loader = _load_folder
    elif suffix in _LOADERS:
        _check_size(path.stat().st_size, max_bytes, str(path))
        loader = _LOADERS[suffix]
    else:
        raise DataError(f"{path}: unsupported file type '{suffix or path.name}'; use {_SUPPORTED_TEXT}")
    with _reading(path):
        x, y, meta = loader(path, max_bytes)
    return Dataset(x=x, name=path.name, y=y, meta={"source": str(path), **meta})


def _check_size(nbytes: int, max_bytes: int, what: str) -> None:
    """Refuse more than max_bytes (file on disk, or uncompressed archive contents)."""
    if nbytes > max_bytes:
        raise DataError(
            f"{what}: {nbytes / 2**20:.1f} MB is over the {max_bytes / 2**20:.1f} MB limit; "
            "use fewer or smaller images"
        )


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a library's read error into one DataError naming the path."""
    import pandas as pd
    from PIL import Image, UnidentifiedImageError

    try:
        yield
    except DataError:
        raise
    except pd.errors.EmptyDataError:  # a ValueError too, so caught before the general case
        raise DataError(f"{path}: the file is empty; it needs at least one image") from None
    except ValueError as e:
        # numpy with allow_pickle=False: "Object arrays cannot be loaded ..." for an object array,
        # "Cannot load file containing pickled data ..." for anything without the npy/zip magic.
        if "object arrays" in str(e).lower():
            raise DataError(
                f"{path}: holds pickled Python objects, which are never loaded (they can run code); "
                "save a plain numeric array with np.save / np.savez"
            ) from None
        if "pickle" in str(e).lower():
            raise DataError(
                f"{path}: could not be read as a numpy file: it is corrupt, or pickled data, which is never "
                "loaded (it can run code); save a plain numeric array with np.save / np.savez"
            ) from None
        raise DataError(f"{path}: could not be read ({str(e).strip()}); the file may be corrupt or truncated") from None
    except (OSError, EOFError, zipfile.BadZipFile, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: could not be read ({str(e).strip()}); the file may be corrupt or truncated") from None


def _labels(y: np.ndarray, n: int, name: str) -> tuple[np.ndarray, dict]:
    """Labels (n,) as int64 class indices; non-integer labels become indices into meta['classes']."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{name}: labels have shape {y.shape} but there are {n} images; give one label per image")
    if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()):
        return y.astype(np.int64), {}
    classes, idx = np.unique(y.astype(str), return_inverse=True)
    return idx.astype(np.int64), {"classes": tuple(classes.tolist())}


def _load_npy(path: Path, max_bytes: int) -> _Loaded:
    return validate_array(np.load(path, allow_pickle=False), path.name), None, {}


def _load_npz(path: Path, max_bytes: int) -> _Loaded:
    with zipfile.ZipFile(path) as zf:  # compressed members can be far larger than the file
        _check_size(sum(i.file_size for i in zf.infolist()), max_bytes, f"{path} (uncompressed)")
    with np.load(path, allow_pickle=False) as npz:
        keys = list(npz.files)
        images = [k for k in keys if k != "y"]
        if "x" in keys:
            key = "x"
        elif len(images) == 1:
            key = images[0]
        else:
            found = ", ".join(keys) or "none"
            raise DataError(f"{path}: cannot tell which array holds the images (arrays: {found}); name it 'x'")
        x = validate_array(npz[key], f"{path.name}['{key}']")
        y, meta = _labels(npz["y"], len(x), f"{path.name}['y']") if "y" in keys else (None, {})
    return x, y, meta


def _load_csv(path: Path, max_bytes: int) -> _Loaded:
    import pandas as pd

    with open(path, newline="", encoding="utf-8") as fh:
        first = next(csv.reader(fh), None)
    if not first:
        raise DataError(f"{path}: the file is empty; it needs at least one row of pixel values")
    has_header = not all(_is_number(c) for c in first)
    df = pd.read_csv(path, header=0 if has_header else None)
    label_cols = [c for c in df.columns if str(c).strip().lower() in _LABEL_COLUMNS] if has_header else []
    y_col = df.pop(label_cols[0]) if label_cols else None
    x = validate_array(df.to_numpy(), path.name)
    y, meta = _labels(y_col.to_numpy(), len(x), f"{path.name} column '{label_cols[0]}'") if label_cols else (None, {})
    return x, y, meta


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _load_folder(path: Path, max_bytes: int) -> _Loaded:
    files = sorted(p for p in path.rglob("*") if p.is_file() and _is_image(p.relative_to(path).as_posix()))
    _check_size(sum(p.stat().st_size for p in files), max_bytes, f"{path} (images)")
    return _load_images([(p.relative_to(path).as_posix(), p.read_bytes) for p in files], path)


def _load_zip(path: Path, max_bytes: int) -> _Loaded:
    with zipfile.ZipFile(path) as zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir() and _is_image(i.filename)), key=lambda i: i.filename)
        _check_size(sum(i.file_size for i in infos), max_bytes, f"{path} (uncompressed images)")
        # Read inside the with-block: each reader closes over the open archive.
        return _load_images([(i.filename, (lambda i=i: zf.read(i))) for i in infos], path)


def _is_image(rel: str) -> bool:
    """An image file by suffix, not hidden and not macOS archive metadata."""
    parts = PurePosixPath(rel).parts
    return (
        PurePosixPath(rel).suffix.lower() in IMAGE_SUFFIXES
        and not any(p.startswith(".") or p == "__MACOSX" for p in parts)
    )


def _load_images(items: list[tuple[str, Callable[[], bytes]]], source: Path) -> _Loaded:
    """Decode (relative path, read bytes) images to one size (the most common) and validate them."""
    from PIL import Image

    if not items:
        looked = ", ".join(IMAGE_SUFFIXES)
        raise DataError(f"{source}: no images found (looked for {looked}); add some or pick another source")
    images = []
    for rel, read in items:
        try:
            with Image.open(io.BytesIO(read())) as im:
                im.load()  # decode now, so a truncated file fails here with its name
                images.append(_to_8bit(im))
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise DataError(
                f"{source}: image '{rel}' could not be read ({e}); it may be corrupt or truncated"
            ) from None
    # Grey unless some image has real colour: RGB files whose channels are equal stay grey.
    colour = any(im.mode == "RGB" and _has_colour(np.asarray(im)) for im in images)
    mode = "RGB" if colour else "L"
    (w, h), count = Counter(im.size for im in images).most_common(1)[0]
    resized = len(images) - count
    arrays = [np.asarray((im if im.size == (w, h) else im.resize((w, h), Image.BILINEAR)).convert(mode))
              for im in images]
    stack = np.stack(arrays)  # (N, H, W) grey or (N, H, W, 3)
    stack = stack[:, None] if stack.ndim == 3 else stack.transpose(0, 3, 1, 2)  # (N, C, H, W), no guessing
    x = validate_array(stack, source.name)
    rels = [PurePosixPath(rel) for rel, _ in items]
    y, meta = _folder_labels(rels)
    if resized:
        logger.info("%s: %d of %d images resized to %dx%d", source.name, resized, len(images), w, h)
    return x, y, {**meta, "resized": resized, "files": [str(r) for r in rels]}


def _to_8bit(im: "Image.Image") -> "Image.Image":
    """An 8-bit grey ("L") or "RGB" copy of a decoded image."""
    from PIL import Image

    if im.mode.startswith("I;16"):  # 16-bit grey PNG: Pillow's convert would clip at 255
        return Image.fromarray((np.asarray(im, dtype=np.float64) / 257).round().astype(np.uint8))
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


_LOADERS = {".npy": _load_npy, ".npz": _load_npz, ".csv": _load_csv, ".zip": _load_zip}

__all__ = ["IMAGE_SUFFIXES", "SUPPORTED", "load_file", "validate_array"]
