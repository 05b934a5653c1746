"""A user's own data: `.npz` / `.npy` arrays, a CSV of pixel rows, a folder or `.zip` of images.

`load_file` picks the loader by suffix and turns anything a bad file makes a library raise into
one DataError naming the file. The loaders, one module each:
- `arrays`: .npy / .npz, read from their header, never by `np.load` (nothing is unpickled);
- `images`: a folder or .zip of PNG/JPEG images;
- `csv_table`: a CSV of pixel rows, streamed;
- `zips`: what .npz and .zip share (member count, capped member streams);
- `validate`: what all share, above all `validate_array`, the one place that checks dtype, shape,
  NaN/Inf and value range and brings the array to float32 (N, C, H, W) in [0, 1] (the upload UI
  reuses it).

Files come from strangers (docs/architecture.md, "Trust boundary"), so every size is checked before memory
is allocated for it, against the budgets of `vae_core.limits`: the file on disk and a zip's
declared uncompressed size (max_file_mb), an array's shape from its header as float32
(max_data_mb), each image's width x height from its header before it is decoded
(max_image_pixels) and all images' pixels x channels together (max_total_pixels), a CSV's fields
(max_csv_field), columns (max_image_pixels) and rows (max_data_mb, as they accumulate), a zip's
member count (max_files). Zip members are read through a stream capped at their declared size.
"""
from __future__ import annotations

import contextlib
import csv
import logging
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from ...limits import LimitError
from ..dataset import Dataset
from ..errors import DataError, DataLimitError
from .arrays import load_npy, load_npz
from .csv_table import load_csv
from .images import IMAGE_SUFFIXES, load_folder, load_zip
from .validate import check_file_bytes, check_regular, short, show, validate_array

logger = logging.getLogger(__name__)

SUPPORTED = (".npz", ".npy", ".csv", ".zip")
_SUPPORTED_TEXT = ".npz, .npy, .csv, .zip of images, or a folder of .png/.jpg images"
_LOADERS = {".npy": load_npy, ".npz": load_npz, ".csv": load_csv, ".zip": load_zip}


def load_file(path: Path, *, max_bytes: int | None = None) -> Dataset:
    """A user's .npz, .npy, .csv, .zip of images or folder of images, as a Dataset named after the file.

    Every size is checked against vae_core.limits before memory is allocated for it; `max_bytes`
    replaces the file budget (max_file_mb) when given. Whatever the file, the only exception is a
    DataError (DataLimitError for a budget) naming the file and what to do.
    """
    path = Path(path)
    with _reading(path):
        try:  # stat, never open, first: opening a FIFO or a terminal would wait forever
            st = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"{path}: no such file or folder; check the path") from None
        suffix = path.suffix.lower()
        if stat.S_ISDIR(st.st_mode):
            if suffix in _LOADERS:
                raise DataError(f"{path.name}: it is a folder, not a {suffix} file; give the {suffix} file itself "
                                "(a folder of images must not be named like a data file)")
            loader = load_folder
        elif suffix in _LOADERS:
            check_regular(st, path.name)  # the loaders check the descriptor they open again (a swap since)
            if suffix != ".npy" or max_bytes is not None:  # an .npy over max_file_mb is read in batches instead
                check_file_bytes(st.st_size, max_bytes, f"{path.name}: the file")
            loader = _LOADERS[suffix]
        else:
            raise DataError(f"{path}: unsupported file type '{suffix or path.name}'; use {_SUPPORTED_TEXT}")
        x, y, meta = loader(path, max_bytes)
        return Dataset(x=x, name=path.name, y=y, meta={"source": str(path), **meta})


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
        raise DataError(f"{name}: could not be read as CSV ({short(e)}); save it as a plain CSV of numbers") from None
    except MemoryError:
        raise DataError(f"{name}: could not be read: it needs more memory than is free; use a smaller file") from None
    except RecursionError:
        raise DataError(f"{name}: could not be read: it is nested too deeply to parse; {corrupt}") from None
    except Image.DecompressionBombError as e:
        raise DataError(f"{name}: an image is over the image reader's own size limit ({short(e)}); "
                        "use smaller images") from None
    except OSError as e:  # its text may name a server path: the reason alone
        raise DataError(f"{name}: could not be read ({show(e.strerror or type(e).__name__)}); {corrupt}") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, ArithmeticError, LookupError,
            TypeError, AttributeError, RuntimeError, SyntaxError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{name}: could not be read ({short(e)}); {corrupt}") from None
    except Exception as e:  # noqa: BLE001 - nothing a file does may escape as anything but a sentence
        logger.warning("%s: unexpected %s while reading", name, type(e).__name__, exc_info=True)
        raise DataError(f"{name}: could not be read ({type(e).__name__}: {short(e)}); {corrupt}") from None


__all__ = ["IMAGE_SUFFIXES", "SUPPORTED", "load_file", "validate_array"]
