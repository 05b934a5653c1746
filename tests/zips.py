"""Zip files the tests hand to the app or the CLI: `from zips import zip_bytes, write_zip, run_zip`."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    """A deflated zip holding `members` (name -> content), as bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    """`zip_bytes(members)` written to `path`; returns the path."""
    Path(path).write_bytes(zip_bytes(members))
    return Path(path)


def run_zip(run: Path, folder: str, files: tuple[str, ...] = ("config.json", "model.safetensors")) -> bytes:
    """A run directory's `files` zipped under `folder/`, as a user zips a run to upload it."""
    return zip_bytes({f"{folder}/{f}": (Path(run) / f).read_bytes() for f in files})
