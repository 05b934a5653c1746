"""Run directories and model loading: `save_run`, `load_run`, `load_model`.

A run directory (DESIGN.md contract) holds `config.json` (format version, model and training
config, dataset id, seed, timestamps), `model.safetensors` (weights) and `history.csv` (one row
per epoch). It is written into a temporary sibling directory and renamed into place, so a crash
never leaves a half-written run. Weights load through safetensors, a user's model through
`torch.jit.load`; a pickle is never unpickled.
"""
from __future__ import annotations

import copy
import csv
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ModelConfig, TrainConfig
from .models import VAE, ScriptedVAE

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


def save_run(out: str | Path, model: VAE, train_cfg: TrainConfig, history: list[dict[str, Any]], *,
             dataset: str, started: str | None = None, extra: dict[str, Any] | None = None,
             overwrite: bool = False) -> Path:
    """Write a run directory atomically (temp dir, then rename); returns its path."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"run directory {out} already exists; choose another --out or pass overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
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
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        _write_history(tmp / "history.csv", history)
        for f in tmp.iterdir():  # data on disk before the rename makes it visible
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        if old is not None and old.exists() and not out.exists():
            os.rename(old, out)  # the new run never took its place: put the existing one back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def is_run_dir(path: str | Path) -> bool:
    """True when path is a complete run directory (hidden temp dirs never are)."""
    p = Path(path)
    return (p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
            and (p / "model.safetensors").is_file())


def list_runs(root: str | Path = "runs") -> list[Path]:
    """Complete run directories under root, sorted by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if is_run_dir(p)) if root.is_dir() else []


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
    """Rebuild a run's model from config.json and load its safetensors weights (eval mode)."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"run directory not found: {p}")
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{p} has no config.json: not a run directory")
    try:
        config = json.loads(cfg_path.read_text())
        model_cfg = ModelConfig.from_dict(config["model"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{cfg_path} is not a valid run config: {e}") from None
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{cfg_path} has format_version {config['format_version']}; "
                              f"this version reads up to {FORMAT_VERSION}: upgrade VAE Latent Explorer")
    weights = p / "model.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"{p} has no model.safetensors")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        kind = "a pickle file, which is never loaded" if _looks_like_pickle(weights) else "not a valid safetensors file"
        raise CheckpointError(f"{weights} is {kind} ({e}). {PICKLE_HELP}") from None
    model = VAE(model_cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{weights} does not match the model in config.json: {e}") from None
    model.eval()
    return Run(path=p, model=model, config=config, history=_read_history(p / "history.csv"))


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


def load_torchscript(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> ScriptedVAE:
    """A user's TorchScript model (DESIGN.md contract) behind the VAE interface (eval mode)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    if not _is_torchscript(p):
        if _looks_like_pickle(p):
            raise CheckpointError(f"{p} is a pickle checkpoint (torch.save), which is never unpickled "
                                  f"because it can run arbitrary code. {PICKLE_HELP}")
        raise CheckpointError(f"{p} is not a TorchScript file (torch.jit.save) nor a run directory. {PICKLE_HELP}")
    try:
        module = torch.jit.load(str(p), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError and others for a broken archive
        raise CheckpointError(f"{p} could not be loaded as TorchScript: {str(e).splitlines()[0]}") from None
    for method in ("encode", "decode"):
        if not hasattr(module, method):
            raise CheckpointError(f"{p}: the TorchScript module has no {method}() method; it needs "
                                  "encode(x) -> (mu, logvar) and decode(z) -> mean")
    module.eval()
    try:
        return ScriptedVAE(module, input_shape).eval()
    except ValueError as e:
        raise CheckpointError(f"{p}: {e}") from None


def load_model(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> VAE | ScriptedVAE:
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
    if not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        names = {Path(n).name for n in z.namelist()}
    return {"config.json", "model.safetensors"} <= names


def extract_run_zip(path: str | Path, dest: str | Path, *, max_bytes: int = 200 * 2**20) -> Path:
    """Unpack a zipped run directory into dest/<name> atomically, after checking it loads.

    Only the run files are read (no other member is extracted, so no path can escape dest);
    the weights go through safetensors, never pickle. Returns the run directory.
    """
    p, dest = Path(path), Path(dest)
    try:
        z = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as e:
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
        total = sum(i.file_size for i in members.values())
        if total > max_bytes:
            raise CheckpointError(f"{p.name} unpacks to {total / 2**20:.0f} MB; the limit is {max_bytes / 2**20:.0f} MB")
        dest.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(b"".join(z.read(members[f]) for f in ("config.json", "model.safetensors")))
        out = dest / f"run-{digest.hexdigest()[:16]}"
        if is_run_dir(out):
            return out
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=dest))
        try:
            for name, info in members.items():
                (tmp / name).write_bytes(z.read(info))
            load_run(tmp)  # refuses a bad config or non-safetensors weights, with the reason
            os.rename(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def eval_split(path: str | Path) -> tuple[int, float]:
    """(split seed, eval fraction) a model was trained with: from a run's config.json; (0, 0.2) otherwise.

    Diagnostics must score the run's own held-out points; another split seed would mostly pick
    training points (runs/default: ELBO -104 on those against -112 held out).
    """
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        return 0, 0.2
    try:
        cfg = json.loads(cfg_path.read_text())
        return int(cfg.get("seed", 0)), float(cfg.get("train", {}).get("eval_fraction", 0.2))
    except (json.JSONDecodeError, TypeError, ValueError):
        return 0, 0.2
