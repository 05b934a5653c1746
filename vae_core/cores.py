"""The machine's cores shared by heavy CLI jobs: one slot per THREADS cores, taken with a file lock.

Eight `python -m vae_core diagnose` processes started at once on 2 cores each ran torch with 2
threads, and their sandbox workers too: 16+ busy threads on 2 cores thrashed, and all eight were
still running after 300 s while one alone takes about 23 s. Here a heavy command first takes one of
`slots()` slots (an exclusive `fcntl.flock` on a file in `slots_dir()`), waiting in line when all
are taken and saying so once on stderr, and its torch uses THREADS threads. The kernel drops a
lock when its process ends, however it ends: a killed process never leaves a slot taken.

The time budget of a diagnosis starts once its slot is held: waiting in line is not the model's time.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

THREADS = 2  # torch threads per heavy job: 2 keep a small model's matrix products busy without thrashing


def slots() -> int:
    """Heavy jobs at once on this machine: cores // THREADS, at least one."""
    return max(1, (os.cpu_count() or 2) // THREADS)


def slots_dir() -> Path:
    """Where the slot files are (VAE_EXPLORER_SLOTS_DIR, default a folder in the system's temp dir)."""
    d = Path(os.environ.get("VAE_EXPLORER_SLOTS_DIR") or Path(tempfile.gettempdir()) / "vae-explorer-slots")
    d.mkdir(parents=True, exist_ok=True)
    try:  # shared by every user's processes, as /tmp is
        os.chmod(d, 0o1777)
    except OSError:
        pass
    return d


def _try_slot(d: Path) -> int | None:
    """An fd holding one free slot's lock, or None when all are taken."""
    for i in range(slots()):
        fd = os.open(d / f"slot-{i}", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
    return None


@contextlib.contextmanager
def core_slot(what: str, say: Callable[[str], None] | None = None, poll_s: float = 0.2) -> Iterator[None]:
    """Hold one of the machine's heavy-job slots while inside (waiting for one first), with torch
    limited to THREADS threads. `say` is told once, in a sentence, when the command has to wait."""
    d = slots_dir()
    fd = _try_slot(d)
    if fd is None:
        t0 = time.monotonic()
        if say is not None:
            say(f"waiting for a free core: {slots()} heavy job(s) already run on this machine ({what} starts "
                "when one ends)")
        while fd is None:
            time.sleep(poll_s)  # flock has no timeout and there are several slots: poll them
            fd = _try_slot(d)
        log.info("%s waited %.1f s for a core", what, time.monotonic() - t0)
    try:
        import torch

        torch.set_num_threads(min(THREADS, os.cpu_count() or THREADS))
        yield
    finally:
        os.close(fd)  # closing the file drops its lock
