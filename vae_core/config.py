"""Model and training configuration: frozen dataclasses, validated on construction.

A run directory stores both as JSON (``config.json``), and that file alone rebuilds the model.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from . import limits as _limits

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
KL_SCHEDULES = ("constant", "linear", "cyclical")


# The command-line option of a field, where it is not simply --field-name (messages name both).
_OPTION = {"warmup_fraction": "--warmup", "ramp_fraction": "--ramp", "input_shape": "the data's shape"}


def option(name: str) -> str:
    """'latent_dim (--latent-dim)': a config field with the CLI option that sets it."""
    opt = _OPTION.get(name, "--" + name.replace("_", "-"))
    return f"{name} ({opt})"


def _int(name: str, value: Any, lo: int, limit: str | None = None) -> int:
    """An integer >= lo (and within the named limit); bools, floats with a fraction, NaN refused."""
    if isinstance(value, float) and value.is_integer():  # 3.0 from JSON or a form; not 3.5, NaN or Inf
        value = int(value)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError
        v = int(value)
    except ValueError:
        raise ValueError(f"{option(name)} must be an integer, got {value!r}") from None
    if v < lo:
        raise ValueError(f"{option(name)} must be >= {lo}, got {v}")
    if limit is not None:
        _limits.check(option(name), v, limit)
    return v


def _float(name: str, value: Any, *, lo: float | None = None, lo_open: bool = False, hi: float | None = None) -> float:
    """A finite float within [lo, hi] ((lo, hi] with lo_open); NaN and Inf are refused by name."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{option(name)} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v):
        raise ValueError(f"{option(name)} must be a finite number, got {value!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ValueError(f"{option(name)} must be {'>' if lo_open else '>='} {lo:g}, got {v:g}")
    if hi is not None and v > hi:
        raise ValueError(f"{option(name)} must be <= {hi:g}, got {v:g}")
    return v


def _tuple_of_ints(name: str, value: Any, limit: str | None = None) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{option(name)} must be a sequence of integers, got {value!r}")
    out = tuple(_int(name, v, 1, limit) for v in value)
    if limit is not None:
        _limits.check(f"the number of layers in {option(name)}", len(out), "max_layers")
    return out


@dataclass(frozen=True)
class ModelConfig:
    """What it takes to rebuild a VAE (stored in config.json)."""

    input_shape: tuple[int, int, int] = (1, 28, 28)  # (C, H, W) of the data it was trained on
    latent_dim: int = 20  # 20 is the classic MNIST size (Kingma & Welling 2014)
    arch: str = "mlp"  # "mlp" or "conv"
    hidden: tuple[int, ...] = (400,)  # MLP hidden sizes; for conv, the fully connected layer(s)
    conv_channels: tuple[int, ...] = (32, 64)  # one stride-2 conv per entry; H, W must halve that often
    likelihood: str = "bernoulli"  # "bernoulli" (binary-ish pixels) or "gaussian"
    gaussian_scale: float = 0.1  # fixed std s of p(x|z) for "gaussian" (beta_equiv = 2 s^2 vs SSE)
    learn_scale: bool = False  # learn one shared log-scale for "gaussian" instead of fixing it

    def __post_init__(self) -> None:
        shape = _tuple_of_ints("input_shape", self.input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {self.input_shape!r}")
        _limits.check("one image (input_shape, C x H x W values)", shape[0] * shape[1] * shape[2], "max_image_pixels")
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "hidden", _tuple_of_ints("hidden", self.hidden, "max_hidden"))
        object.__setattr__(self, "conv_channels", _tuple_of_ints("conv_channels", self.conv_channels, "max_hidden"))
        object.__setattr__(self, "latent_dim", _int("latent_dim", self.latent_dim, 1, "max_latent"))
        if self.arch not in ARCHS:
            raise ValueError(f"{option('arch')} must be one of {ARCHS}, got {self.arch!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"{option('likelihood')} must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        object.__setattr__(self, "gaussian_scale", _float("gaussian_scale", self.gaussian_scale, lo=0, lo_open=True))
        if not isinstance(self.learn_scale, bool):
            raise ValueError(f"{option('learn_scale')} must be true or false, got {self.learn_scale!r}")
        if self.arch == "conv":
            if not self.conv_channels:
                raise ValueError("conv_channels must not be empty for arch='conv'")
            factor = 2 ** len(self.conv_channels)
            _, h, w = shape
            if h % factor or w % factor:
                raise ValueError(
                    f"arch='conv' with {len(self.conv_channels)} stride-2 layers needs H and W "
                    f"divisible by {factor}, got {h}x{w}; use fewer conv_channels or arch='mlp'"
                )
        from .models import count_params  # counted on the meta device: no memory allocated

        _limits.check("the model's parameter count", count_params(self), "max_params")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s): {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """How a VAE is trained (stored in config.json beside the model config)."""

    epochs: int = 30
    batch_size: int = 128  # the pytorch/examples VAE default
    lr: float = 1e-3  # Adam, as in Kingma & Welling
    beta: float = 1.0  # weight of KL at the end of any schedule; 1 = the true ELBO
    kl_schedule: str = "constant"  # "constant", "linear" (warm-up) or "cyclical" (Fu et al. 2019)
    warmup_fraction: float = 0.3  # linear: fraction of training over which beta rises
    beta_start: float = 0.0  # linear: the weight beta rises from
    cycles: int = 4  # cyclical: number of cycles M (Fu et al. default)
    ramp_fraction: float = 0.5  # cyclical: fraction R of each cycle spent rising (Fu et al. default)
    free_bits: float = 0.0  # lambda, nats per dimension (Kingma et al. 2016); 0 = off
    eval_fraction: float = 0.2  # held-out share of the data, evaluated every epoch
    seed: int = 0
    bf16: bool = False  # opt-in bf16 autocast: same loss; faster only with native bf16 (AVX512-BF16/AMX)

    def __post_init__(self) -> None:
        ints = {"epochs": (1, "max_epochs"), "batch_size": (1, "max_batch"), "cycles": (1, "max_epochs"),
                "seed": (0, None)}
        for name, (lo, limit) in ints.items():
            object.__setattr__(self, name, _int(name, getattr(self, name), lo, limit))
        if self.seed >= 2**32:  # numpy's and torch's seeds both take it
            raise ValueError(f"{option('seed')} must be below 2**32, got {self.seed}")
        floats = {"lr": dict(lo=0, lo_open=True), "beta": dict(lo=0), "beta_start": dict(lo=0),
                  "free_bits": dict(lo=0), "warmup_fraction": dict(lo=0, lo_open=True, hi=1),
                  "ramp_fraction": dict(lo=0, lo_open=True, hi=1), "eval_fraction": dict(lo=0, hi=0.99)}
        for name, bounds in floats.items():
            object.__setattr__(self, name, _float(name, getattr(self, name), **bounds))
        if self.kl_schedule not in KL_SCHEDULES:
            raise ValueError(f"{option('kl_schedule')} must be one of {KL_SCHEDULES}, got {self.kl_schedule!r}")
        if not isinstance(self.bf16, bool):
            raise ValueError(f"{option('bf16')} must be true or false, got {self.bf16!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
