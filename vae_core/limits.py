"""Every size and time budget in one place, each raised by one environment variable.

Sizes are checked before memory is allocated for them (docs/architecture.md, "Trust boundary"): a stranger's
file or form input must never take the server past its budget. Every refusal names the option,
the limit and the variable that raises it. The values are read when asked for, so a test or a
deployment changes them through the environment alone.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields


class LimitError(ValueError):
    """A size or count over its budget; the message names the limit and the setting that raises it."""


def _limit(default, lo, hi):
    """A Limits field: its default and the range [lo, hi] a VAE_EXPLORER_* value must fall in."""
    return field(default=default, metadata={"range": (lo, hi)})


@dataclass(frozen=True)
class Limits:
    """The budgets in force (defaults fit a 2-core, 24 GB machine serving a class).

    Each field is (default, lowest, highest): a value outside that range, or not finite, is refused
    when the limits are read, so a typo never reaches an allocation, a poll(2) timeout (milliseconds
    in a C int: 24.8 days at most) or an rlimit. The highest values are far past any machine here.
    """

    worker_memory_mb: int = _limit(4096, 64, 2**20)  # a user's model worker process: memory it may allocate
    worker_timeout_s: float = _limit(60.0, 0.1, 86_400.0)  # one call into a user's model (a batch); a day at most
    # one call a person waits for (load probe, a few images); at most worker_timeout_s
    worker_interactive_s: float = _limit(15.0, 0.1, 86_400.0)
    max_params: int = _limit(50_000_000, 1, 10**12)  # parameters of a model built from a config (200 MB of float32)
    max_data_mb: int = _limit(2048, 1, 2**24)  # one dataset in memory as float32 (N, C, H, W)
    max_file_mb: int = _limit(200, 1, 2**24)  # one uploaded or read file on disk (zip members: uncompressed)
    # a .npy over this as float32 (or over max_file_mb on disk) is left on disk, read in batches with pread
    mmap_over_mb: int = _limit(512, 1, 2**24)
    max_mapped_mb: int = _limit(65536, 1, 2**30)  # one .npy left on disk (read in batches with pread, never whole)
    max_image_pixels: int = _limit(4096 * 4096, 1, 2**40)  # one decoded image (width x height)
    max_total_pixels: int = _limit(256 * 2**20, 1, 2**50)  # all images of a folder or zip together (x channels)
    max_csv_field: int = _limit(1024, 1, 2**30)  # characters in one CSV field (a pixel value needs a few)
    # images in a folder or zip, members of any zip (its directory is read into memory)
    max_files: int = _limit(200_000, 1, 10**9)
    max_hidden: int = _limit(16384, 1, 2**20)  # units in one hidden layer (--hidden, conv channels too)
    max_layers: int = _limit(16, 1, 1024)  # hidden layers / conv layers
    max_latent: int = _limit(1024, 1, 2**20)  # latent dimensions D
    max_batch: int = _limit(8192, 1, 2**24)  # minibatch size
    max_epochs: int = _limit(10_000, 1, 10**9)
    max_iwae_k: int = _limit(10_000, 1, 10**9)  # importance samples per point in diagnose
    public: bool = False  # VAE_EXPLORER_PUBLIC=1: no model uploads, no training (servers open to strangers)


ENV = {f.name: f"VAE_EXPLORER_{f.name.upper()}" for f in fields(Limits)}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def allowed(name: str) -> str:
    """The values Limits field `name` takes, in words: 'a whole number from 1 to 1,024'."""
    f = next(f for f in fields(Limits) if f.name == name)
    if isinstance(f.default, bool):
        return "1 or 0 (also true/false, yes/no, on/off)"
    lo, hi = f.metadata["range"]
    unit = " (MB)" if name.endswith("_mb") else " (seconds)" if name.endswith("_s") else ""
    if isinstance(f.default, float):
        return f"a number from {lo:,g} to {hi:,g}{unit}"
    return f"a whole number from {lo:,} to {hi:,}{unit}"


def _parse(name: str, raw: str, default):
    """The value of VAE_EXPLORER_<NAME>=raw, or LimitError: one sentence with the variable, the value
    and the allowed range (inf, nan, 1e999, text, out-of-range and fractional counts all refused)."""
    bad = f"{ENV[name]}={raw!r} is not allowed: it must be {allowed(name)}; fix or unset it"
    text = raw.strip().lower()
    if isinstance(default, bool):
        if text in _TRUE + _FALSE:
            return text in _TRUE
        raise LimitError(bad)
    try:
        v = float(text)
    except ValueError:
        raise LimitError(bad) from None
    lo, hi = next(f for f in fields(Limits) if f.name == name).metadata["range"]
    if not (math.isfinite(v) and lo <= v <= hi) or (isinstance(default, int) and not v.is_integer()):
        raise LimitError(bad)
    return int(v) if isinstance(default, int) else v


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


__all__ = ["ENV", "LimitError", "Limits", "allowed", "check", "check_bytes", "limits", "over"]
