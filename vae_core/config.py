"""Model and training configuration: frozen dataclasses, validated on construction.

A run directory stores both as JSON (``config.json``), and that file alone rebuilds the model.

Each field is declared once, here, with ``opt(...)``: its default, bounds, CLI option name, help
text and form label live in the field's metadata. The checks below (``__post_init__``), the CLI's
``train`` options (``vae_core.cli``) and the app's Train form (``explorer.train_ui``) are all built
from that metadata.

Adding a training option: add one field to ModelConfig or TrainConfig, e.g.
``weight_decay: float = opt(0.0, lo=0, help="Adam weight decay", newcomer_help="...")``, then use
it where the model or the trainer needs it. It is then checked on construction, stored in
config.json, a ``--weight-decay`` option of ``python -m vae_core train`` and a control of the Train
form; ``tests/test_options_once.py`` checks all three. Its kind comes from the default: bool (a
flag / checkbox), int, float, str with ``choices`` (a choice / select box), or a tuple of ints
(``--hidden 512,256`` / a text box).
"""
from __future__ import annotations

import math
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, Mapping

from . import limits as _limits

ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
KL_SCHEDULES = ("constant", "linear", "cyclical")


def opt(default: Any, *, help: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
        limit: str | None = None, choices: tuple[str, ...] | None = None, cli: str | None = None,
        label: str | None = None, newcomer_help: str | None = None, step: float | None = None,
        set_by: str | None = None) -> Any:
    """A config field with everything the checks, the CLI and the Train form need to know about it.

    help: the CLI's --help line. newcomer_help: the Train form's longer explanation (else help).
    lo, hi: bounds (for a tuple: of each entry); lo_open refuses lo itself. limit: a `limits.Limits`
    field (e.g. "max_hidden") the value, or each entry, must not exceed; its environment variable
    raises it. choices: the allowed strings. cli: the option's name where it is not --field-name.
    label: the form's label. step: the form's +/- step. set_by: not a user option; what sets it.
    """
    meta = dict(help=help, lo=lo, hi=hi, lo_open=lo_open, limit=limit, choices=choices, cli=cli,
                label=label, newcomer_help=newcomer_help or help, step=step, set_by=set_by)
    return field(default=default, metadata=meta)


def is_option(f: Field) -> bool:
    """True for a field a user sets (a CLI option and a form control); False for input_shape."""
    return f.metadata.get("set_by") is None


def cli_flag(f: Field) -> str:
    """The field's command-line option: '--latent-dim', or its declared name ('--warmup')."""
    return f.metadata["cli"] or "--" + f.name.replace("_", "-")


def option_fields() -> list[Field]:
    """Every ModelConfig and TrainConfig field a user sets, in declaration order."""
    return [f for cls in (ModelConfig, TrainConfig) for f in fields(cls) if is_option(f)]


def configs_from_options(values: Mapping[str, Any],
                         input_shape: tuple[int, int, int]) -> tuple[ModelConfig, TrainConfig]:
    """The configs from option values keyed by field name (the CLI's parsed options, the form's values).

    input_shape comes from the data; keys that are not option fields (--data, --out, ...) are ignored.
    """
    def of(cls: type) -> dict[str, Any]:
        return {f.name: values[f.name] for f in fields(cls) if is_option(f)}

    return ModelConfig(input_shape=input_shape, **of(ModelConfig)), TrainConfig(**of(TrainConfig))


def _field(name: str) -> Field:
    return next(f for cls in (ModelConfig, TrainConfig) for f in fields(cls) if f.name == name)


def option(name: str) -> str:
    """'latent_dim (--latent-dim)': a config field with the CLI option that sets it."""
    f = _field(name)
    return f"{name} ({cli_flag(f) if is_option(f) else f.metadata['set_by']})"


def parse_ints(text: str) -> tuple[int, ...]:
    """'512,256' (or '512 256') -> (512, 256); ValueError when an entry is not a whole number or none is given."""
    try:
        vals = tuple(int(v) for v in str(text).replace(",", " ").split())
    except ValueError:
        raise ValueError(f"expected whole numbers separated by commas, like '400' or '512,256', got {text!r}") from None
    if not vals:
        raise ValueError("expected at least one whole number, like '400' or '512,256', got nothing")
    return vals


def ints_text(values: tuple[int, ...]) -> str:
    """(512, 256) -> '512,256': how a tuple field is written on a command line or in a text box."""
    return ",".join(str(v) for v in values)


def _int(name: str, value: Any, lo: int | None, limit: str | None = None, hi: int | None = None) -> int:
    """An integer within [lo, hi] (and within the named limit); bools, floats with a fraction, NaN refused."""
    if isinstance(value, float) and value.is_integer():  # 3.0 from JSON or a form; not 3.5, NaN or Inf
        value = int(value)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError
        v = int(value)
    except ValueError:
        raise ValueError(f"{option(name)} must be an integer, got {value!r}") from None
    if lo is not None and v < lo:
        raise ValueError(f"{option(name)} must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ValueError(f"{option(name)} must be <= {hi}, got {v}")
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


def _tuple_of_ints(name: str, value: Any, lo: int | None, limit: str | None = None) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{option(name)} must be a sequence of integers, got {value!r}")
    out = tuple(_int(name, v, lo, limit) for v in value)
    if limit is not None:
        _limits.check(f"the number of layers in {option(name)}", len(out), "max_layers")
    return out


def _checked(f: Field, value: Any) -> Any:
    """The value of field f, checked against its metadata and normalised (3.0 -> 3, a list -> a tuple)."""
    m, kind = f.metadata, type(f.default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{option(f.name)} must be true or false, got {value!r}")
        return value
    if kind is int:
        return _int(f.name, value, m["lo"], m["limit"], m["hi"])
    if kind is float:
        return _float(f.name, value, lo=m["lo"], lo_open=m["lo_open"], hi=m["hi"])
    if kind is tuple:
        return _tuple_of_ints(f.name, value, m["lo"], m["limit"])
    if m["choices"] is not None and value not in m["choices"]:
        raise ValueError(f"{option(f.name)} must be one of {m['choices']}, got {value!r}")
    return value


def _check_fields(cfg: Any) -> None:
    """Check every field of a (frozen) config by its metadata, in declaration order, storing the normalised value."""
    for f in fields(cfg):
        object.__setattr__(cfg, f.name, _checked(f, getattr(cfg, f.name)))


@dataclass(frozen=True)
class ModelConfig:
    """What it takes to rebuild a VAE (stored in config.json)."""

    # (C, H, W) of the data it was trained on
    input_shape: tuple[int, int, int] = opt((1, 28, 28), lo=1, set_by="the data's shape",
                                            help="(C, H, W) of the data, read from the data")
    # 20 is the classic MNIST size (Kingma & Welling 2014)
    latent_dim: int = opt(
        20, lo=1, limit="max_latent", label="Latent size D", help="number of latent dimensions D",
        newcomer_help="How many numbers the code z has (D). 2 lets you see the whole space at once; more keeps "
                      "more detail. The KL heatmap shows which dimensions the model really uses.")
    arch: str = opt(
        "mlp", choices=ARCHS, label="Architecture", help="encoder/decoder type",
        newcomer_help="mlp: fully connected layers; fast, fine for digits. conv: stride-2 convolutions that look "
                      "at neighbouring pixels together; slower on a CPU; each halves height and width, so with "
                      "two layers both must divide by 4.")
    # MLP hidden sizes; for conv, the fully connected layer(s)
    hidden: tuple[int, ...] = opt(
        (400,), lo=1, limit="max_hidden", label="Hidden sizes",
        help="hidden layer sizes, e.g. '400' or '512,256' (conv: the fully connected layers)",
        newcomer_help="Sizes of the hidden layers, separated by commas, e.g. 400 or 512,256. Bigger learns more "
                      "and trains slower. For conv: the fully connected layers after the convolutions.")
    # one stride-2 conv per entry; H, W must halve that often
    conv_channels: tuple[int, ...] = opt(
        (32, 64), lo=1, limit="max_hidden", label="Conv channels", help="conv: channels of each stride-2 layer",
        newcomer_help="conv only: the channels of each convolution, separated by commas, e.g. 32,64. Each layer "
                      "halves height and width, so the image's sides must divide by 2 once per layer.")
    likelihood: str = opt(
        "bernoulli", choices=LIKELIHOODS, label="Likelihood p(x|z)", help="decoder distribution p(x|z)",
        newcomer_help="How the decoder scores a rebuilt image. bernoulli: for (nearly) black-and-white pixels. "
                      "gaussian: for grey or colour pixels; squared error with a spread s.")
    # fixed std s of p(x|z) for "gaussian" (beta_equiv = 2 s^2 vs SSE)
    gaussian_scale: float = opt(
        0.1, lo=0, lo_open=True, step=0.01, label="Gaussian scale s",
        help="gaussian: std s of p(x|z) (equivalent to beta = 2 s^2 on summed squared error)",
        newcomer_help="Gaussian only: the spread s of the pixel noise. A smaller s makes reconstruction count "
                      "more against the KL term (a fixed-s Gaussian equals beta = 2 s^2 on summed squared error).")
    # learn one shared log-scale for "gaussian" instead of fixing it
    learn_scale: bool = opt(
        False, label="Learn the scale s", help="gaussian: learn s instead of fixing it",
        newcomer_help="Gaussian only: let the model learn the spread s (one value for every pixel), starting "
                      "from the scale above, instead of keeping it fixed.")

    def __post_init__(self) -> None:
        _check_fields(self)
        shape = self.input_shape
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (C, H, W), got {shape!r}")
        _limits.check("one image (input_shape, C x H x W values)", shape[0] * shape[1] * shape[2], "max_image_pixels")
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

    epochs: int = opt(
        30, lo=1, limit="max_epochs", label="Epochs", help="passes over the training split",
        newcomer_help="Passes over the training split (the data not held out to evaluate). More fits better "
                      "and takes longer: the page shows the time left.")
    batch_size: int = opt(  # the pytorch/examples VAE default
        128, lo=1, limit="max_batch", step=32, label="Batch size", help="minibatch size",
        newcomer_help="Images per gradient step. 128 is the usual choice.")
    lr: float = opt(  # Adam, as in Kingma & Welling
        1e-3, lo=0, lo_open=True, step=1e-4, label="Learning rate", help="Adam learning rate",
        newcomer_help="Adam's step size; 0.001 is the standard. Too high and the loss blows up to NaN: training "
                      "then stops and keeps the last good epoch.")
    beta: float = opt(  # weight of KL at the end of any schedule; 1 = the true ELBO
        1.0, lo=0, step=0.5, label="beta (KL weight)", help="KL weight (1 = the ELBO; > 1 a beta-VAE)",
        newcomer_help="Weight of the KL term. 1 = the true VAE objective (the ELBO). Above 1 (a beta-VAE): "
                      "smoother, often more disentangled codes, blurrier images, more collapsed dimensions. "
                      "Below 1: sharper images, a less regular space.")
    kl_schedule: str = opt(  # "constant", "linear" (warm-up) or "cyclical" (Fu et al. 2019)
        "constant", choices=KL_SCHEDULES, label="KL schedule",
        help="constant beta, linear warm-up, or cyclical annealing (Fu et al. 2019)",
        newcomer_help="How the KL weight moves during training. constant: beta all along. linear: rise from "
                      "beta start (0) to beta over the warm-up, so the decoder learns to use the code before the "
                      "KL pressure arrives (helps against collapse). cyclical: repeat that rise M times (Fu et al. "
                      "2019).")
    warmup_fraction: float = opt(  # linear: fraction of training over which beta rises
        0.3, lo=0, lo_open=True, hi=1, cli="--warmup", step=0.05, label="Warm-up fraction (linear)",
        help="linear: fraction of training over which beta rises",
        newcomer_help="linear only: the fraction of training over which the KL weight rises from beta start "
                      "to beta.")
    beta_start: float = opt(  # linear: the weight beta rises from
        0.0, lo=0, step=0.1, label="beta start (linear)", help="linear: the KL weight the warm-up starts from",
        newcomer_help="linear only: the KL weight the warm-up starts from; 0 = no KL pressure at first.")
    cycles: int = opt(  # cyclical: number of cycles M (Fu et al. default)
        4, lo=1, limit="max_epochs", label="Cycles M (cyclical)", help="cyclical: number of cycles M",
        newcomer_help="cyclical only: how many times the KL weight rises from 0 to beta (M; 4 in Fu et al.).")
    ramp_fraction: float = opt(  # cyclical: fraction R of each cycle spent rising (Fu et al. default)
        0.5, lo=0, lo_open=True, hi=1, cli="--ramp", step=0.05, label="Ramp R (cyclical)",
        help="cyclical: fraction R of each cycle where beta rises",
        newcomer_help="cyclical only: the fraction R of each cycle spent rising; the rest of the cycle stays at "
                      "beta.")
    free_bits: float = opt(  # lambda, nats per dimension (Kingma et al. 2016); 0 = off
        0.0, lo=0, step=0.05, label="Free bits lambda (nats/dim)",
        help="free bits lambda, nats per dimension (0 = off)",
        newcomer_help="Nats per dimension that come free (lambda): a dimension's KL below this is not penalised "
                      "(Kingma et al. 2016), so the model has no reason to switch a dimension off. 0 = off; try "
                      "0.1 to 0.5 when dimensions collapse.")
    eval_fraction: float = opt(  # held-out share of the data, evaluated every epoch
        0.2, lo=0, hi=0.99, step=0.05, label="Held-out fraction", help="share of the data held out for evaluation",
        newcomer_help="The share of the data kept out of training and scored after every epoch (the held-out "
                      "ELBO): 0.2 keeps one image in five aside.")
    seed: int = opt(  # numpy's and torch's seeds both take up to 2**32 - 1
        0, lo=0, hi=2**32 - 1, label="Seed", help="seed for the split, initialisation and batches",
        newcomer_help="Fixes the data split, the initial weights and the batch order: same seed and settings, "
                      "same run.")
    bf16: bool = opt(  # opt-in bf16 autocast: same loss; faster only with native bf16 (AVX512-BF16/AMX)
        False, label="bf16 autocast",
        help="bfloat16 autocast: faster only on CPUs with native bf16 (AVX512-BF16/AMX); emulated and slower "
             "on others (see benchmarks/train_throughput.py)",
        newcomer_help="Compute in bfloat16: the same loss, faster only on CPUs with native bf16 (AVX512-BF16 or "
                      "AMX); emulated and slower on others. Leave it off if unsure.")
    record_codes: int = opt(  # on by default: one encoder pass over <= 1,000 points per epoch, S x D x 4 bytes
        500, lo=0, hi=1000, label="Record codes (points)",
        help="record the codes of this many held-out points before training and after every epoch, into "
             "epoch_codes.npz, to replay the latent map forming (0 = off; at most 1000)",
        newcomer_help="Follow this many held-out images through training: their codes are saved before training "
                      "and after every epoch, so the finished run can replay its map forming, epoch by epoch. "
                      "0 turns it off; it costs one encoder pass over these images per epoch.")

    def __post_init__(self) -> None:
        _check_fields(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
