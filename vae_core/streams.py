"""Bounded reads from files that strangers give: never more bytes than asked for, in chunks.

Shared by the data loaders (`vae_core.data.files`) and the run-zip upload (`vae_core.runs.checkpoints`).
"""
from __future__ import annotations

import zipfile
from typing import BinaryIO

READ_CHUNK = 1 << 20  # bytes per read from a file or zip member


def read_up_to(f: BinaryIO, n: int) -> bytes:
    """Up to n bytes of f (fewer only at the end of the stream), read in chunks of READ_CHUNK."""
    parts, got = [], 0
    while got < n:
        b = f.read(min(READ_CHUNK, n - got))
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A zip member's bytes through a stream capped at its declared size.

    zipfile itself stops at the declared size and checks the CRC there; a member whose data ends
    before its declared size is zipfile.BadZipFile here ("its header declares N bytes but it holds
    M"), never a short read taken as whole.
    """
    with zf.open(info) as f:
        data = read_up_to(f, info.file_size)
    if len(data) != info.file_size:
        raise zipfile.BadZipFile(f"its header declares {info.file_size:,} bytes but it holds {len(data):,}")
    return data
