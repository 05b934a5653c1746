"""File modes for what this project writes: what any other tool would give them, under the umask.

`tempfile.mkdtemp` / `mkstemp` (and safetensors' writer) create private entries, 0700 / 0600, so
a run written through them would stay unreadable to a server running as another user whatever
the umask says. Writers chmod their temporary entries with these modes before the atomic rename.
"""
from __future__ import annotations

import os
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and put back (another thread may create a file in between)
    os.umask(mask)
    return mask


def follow_umask(path: str | Path) -> None:
    """Give `path` the mode a plain create would: 0o777 & ~umask for a directory (and every file in
    it, 0o666 & ~umask, one level down, as a run directory is), 0o666 & ~umask for a file."""
    p, mask = Path(path), umask()
    if p.is_dir() and not p.is_symlink():
        for f in p.iterdir():
            if f.is_file() and not f.is_symlink():
                os.chmod(f, 0o666 & ~mask)
        os.chmod(p, 0o777 & ~mask)
    else:
        os.chmod(p, 0o666 & ~mask)


__all__ = ["follow_umask", "umask"]
