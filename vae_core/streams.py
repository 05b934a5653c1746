"""Bounded reads from files that strangers give: never more bytes than asked for, in chunks.

Shared by the data loaders (`vae_core.data.files`), the run-zip upload (`vae_core.runs.checkpoints`), the model
zips (`vae_core.runs.model_zips`) and the sandbox worker (`vae_core.sandbox.formats`), which reads its members
from here so that the sandbox never imports `runs/`.
"""
from __future__ import annotations

import io
import zipfile
import zlib
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


def zip_members(z: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The zip's files by base name, at its top or in one folder (a zipped directory)."""
    out: dict[str, zipfile.ZipInfo] = {}
    for info in z.infolist():
        if info.is_dir():
            continue
        parts = info.filename.replace("\\", "/").strip("/").split("/")
        if len(parts) > 2 or parts[-1] in ("", ".", ".."):
            continue
        name = parts[-1]
        if name in out:  # two folders, or one file twice: which one is meant is unclear
            return {**out, name: None}  # type: ignore[dict-item]
        out[name] = info
    return out


def read_member_capped(data: bytes, name: str, member: str, max_bytes: int) -> bytes:
    """One member of a model zip held in memory (the worker's copy), read through a capped stream."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = zip_members(z).get(member)
        if info is None:
            raise ValueError(f"{name}: {member} is missing or given twice; make the zip again with one of each")
        if info.file_size > max_bytes:
            raise ValueError(f"{name}: {member} holds {info.file_size / 2**20:,.0f} MB unpacked, over the limit of "
                             f"{max_bytes / 2**20:,.0f} MB; set VAE_EXPLORER_MAX_FILE_MB to raise it")
        try:
            return read_zip_member(z, info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as e:
            raise ValueError(f"{name}: {member} is corrupt ({e}); make the zip again") from None
