"""Every size and time budget in one place, each raised by one environment variable.

Sizes are checked before memory is allocated for them (DESIGN.md, "Trust boundary"): a stranger's
file or form input must never take the server past its budget. Every refusal names the option,
the limit and the variable that raises it. The values are read when asked for, so a test or a
deployment changes them through the environment alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields


class LimitError(ValueError):
    """A size or count over its budget; the message names the limit and the setting that raises it."""


@dataclass(frozen=True)
class Limits:
    """The budgets in force (defaults fit a 2-core, 24 GB machine serving a class)."""

    worker_memory_mb: int = 4096  # a user's model worker process: address space it may allocate
    worker_timeout_s: float = 60.0  # one call into a user's model (encode/decode/nll of one batch)
    max_params: int = 50_000_000  # parameters of a model built from a config (200 MB of float32)
    max_data_mb: int = 2048  # one dataset in memory as float32 (N, C, H, W)
    max_file_mb: int = 200  # one uploaded or read file on disk (zip members: uncompressed)
    mmap_over_mb: int = 512  # a .npy over this as float32 (or over max_file_mb on disk) is memory-mapped
    max_mapped_mb: int = 65536  # one .npy left on disk (read in batches with pread, never whole)
    max_image_pixels: int = 4096 * 4096  # one decoded image (width x height)
    max_total_pixels: int = 256 * 2**20  # all images of a folder or zip together (x channels)
    max_csv_field: int = 1024  # characters in one CSV field (a pixel value needs a few)
    max_files: int = 200_000  # images in a folder or zip, members of any zip (its directory is read into memory)
    max_hidden: int = 16384  # units in one hidden layer (--hidden, conv channels too)
    max_layers: int = 16  # hidden layers / conv layers
    max_latent: int = 1024  # latent dimensions D
    max_batch: int = 8192  # minibatch size
    max_epochs: int = 10_000
    max_iwae_k: int = 10_000  # importance samples per point in diagnose
    public: bool = False  # VAE_EXPLORER_PUBLIC=1: no model uploads, no training (servers open to strangers)


ENV = {f.name: f"VAE_EXPLORER_{f.name.upper()}" for f in fields(Limits)}


def _parse(name: str, raw: str, default):
    kind = type(default)
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        v = kind(float(raw)) if kind is int else kind(raw)
    except ValueError:
        raise LimitError(f"{ENV[name]}={raw!r} is not a number; unset it or give one like {default}") from None
    if not v > 0:
        raise LimitError(f"{ENV[name]}={raw!r} must be > 0")
    return v


def limits() -> Limits:
    """The limits in force now: defaults, each overridden by its VAE_EXPLORER_* variable."""
    d = Limits()
    vals = {}
    for f in fields(Limits):
        raw = os.environ.get(ENV[f.name])
        vals[f.name] = getattr(d, f.name) if raw in (None, "") else _parse(f.name, raw, getattr(d, f.name))
    return Limits(**vals)


def _fmt(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.4g}"


def check(what: str, value: float, name: str, *, unit: str = "") -> None:
    """Raise LimitError when value is over the limit `name` (a Limits field), naming its setting."""
    limit = getattr(limits(), name)
    if value > limit:
        raise LimitError(over(what, value, name, unit=unit))


def over(what: str, value: float, name: str, *, unit: str = "") -> str:
    """The sentence for `what` = value being over the limit `name`."""
    limit = getattr(limits(), name)
    u = f" {unit}" if unit else ""
    return (f"{what} is {_fmt(value)}{u}, over the limit of {_fmt(limit)}{u}; "
            f"set the environment variable {ENV[name]} to raise it")


def check_bytes(what: str, nbytes: int, name: str) -> None:
    """Like `check` for a size in bytes against a limit given in MB."""
    limit_mb = getattr(limits(), name)
    if nbytes > limit_mb * 2**20:
        raise LimitError(f"{what} needs {nbytes / 2**20:,.1f} MB, over the limit of {limit_mb:,} MB; "
                         f"set the environment variable {ENV[name]} (in MB) to raise it")


__all__ = ["ENV", "LimitError", "Limits", "check", "check_bytes", "limits", "over"]
