"""Zips a user gives (.npz arrays, .zip of images): members counted before the directory is parsed,
each member read through a stream capped at its declared size, every read error one DataError."""
from __future__ import annotations

import contextlib
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from ...limits import limits
from ...streams import read_zip_member
from ..errors import DataError, _check
from .validate import open_regular, short


@contextlib.contextmanager
def open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """The archive, its members counted (max_files) before ZipFile parses its directory into memory.

    ZipFile makes an object of about half a kilobyte for every directory entry, and an entry can
    be 46 bytes, whatever member count the end record claims; so the entries are counted here by
    walking their fixed-size headers, and the count checked, first.
    """
    name = path.name
    limit = limits().max_files
    with open_regular(path, name) as fh:  # one descriptor for the count and the archive: no swap between
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
        fh.seek(0)
        with zipfile.ZipFile(fh) as zf:
            yield zf


@contextlib.contextmanager
def member_errors(what: str) -> Iterator[None]:
    """A zip member's read error (bad CRC, bad deflate data, encryption...) as one DataError naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
            struct.error, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{what} is corrupt ({short(e)}); make the zip again") from None


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    """A member's bytes through a stream capped at its declared size; a header that lies is a DataError."""
    with member_errors(what):
        return read_zip_member(zf, info)
