"""Reading run directories: `load_run`, `load_model`, `list_runs`, and what a run's config.json says.

A run directory (docs/contracts.md, "Run directory") holds `config.json` (format version, model and training
config, dataset id, seed, timestamps), `model.safetensors` (weights) and `history.csv` (one row
per epoch); `checkpoints.save_run` writes it. config.json is parsed by `read_config` alone
(`run_config` where a missing or broken one may read as {}). Weights load through safetensors,
never pickle, their shapes checked against the config before any is allocated.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ModelConfig, TrainConfig
from ..errors import CheckpointError
from ..limits import LimitError

if TYPE_CHECKING:
    import torch

    from ..models import VAE
    from ..sandbox import RemoteModel

FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 1 << 20  # a run config is a few kB
_ASIDE = ".old-"  # an overwrite without RENAME_EXCHANGE moves the existing run to .<name>.old-<pid>


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


def _invalid_config(cfg_path: Path, e: BaseException) -> CheckpointError:
    return CheckpointError(f"{cfg_path} is not a valid run config ({type(e).__name__}: {e}); "
                           "it needs a 'model' object as written by `python -m vae_core train`")


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed config.json of run directory `path`: a JSON object of at most MAX_CONFIG_BYTES.

    CheckpointError naming the file when it is missing, too large, not UTF-8 JSON or not an object.
    """
    p = Path(path)
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"{p} has no config.json: not a run directory")
    if cfg_path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{cfg_path} is {cfg_path.stat().st_size:,} bytes; a run config is a few kB")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise _invalid_config(cfg_path, e) from None
    if not isinstance(config, dict):
        raise _invalid_config(cfg_path, TypeError("the file holds no JSON object"))
    return config


def run_config(path: str | Path) -> dict[str, Any]:
    """`read_config`, or {} where there is none to read (a TorchScript file, a missing, unreadable
    or broken config.json): for callers that look up optional keys."""
    try:
        return read_config(path)
    except (CheckpointError, OSError):
        return {}


def read_history(path: str | Path) -> list[dict[str, float]]:
    """The rows of a run's history.csv as floats; [] where there is none.

    An empty cell is NaN, and `nan` / `inf` load as they are (a diverged training writes them); a
    cell that is not a number is a CheckpointError naming the row and the column.
    """
    f_path = Path(path) / "history.csv"
    if not f_path.is_file():
        return []
    fix = "fix that cell (a number, or empty for none) or delete history.csv: the run loads without it"
    rows: list[dict[str, float]] = []
    try:
        with open(f_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for i, row in enumerate(reader, start=1):  # row 1 is the first after the header
                where = f"history.csv row {i} (line {reader.line_num})"
                if None in row:  # DictReader puts cells past the header's under the key None
                    raise CheckpointError(f"{where} has {len(row) - 1 + len(row[None])} cells but the header names "
                                          f"{len(reader.fieldnames or [])}; {fix}")
                out: dict[str, float] = {}
                for k, v in row.items():
                    try:
                        out[k] = float("nan") if v in ("", None) else float(v)
                    except ValueError:
                        raise CheckpointError(f"{where}, column {k}: {v[:40]!r} is not a number; {fix}") from None
                rows.append(out)
    except UnicodeDecodeError:
        raise CheckpointError(f"history.csv is not UTF-8 text; {fix}") from None
    except csv.Error as e:
        raise CheckpointError(f"history.csv is not a valid CSV file ({e}); {fix}") from None
    return rows


def _model_config(config: dict[str, Any], cfg_path: Path) -> ModelConfig:
    """The ModelConfig a parsed config.json describes (its format version checked first)."""
    try:
        if int(config.get("format_version", 0)) > FORMAT_VERSION:
            raise CheckpointError(f"{cfg_path} has format_version {config['format_version']}; "
                                  f"this version reads up to {FORMAT_VERSION}: upgrade VAE Latent Explorer")
        if not isinstance(config.get("model"), dict):
            raise KeyError("model")
        return ModelConfig.from_dict(config["model"])
    except CheckpointError:
        raise
    except LimitError as e:
        raise CheckpointError(f"{cfg_path}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise _invalid_config(cfg_path, e) from None


def load_run(path: str | Path) -> Run:
    """Rebuild a run's model from config.json and load its safetensors weights (eval mode).

    Sizes are checked before any weight is allocated: the config's parameter count against
    VAE_EXPLORER_MAX_PARAMS, and every tensor's shape in the safetensors header against the model
    the config describes. Non-finite weights are refused.
    """
    import torch  # here: reading names, configs and lists of runs (the sidebar) needs no torch
    from safetensors import SafetensorError, safe_open

    from ..models import VAE, meta_state
    from .model_files import PICKLE_HELP, looks_like_pickle

    p = Path(path)
    recover_aside(p)
    if not p.is_dir():
        raise FileNotFoundError(f"run directory not found: {p}")
    config = read_config(p)
    model_cfg = _model_config(config, p / "config.json")
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
        kind = "a pickle file, which is never loaded" if looks_like_pickle(weights) else "not a valid safetensors file"
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
    return Run(path=p, model=model, config=config, history=read_history(p))


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


def load_model(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> "VAE | RemoteModel":
    """A run directory, a TorchScript file or a zip of torch.export / ONNX programs -> a model with
    encode/decode/nll, in eval mode (a user's file runs in a sandbox worker)."""
    from .model_files import load_model_file

    p = Path(path)
    if p.is_dir():
        return load_run(p).model
    if not p.exists():
        raise FileNotFoundError(f"no run directory or model file at {p}")
    if p.suffix == ".safetensors":
        raise CheckpointError(f"{p} holds weights only; give the run directory that has its config.json")
    return load_model_file(p, input_shape)


# ---------------------------------------------------------------- finding runs


def aside_path(out: Path) -> Path:
    """Where an overwrite without RENAME_EXCHANGE moves the existing run while the new one takes its place."""
    return out.with_name(f".{out.name}{_ASIDE}{os.getpid()}")


def recover_aside(out: Path) -> None:
    """Put back a run left aside (aside_path) by an overwrite that was killed between its two renames.

    Only on filesystems without RENAME_EXCHANGE does an overwrite take two renames.
    """
    if out.exists() or not out.parent.is_dir():
        return
    aside = sorted(out.parent.glob(f".{glob.escape(out.name)}{_ASIDE}*"), key=lambda p: p.stat().st_mtime)
    for old in reversed(aside):
        if is_run_dir_files(old):
            try:
                os.rename(old, out)
            except OSError:
                pass
            return


def is_run_dir_files(p: Path) -> bool:
    """True when p is a directory holding config.json and model.safetensors (hidden or not)."""
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
    for old in root.glob(f".*{_ASIDE}*"):
        recover_aside(root / old.name[1:old.name.rindex(_ASIDE)])
    return sorted(p for p in root.iterdir() if is_run_dir(p))


def fingerprint(path: str | Path) -> str:
    """A content hash of a run directory or model file: the key caches use (not object identity)."""
    p = Path(path)
    files = [p / "config.json", p / "model.safetensors"] if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- what config.json says, no weights loaded


def run_input_shape(path: str | Path) -> tuple[int, int, int] | None:
    """(C, H, W) a run directory's model takes, read from its config.json alone (no weights loaded);
    None for a TorchScript file (it stores no input shape) or an unreadable config."""
    try:
        shape = tuple(int(v) for v in run_config(path)["model"]["input_shape"])
    except (KeyError, TypeError, ValueError):
        return None
    return shape if len(shape) == 3 else None


class EvalSplit(tuple):
    """(seed, eval_fraction, n, dataset) of a run's train/eval split, in the order
    `metrics.pipeline.heldout.eval_points(data, n_points, *split)` takes them.

    `train` did `load_dataset(dataset, n=n, seed=seed).split(eval_fraction, seed)`; n (the run's
    `--n`) and dataset (its id) shape the split as much as the seed does. The eval fraction
    defaults to TrainConfig's.
    """

    __slots__ = ()

    def __new__(cls, seed: int = 0, eval_fraction: float = TrainConfig.eval_fraction, n: int | None = None,
                dataset: str | None = None):
        return super().__new__(cls, (seed, eval_fraction, n, dataset))

    seed = property(lambda self: self[0])
    eval_fraction = property(lambda self: self[1])
    n = property(lambda self: self[2])
    dataset = property(lambda self: self[3])


def eval_split(path: str | Path) -> EvalSplit:
    """The split a model was trained with: (seed, eval_fraction, n, dataset) from a run's config.json;
    EvalSplit() (seed 0, TrainConfig's eval fraction, no n, no dataset) otherwise (a TorchScript file:
    no split is known).

    Diagnostics must score the run's own held-out points; another split seed would mostly pick
    training points (runs/default: ELBO -104 on those against -112 held out), and so would the
    split of the whole data for a run trained on `--n` of it (an mnist run on --n 2000: 311 of
    1,000 such points were training points).
    """
    cfg = run_config(path)
    try:
        n = cfg.get("n")
        dataset = cfg.get("dataset")
        return EvalSplit(int(cfg.get("seed", 0)),
                         float(cfg.get("train", {}).get("eval_fraction", TrainConfig.eval_fraction)),
                         None if n is None else int(n), None if dataset is None else str(dataset))
    except (TypeError, ValueError, AttributeError):
        return EvalSplit()
