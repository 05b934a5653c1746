"""Writing run directories: `save_run` (training's output) and `extract_run_zip` (an uploaded run),
both atomic; `run_lock`, `check_out` and `remove_stale_lock` around them.

A run directory (docs/contracts.md, "Run directory") holds `config.json`, `model.safetensors` and `history.csv`.
It is written into a temporary hidden sibling directory and renamed (or swapped) into place, so a
crash never leaves a half-written run. Reading runs is `vae_core.runs.run_load`; model files
(TorchScript, zips, pickle refusal) are `vae_core.runs.model_files`.
"""
from __future__ import annotations

import contextlib
import csv
import ctypes
import datetime as dt
import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from safetensors.torch import save_file

from .. import limits
from ..config import TrainConfig
from .disk_modes import follow_umask
from ..errors import CheckpointError, sentence
from ..limits import LimitError
from ..models import VAE
from .run_load import FORMAT_VERSION, aside_path, is_run_dir, load_run, recover_aside
from ..streams import read_zip_member

HISTORY_COLUMNS = ["epoch", "loss", "recon_nll", "kl", "beta", "eval_elbo", "seconds", "samples_per_s"]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    cols = list(HISTORY_COLUMNS)
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


# Tests set this to a function of the step name that kills the process, to prove that a kill at
# any step of save_run leaves the previous run loadable and no half run listed.
_step_hook: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if _step_hook is not None:
        _step_hook(name)


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Linux renameat2(2): True when done; False where the kernel, libc or filesystem lacks it.

    RENAME_EXCHANGE swaps two directories in one step (an overwrite with no moment where the run is
    missing); RENAME_NOREPLACE fails instead of replacing. Other OSErrors (EEXIST...) are raised.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), ctypes.c_uint(flags)) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


_held_locks: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, depth), this process's run locks
_held_guard = threading.Lock()


@contextlib.contextmanager
def run_lock(out: str | Path):
    """Hold the exclusive lock on run directory `out` (re-entrant in one process).

    Two trainings writing the same --out: the second fails at once, before training, instead of one
    silently replacing the other's run. The lock is flock(2) on a hidden file beside the run, so a
    killed process releases it with its file descriptors.
    """
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.with_name(f".{out.name}.lock")
    with _held_guard:
        if lock_path in _held_locks:
            fd, depth = _held_locks[lock_path]
            _held_locks[lock_path] = (fd, depth + 1)
        else:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # The holder unlinks the file on release: a lock taken on an unlinked file is no lock.
                if os.stat(lock_path).st_ino != os.fstat(fd).st_ino:
                    raise BlockingIOError
            except (BlockingIOError, FileNotFoundError):
                os.close(fd)
                raise FileExistsError(f"another training is writing {out} right now; wait for it to finish "
                                      "or choose another --out") from None
            _held_locks[lock_path] = (fd, 1)
    try:
        yield out
    finally:
        with _held_guard:
            fd, depth = _held_locks[lock_path]
            if depth > 1:
                _held_locks[lock_path] = (fd, depth - 1)
            else:
                del _held_locks[lock_path]
                with contextlib.suppress(OSError):
                    os.unlink(lock_path)  # while still held, so no one else holds a lock on this file
                os.close(fd)  # releases the flock


def remove_stale_lock(out: str | Path) -> None:
    """Remove the lock file of run `out` that a killed training left behind (no one holds it).

    Harmless if left (a killed process's flock is released with it); removed so nothing hidden
    stays beside the runs. Taken before removal, so a live holder's lock is never removed.
    """
    try:
        with run_lock(out):  # unlinks the file on release
            pass
    except (FileExistsError, OSError):
        pass


def check_out(out: str | Path, overwrite: bool = False) -> Path:
    """Check before training that `out` can be written: free (or overwrite), a legal name, a writable folder."""
    out = Path(out)
    if not out.name or out.name in (".", ".."):
        raise ValueError(f"--out {str(out)!r} must name a run directory, e.g. runs/my_run")
    if len(os.fsencode(out.name)) > 200:  # NAME_MAX is 255 on common filesystems, less a temp suffix
        raise ValueError(f"--out {out.name[:40]}...: the name is {len(out.name)} characters; "
                         "choose one of at most 200")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; choose a directory path")
    if out.exists() and not overwrite:
        raise FileExistsError(f"--out {out} already exists; choose another path or pass --overwrite")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        name_max = os.pathconf(out.parent, "PC_NAME_MAX")
    except OSError as e:
        raise PermissionError(f"--out {out}: cannot create its folder {out.parent} ({e.strerror})") from None
    if len(os.fsencode(out.name)) + 30 > name_max:  # the temporary sibling adds a suffix
        raise ValueError(f"--out {out}: the name is {len(out.name)} characters; this filesystem takes at most "
                         f"{name_max - 30} here; choose a shorter name")
    try:
        probe = Path(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=out.parent))
        probe.rmdir()
    except OSError as e:
        raise PermissionError(f"--out {out}: cannot write in {out.parent} ({e.strerror}); choose another folder") from None
    return out


def _config_json(model: VAE, train_cfg: TrainConfig, dataset: str, started: str | None,
                 extra: dict[str, Any] | None) -> str:
    """The text of a run's config.json (the fields of docs/contracts.md, then `extra`)."""
    config = {
        "format_version": FORMAT_VERSION,
        "model": model.cfg.to_dict(),
        "train": train_cfg.to_dict(),
        "dataset": dataset,
        "seed": train_cfg.seed,
        "created": started or _now(),
        "finished": _now(),
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    return json.dumps(config, indent=2, allow_nan=False) + "\n"


def save_run(out: str | Path, model: VAE, train_cfg: TrainConfig, history: list[dict[str, Any]], *,
             dataset: str, started: str | None = None, extra: dict[str, Any] | None = None,
             overwrite: bool = False, extra_files: Sequence[Callable[[Path], Any]] = ()) -> Path:
    """Write a run directory atomically (temp dir, then rename or swap); returns its path.

    extra_files: writers of optional files (e.g. `EpochCodes.save`), each called with the temporary
    directory after the contract's files, so they join the same atomic write.

    A kill at any step leaves the previous run (if any) whole at `out` and no half run listed
    (temporary directories are hidden). Holds `run_lock(out)` while it writes. `out` given as a
    symlink is followed: the run is written where it points and the link stays. Modes follow the
    umask (0755/0644 under umask 022).
    """
    given = Path(out)
    out = Path(os.path.realpath(given)) if given.is_symlink() else given  # the swap must be beside the real dir
    with run_lock(out):
        recover_aside(out)
        if out.exists() and not overwrite:
            raise FileExistsError(f"run directory {out} already exists; choose another --out or pass overwrite")
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        _step("tmpdir")
        old: Path | None = None
        try:
            (tmp / "config.json").write_text(_config_json(model, train_cfg, dataset, started, extra))
            _step("config")
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(tmp / "model.safetensors"))
            _step("weights")
            _write_history(tmp / "history.csv", history)
            _step("history")
            for write in extra_files:
                write(tmp)
            for f in tmp.iterdir():  # data on disk before the rename makes it visible
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            follow_umask(tmp)  # mkdtemp made it 0700, safetensors and mkstemp their files 0600
            _step("fsync")
            if out.exists():
                if _renameat2(tmp, out, _RENAME_EXCHANGE):  # one step: out is the new run, tmp the old
                    old = tmp
                    _step("swapped")
                else:
                    old = aside_path(out)
                    os.rename(out, old)
                    _step("aside")  # a kill here is mended by recover_aside on the next list or load
                    os.rename(tmp, out)
                    _step("renamed")
                shutil.rmtree(old, ignore_errors=True)
            elif not _renameat2(tmp, out, _RENAME_NOREPLACE):
                os.rename(tmp, out)  # a non-empty run at out makes this fail (ENOTEMPTY), never replaced
            _step("done")
        except BaseException:
            if old is not None and old != tmp and old.exists() and not out.exists():
                os.rename(old, out)  # the new run never took its place: put the existing one back
            shutil.rmtree(tmp, ignore_errors=True)  # the half-written run, or the old one already swapped out
            raise
    return given


# The last is optional: epoch_codes.FILE_NAME (not imported here: it pulls in scipy, which start-up avoids)
RUN_FILES = ("config.json", "model.safetensors", "history.csv", "epoch_codes.npz")


def run_zip(run_dir: str | Path) -> bytes:
    """A run directory as a zip whose top folder is the run's name (re-uploadable to the app)."""
    p = Path(run_dir)
    if not is_run_dir(p):
        raise ValueError(f"{p} is not a complete run directory")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p.iterdir()):
            if f.is_file():
                z.write(f, f"{p.name}/{f.name}")
    return out.getvalue()


def is_run_zip(path: str | Path) -> bool:
    """True for a zip holding a run directory (config.json + model.safetensors), not TorchScript."""
    p = Path(path)
    try:
        if not zipfile.is_zipfile(p):
            return False
        with zipfile.ZipFile(p) as z:
            names = {Path(n).name for n in z.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
        return False
    return {"config.json", "model.safetensors"} <= names


def _member_words(text: str, tmp: Path, members: dict[str, zipfile.ZipInfo]) -> str:
    """`text` with each unpacked file's server path written as its member name in the zip (run/config.json)."""
    for name, info in members.items():
        text = text.replace(str(tmp / name), info.filename)
    return text.replace(str(tmp), "the zip")


def extract_run_zip(path: str | Path, dest: str | Path) -> Path:
    """Unpack a zipped run directory into dest/<name> atomically, after checking it loads.

    Only the run files are read (no other member is extracted, so no path can escape dest); each
    through a stream capped at its declared size, the total against VAE_EXPLORER_MAX_FILE_MB; the
    weights go through safetensors, never pickle, and `load_run` checks the shapes against the
    config before building anything. Returns the run directory.
    """
    p, dest = Path(path), Path(dest)
    try:
        z = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{p.name} is not a readable zip file: {e}") from None
    with z:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in z.infolist():
            name = Path(info.filename).name
            if name in RUN_FILES and not info.is_dir():
                if name in members:
                    raise CheckpointError(f"{p.name} holds more than one {name}: zip one run directory")
                members[name] = info
        missing = [f for f in ("config.json", "model.safetensors") if f not in members]
        if missing:
            raise CheckpointError(f"{p.name} is not a zipped run directory: it lacks {', '.join(missing)}")
        try:
            limits.check_bytes(f"{p.name} (unpacked run files)", sum(i.file_size for i in members.values()),
                               "max_file_mb")
            blobs = {name: read_zip_member(z, info) for name, info in members.items()}
        except LimitError as e:
            raise CheckpointError(str(e)) from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, zlib.error) as e:
            raise CheckpointError(f"{p.name} is corrupt ({e}); zip the run directory again") from None
    dest.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(blobs["config.json"] + blobs["model.safetensors"])
    out = dest / f"run-{digest.hexdigest()[:16]}"
    if is_run_dir(out):
        return out
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=dest))
    try:
        for name, blob in blobs.items():
            (tmp / name).write_bytes(blob)
        from .epoch_codes import load_epoch_codes

        try:
            load_run(tmp)  # refuses a bad config, oversized or mismatched weights, non-safetensors, with the reason
            load_epoch_codes(tmp)  # a recorded training, when the zip has one, checked as the app will read it
        except (ValueError, OSError) as e:  # said with the zip's member names: the temp dir is the server's
            raise CheckpointError(f"{p.name}: {_member_words(sentence(e), tmp, members)}") from None
        follow_umask(tmp)
        if not _renameat2(tmp, out, _RENAME_NOREPLACE):
            os.rename(tmp, out)
    except FileExistsError:  # another session unpacked the same bytes first
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

