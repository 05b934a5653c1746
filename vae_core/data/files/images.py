"""Images from a folder or a .zip (PNG, JPEG): pixel budgets checked from each header before it is
decoded, all brought to one size and to grey or RGB, labels from sub-folder names."""
from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from ...limits import limits
from ..errors import DataError, _check, _check_bytes
from .validate import Loaded, check_file_bytes, open_regular, short, show, validate_array
from .zips import open_zip, read_member

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_IMAGE_FORMATS = ("PNG", "JPEG")  # the only Pillow decoders tried, whatever the suffix (JPEG covers MPO)


def load_folder(path: Path, max_bytes: int | None) -> Loaded:
    name, limit = path.name, limits().max_files
    files = []
    for p in path.rglob("*"):
        if p.is_file() and _is_image(p.relative_to(path).as_posix()):
            files.append(p)
            if len(files) > limit:
                _check(f"{name}: the number of images", len(files), "max_files", unit="files")
    files.sort()
    check_file_bytes(sum(p.stat().st_size for p in files), max_bytes, f"{name} (images)")
    rel = [p.relative_to(path).as_posix() for p in files]
    # each opened without blocking and checked again: a FIFO swapped in since the listing is refused
    return _load_images([(r, lambda p=p, r=r: open_regular(p, f"{name}/{r}")) for p, r in zip(files, rel)], name)


def load_zip(path: Path, max_bytes: int | None) -> Loaded:
    name = path.name
    with open_zip(path) as zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir() and _is_image(i.filename)), key=lambda i: i.filename)
        check_file_bytes(sum(i.file_size for i in infos), max_bytes, f"{name} (uncompressed images)")
        # Read inside the with-block: each opener closes over the open archive.
        return _load_images(
            [(i.filename, lambda i=i: io.BytesIO(read_member(zf, i, f"{name}: member '{show(i.filename)}'")))
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


def _decode_all(items: list[tuple[str, Callable[[], BinaryIO]]], name: str) -> list["Image.Image"]:
    """Each (relative path, opener) decoded to 8-bit grey or RGB, its size checked before it is decoded.

    Each image's size comes from its header (Image.open decodes nothing) and is checked against
    max_image_pixels, and the running total of pixels x channels against max_total_pixels.
    """
    from PIL import Image, UnidentifiedImageError

    images = []
    total = 0
    for rel, opener in items:
        what = f"{name}: image '{show(rel)}'"
        try:
            with opener() as fh:
                with warnings.catch_warnings():  # sizes are checked below, against this project's budget
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    im = Image.open(fh, formats=_IMAGE_FORMATS)
                with im:
                    w, h = im.size
                    _check(f"{what} ({w:,} x {h:,})", w * h, "max_image_pixels", unit="pixels")
                    total += w * h * _channels(im.mode)
                    _check(f"{name}: the images up to '{show(rel)}' together", total, "max_total_pixels",
                           unit="pixel values (width x height x channels)")
                    im.load()  # decode now, so a truncated file fails here with its name
                    images.append(_to_8bit(im))
        except DataError:
            raise
        except UnidentifiedImageError:  # its own text names the server's path of the file
            raise DataError(f"{what} could not be read (it is not a PNG or JPEG image); it may be corrupt or truncated") \
                from None
        except Image.DecompressionBombError as e:
            raise DataError(f"{what} is over the image reader's own size limit ({short(e)}); use smaller images") \
                from None
        except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, TypeError, IndexError,
                KeyError, OverflowError, RuntimeError, Image.DecompressionBombWarning) as e:
            raise DataError(f"{what} could not be read ({short(e)}); it may be corrupt or truncated") from None
    return images


def _load_images(items: list[tuple[str, Callable[[], BinaryIO]]], name: str) -> Loaded:
    """Decode (relative path, opener) images to one size (the most common) and validate them.

    Sizes are checked before each image is decoded (_decode_all), the stacked float32 result
    against max_data_mb before it is built.
    """
    from PIL import Image

    if not items:
        looked = ", ".join(IMAGE_SUFFIXES)
        raise DataError(f"{name}: no images found (looked for {looked}); add some or pick another source")
    images = _decode_all(items, name)
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
