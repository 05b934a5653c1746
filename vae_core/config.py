"""Model and training configuration: frozen dataclasses, validated on construction.

A run directory stores both as JSON (``config.json``), and that file alone rebuilds the model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
KL_SCHEDULES = ("constant", "linear", "cyclical")


def _tuple_of_ints(name: str, value: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of integers, got {value!r}") from None
    if any(v <= 0 for v in out):
        raise ValueError(f"{name} must hold positive integers, got {value!r}")
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
        object.__setattr__(self, "input_shape", shape)
        object.__setattr__(self, "hidden", _tuple_of_ints("hidden", self.hidden))
        object.__setattr__(self, "conv_channels", _tuple_of_ints("conv_channels", self.conv_channels))
        if int(self.latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim!r}")
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if not float(self.gaussian_scale) > 0:
            raise ValueError(f"gaussian_scale must be > 0, got {self.gaussian_scale!r}")
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
        for name in ("epochs", "batch_size", "cycles"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not float(self.lr) > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if float(self.beta) < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")
        if self.kl_schedule not in KL_SCHEDULES:
            raise ValueError(f"kl_schedule must be one of {KL_SCHEDULES}, got {self.kl_schedule!r}")
        for name in ("warmup_fraction", "ramp_fraction"):
            v = float(getattr(self, name))
            if not 0 < v <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {v!r}")
        if not 0 <= float(self.eval_fraction) < 1:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction!r}")
        if float(self.free_bits) < 0:
            raise ValueError(f"free_bits must be >= 0, got {self.free_bits!r}")
        if float(self.beta_start) < 0:
            raise ValueError(f"beta_start must be >= 0, got {self.beta_start!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
