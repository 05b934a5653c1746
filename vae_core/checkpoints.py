"""Run directories and model loading: `save_run`, `load_run`, `load_model`.

A run directory (DESIGN.md contract) holds `config.json` (format version, model and training
config, dataset id, seed, timestamps), `model.safetensors` (weights) and `history.csv` (one row
per epoch). It is written into a temporary sibling directory and renamed into place, so a crash
never leaves a half-written run. Weights load through safetensors, a user's TorchScript model
in a child worker process (`vae_core.sandbox`); a pickle is never unpickled.
"""
from __future__ import annotations

import contextlib
import copy
import csv
import ctypes
import datetime as dt
import errno
import fcntl
import glob
import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import limits
from .config import ModelConfig, TrainConfig
from .limits import LimitError
from .models import VAE, meta_state

if TYPE_CHECKING:
    from .sandbox import RemoteModel

FORMAT_VERSION = 1
HISTORY_COLUMNS = ["epoch", "loss", "recon_nll", "kl", "beta", "eval_elbo", "seconds", "samples_per_s"]
PICKLE_HELP = (
    "Convert it without pickle: save the weights with safetensors.torch.save_file(model.state_dict(), ...) "
    "beside a config.json, or export the model with torch.jit.save(torch.jit.script(model), 'model.ts') "
    "following the TorchScript contract (encode(x) -> (mu, logvar), decode(z) -> mean)."
)


class CheckpointError(ValueError):
    """A model file or run directory that cannot be loaded; the message says what to do."""


@dataclass
class Run:
    """A loaded run directory."""

    path: Path
    model: VAE
    config: dict[str, Any]  # the parsed config.json
    history: list[dict[str, float]]  # history.csv rows

    @property
    def model_config(self) -> ModelConfig:
        return self.model.cfg

    @property
    def dataset(self) -> str:
        return self.config.get("dataset", "")


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


def _recover(out: Path) -> None:
    """Put back a run left aside by an overwrite that was killed between its two renames.

    Only on filesystems without RENAME_EXCHANGE does an overwrite take two renames.
    """
    if out.exists() or not out.parent.is_dir():
        return
    aside = sorted(out.parent.glob(f".{glob.escape(out.name)}.old-*"), key=lambda p: p.stat().st_mtime)
    for old in reversed(aside):
        if is_run_dir_files(old):
            try:
                os.rename(old, out)
            except OSError:
                pass
            return


def save_run(out: str | Path, model: VAE, train_cfg: TrainConfig, history: list[dict[str, Any]], *,
             dataset: str, started: str | None = None, extra: dict[str, Any] | None = None,
             overwrite: bool = False) -> Path:
    """Write a run directory atomically (temp dir, then rename or swap); returns its path.

    A kill at any step leaves the previous run (if any) whole at `out` and no half run listed
    (temporary directories are hidden). Holds `run_lock(out)` while it writes.
    """
    out = Path(out)
    with run_lock(out):
        _recover(out)
        if out.exists() and not overwrite:
            raise FileExistsError(f"run directory {out} already exists; choose another --out or pass overwrite")
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        _step("tmpdir")
        old: Path | None = None
        try:
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
            (tmp / "config.json").write_text(json.dumps(config, indent=2, allow_nan=False) + "\n")
            _step("config")
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(state, str(tmp / "model.safetensors"))
            _step("weights")
            _write_history(tmp / "history.csv", history)
            _step("history")
            for f in tmp.iterdir():  # data on disk before the rename makes it visible
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            _step("fsync")
            if out.exists():
                if _renameat2(tmp, out, _RENAME_EXCHANGE):  # one step: out is the new run, tmp the old
                    old = tmp
                    _step("swapped")
                else:
                    old = out.with_name(f".{out.name}.old-{os.getpid()}")
                    os.rename(out, old)
                    _step("aside")  # a kill here is mended by _recover on the next list or load
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
    return out


def is_run_dir_files(p: Path) -> bool:
    return p.is_dir() and (p / "config.json").is_file() and (p / "model.safetensors").is_file()


def is_run_dir(path: str | Path) -> bool:
    """True when path is a complete run directory (hidden temp dirs never are)."""
    p = Path(path)
    return not p.name.startswith(".") and is_run_dir_files(p)


def list_runs(root: str | Path = "runs") -> list[Path]:
    """Complete run directories under root, sorted by name (mending an overwrite killed midway)."""
    root = Path(root)
    if not root.is_dir():
        return []
    for old in root.glob(".*.old-*"):
        _recover(root / old.name[1:old.name.rindex(".old-")])
    return sorted(p for p in root.iterdir() if is_run_dir(p))


def fingerprint(path: str | Path) -> str:
    """A content hash of a run directory or model file: the key caches use (not object identity)."""
    p = Path(path)
    files = [p / "config.json", p / "model.safetensors"] if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _read_history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(f)]


def load_run(path: str | Path) -> Run:
    """Rebuild a run's model from config.json and load its safetensors weights (eval mode).

    Sizes are checked before any weight is allocated: the config's parameter count against
    VAE_EXPLORER_MAX_PARAMS, and every tensor's shape in the safetensors header against the model
    the config describes. Non-finite weights are refused.
    """
    p = Path(path)
    _recover(p)
    if not p.is_dir():
        raise FileNotFoundError(f"run directory not found: {p}")
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{p} has no config.json: not a run directory")
    if cfg_path.stat().st_size > 1 << 20:
        raise CheckpointError(f"{cfg_path} is {cfg_path.stat().st_size:,} bytes; a run config is a few kB")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
        if not isinstance(config, dict):
            raise TypeError("the file holds no JSON object")
        if int(config.get("format_version", 0)) > FORMAT_VERSION:
            raise CheckpointError(f"{cfg_path} has format_version {config['format_version']}; "
                                  f"this version reads up to {FORMAT_VERSION}: upgrade VAE Latent Explorer")
        if not isinstance(config.get("model"), dict):
            raise KeyError("model")
        model_cfg = ModelConfig.from_dict(config["model"])
    except CheckpointError:
        raise
    except LimitError as e:
        raise CheckpointError(f"{cfg_path}: {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_path} is not a valid run config ({type(e).__name__}: {e}); "
                              "it needs a 'model' object as written by `python -m vae_core train`") from None
    expected = meta_state(model_cfg)  # shapes only, nothing allocated (ModelConfig checked the count)
    weights = p / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{p} has no model.safetensors")
    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
            _check_shapes(weights, shapes, expected)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        kind = "a pickle file, which is never loaded" if _looks_like_pickle(weights) else "not a valid safetensors file"
        raise CheckpointError(f"{weights} is {kind} ({e}). {PICKLE_HELP}") from None
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"{weights}: tensor {bad[0]} holds NaN or Inf values; a model with non-finite "
                              "weights cannot be scored (retrain it, or pick the last good run)")
    model = VAE(model_cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{weights} does not match the model in config.json: {e}") from None
    model.eval()
    return Run(path=p, model=model, config=config, history=_read_history(p / "history.csv"))


def _check_shapes(weights: Path, found: dict[str, tuple[tuple[int, ...], str]],
                  expected: dict[str, torch.Tensor]) -> None:
    """The safetensors header must hold exactly the config's tensors, float32, of the config's shapes."""
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has an unexpected tensor {extra[0]}"
        raise CheckpointError(f"{weights} does not match the model in config.json: it {what} "
                              f"({len(missing)} missing, {len(extra)} unexpected)")
    for k, t in expected.items():
        shape, dtype = found[k]
        if shape != tuple(t.shape):
            raise CheckpointError(f"{weights} does not match the model in config.json: {k} has shape "
                                  f"{list(shape)}, the config makes {list(t.shape)}")
        if dtype not in ("F32", "float32"):
            raise CheckpointError(f"{weights}: {k} is {dtype}; runs store float32 weights")


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":  # pickle protocol 2+ opcode PROTO
        return True
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    return False


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips with a code/ folder; torch.save zips have only data.pkl + data/."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any("/code/" in n or n.startswith("code/") for n in names) and any(n.endswith("constants.pkl") for n in names)


def load_torchscript(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> "RemoteModel":
    """A user's TorchScript model (DESIGN.md contract) behind the VAE interface, run in a child worker.

    The file is loaded by `torch.jit.load` in the worker only (DESIGN.md, "Trust boundary"), after
    its filesystem is closed; every method is checked against the operation allow-list before
    any runs. With `input_shape` the model is also probed on zeros of that shape.
    """
    from .sandbox import RemoteModel

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    if not _is_torchscript(p):
        if _looks_like_pickle(p):
            raise CheckpointError(f"{p} is a pickle checkpoint (torch.save), which is never unpickled "
                                  f"because it can run arbitrary code. {PICKLE_HELP}")
        raise CheckpointError(f"{p} is not a TorchScript file (torch.jit.save) nor a run directory. {PICKLE_HELP}")
    return RemoteModel(p, input_shape).eval()


def load_model(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> "VAE | RemoteModel":
    """A run directory or a TorchScript file -> a model with encode/decode/nll, in eval mode."""
    p = Path(path)
    if p.is_dir():
        return load_run(p).model
    if not p.exists():
        raise FileNotFoundError(f"no run directory or model file at {p}")
    if p.suffix == ".safetensors":
        raise CheckpointError(f"{p} holds weights only; give the run directory that has its config.json")
    return load_torchscript(p, input_shape)


class _ScriptableVAE(torch.nn.Module):
    """The parts of a VAE that TorchScript needs, with the DESIGN.md contract's methods."""

    # attributes likelihood (str) and scale (float) are inferred by TorchScript from their values

    def __init__(self, model: VAE):
        super().__init__()
        self.encoder, self.enc_out, self.decoder = model.encoder, model.enc_out, model.decoder
        self.likelihood = model.likelihood
        self.scale = float(model.log_scale.exp())

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc_out(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def export_torchscript(model: VAE, path: str | Path) -> Path:
    """Save a trained VAE as a TorchScript file that `load_model` (or anyone's code) can load."""
    path = Path(path)
    scripted = torch.jit.script(_ScriptableVAE(copy.deepcopy(model).eval()))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.jit.save(scripted, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


RUN_FILES = ("config.json", "model.safetensors", "history.csv")


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
            blobs = {name: _read_member(z, info) for name, info in members.items()}
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
        load_run(tmp)  # refuses a bad config, oversized or mismatched weights, non-safetensors, with the reason
        if not _renameat2(tmp, out, _RENAME_NOREPLACE):
            os.rename(tmp, out)
    except FileExistsError:  # another session unpacked the same bytes first
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, chunk: int = 1 << 20) -> bytes:
    """A zip member's bytes, read through a stream that stops at its declared size.

    zipfile already stops at the declared size and checks the CRC at the end; a member that yields
    more bytes than declared is an error here too, never a read without end.
    """
    out = bytearray()
    with z.open(info) as f:
        while True:
            block = f.read(min(chunk, info.file_size - len(out) + 1))
            if not block:
                break
            out += block
            if len(out) > info.file_size:
                raise zipfile.BadZipFile(f"member {info.filename} holds more than its declared {info.file_size} bytes")
    if len(out) != info.file_size:
        raise zipfile.BadZipFile(f"member {info.filename} holds {len(out)} bytes, its header says {info.file_size}")
    return bytes(out)


class EvalSplit(tuple):
    """(seed, eval_fraction, n, dataset) of a run's train/eval split, in the order
    `metrics.report.eval_points(data, n_points, *split)` takes them.

    `train` did `load_dataset(dataset, n=n, seed=seed).split(eval_fraction, seed)`; n (the run's
    `--n`) and dataset (its id) shape the split as much as the seed does.
    """

    __slots__ = ()

    def __new__(cls, seed: int = 0, eval_fraction: float = 0.2, n: int | None = None, dataset: str | None = None):
        return super().__new__(cls, (seed, eval_fraction, n, dataset))

    seed = property(lambda self: self[0])
    eval_fraction = property(lambda self: self[1])
    n = property(lambda self: self[2])
    dataset = property(lambda self: self[3])


def run_input_shape(path: str | Path) -> tuple[int, int, int] | None:
    """(C, H, W) a run directory's model takes, read from its config.json alone (no weights loaded);
    None for a TorchScript file (it stores no input shape) or an unreadable config."""
    cfg_path = Path(path) / "config.json"
    try:
        shape = tuple(int(v) for v in json.loads(cfg_path.read_text())["model"]["input_shape"])
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError, KeyError, TypeError, ValueError):
        return None
    return shape if len(shape) == 3 else None


def eval_split(path: str | Path) -> EvalSplit:
    """The split a model was trained with: (seed, eval_fraction, n, dataset) from a run's config.json;
    (0, 0.2, None, None) otherwise (a TorchScript file: no split is known).

    Diagnostics must score the run's own held-out points; another split seed would mostly pick
    training points (runs/default: ELBO -104 on those against -112 held out), and so would the
    split of the whole data for a run trained on `--n` of it (an mnist run on --n 2000: 311 of
    1,000 such points were training points).
    """
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        return EvalSplit()
    try:
        cfg = json.loads(cfg_path.read_text())
        n = cfg.get("n")
        dataset = cfg.get("dataset")
        return EvalSplit(int(cfg.get("seed", 0)), float(cfg.get("train", {}).get("eval_fraction", 0.2)),
                         None if n is None else int(n), None if dataset is None else str(dataset))
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
        return EvalSplit()
