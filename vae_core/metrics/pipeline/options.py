"""Every diagnose option, declared once: its default, its checks, its CLI option and its app control.

Like the training options (`vae_core.config`), each field of `DiagnoseOptions` carries in its metadata
(`dopt(...)`) what the checks, `python -m vae_core diagnose` (`vae_core.cli`) and the app's Diagnose,
Blurriness and Compare pages (`explorer.diagnose_ui.option_ui`) need: the default, the bounds, whether
"auto" (chosen by the time budget) or None is allowed, the limit, the CLI option names, the help text,
the control's label, step and choices. `diagnose(model, data, **options.kwargs())` takes the fields
as its keyword arguments, and checks them with `checked` (the same checks the CLI runs).

Adding a diagnose option: add one field here, e.g. ``mi_batch: int | str = dopt(AUTO, auto=True, lo=2,
cli=("--mi-batch",), label="MI batch", help="...")``, then use it in `diagnose` (a keyword of the
same name). It is then checked, a `diagnose` CLI option and, with `ui=True`, a control the pages can
draw with `option_ui`; tests/test_diagnose_options.py checks all of it.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any

from ... import limits as _limits
from .budget import AUTO, DEFAULT_BUDGET_S, MIN_K, TARGET_K


def dopt(default: Any, *, help: str, cli: tuple[str, ...], kind: type, lo: float | None = None,
         lo_open: bool = False, hi: float | None = None, auto: bool = False, none: str | None = None,
         limit: str | None = None, label: str | None = None, ui_help: str | None = None,
         step: float | None = None, ui_lo: float | None = None, choices: tuple[Any, ...] | None = None,
         ui: bool = True, metavar: str | None = None) -> Any:
    """A diagnose option with everything its checks, the CLI and the app's controls need.

    kind: int or float (the value's type when it is a number). auto: "auto" (AUTO) is allowed, chosen
    by the time budget. none: None is allowed, and what it means. lo, hi, lo_open: bounds. limit: a
    `limits.Limits` field the value must not exceed. cli: the option's names (the first is its name in
    messages). help: the CLI's --help line; ui_help: the control's longer help (else help). label,
    step, choices: the app's control (choices: a select box over them); ui_lo: the control's least value
    where it is not lo (an open bound). metavar: the value's name in --help (else from the option's name). ui: False for an option the
    app sets itself (split_seed: always the run's).
    """
    meta = dict(help=help, cli=cli, kind=kind, lo=lo, lo_open=lo_open, hi=hi, auto=auto, none=none, limit=limit,
                label=label, ui_help=ui_help or help, step=step, ui_lo=ui_lo, choices=choices, ui=ui, metavar=metavar)
    return field(default=default, metadata=meta)


def _name(f: Field) -> str:
    return f"{f.name} ({f.metadata['cli'][0]})"


def checked(name: str, value: Any) -> Any:
    """The value of option `name`, checked against its declaration (3.0 -> 3 for an int option); a
    ValueError names the option and its CLI flag ('budget_s (--budget) must be ...')."""
    f = option_field(name)
    m = f.metadata
    if value is None:
        if m["none"] is None:
            raise ValueError(f"{_name(f)} must be given, got None")
        return None
    if isinstance(value, str) and value == AUTO:
        if not m["auto"]:
            raise ValueError(f"{_name(f)} cannot be {AUTO!r}")
        return AUTO
    allowed = "a whole number" if m["kind"] is int else "a number"
    if m["auto"]:
        allowed += f" or {AUTO!r}"
    try:
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
            raise ValueError
        v = float(value)
        if m["kind"] is int:
            if not v.is_integer():
                raise ValueError
            v = int(v)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{_name(f)} must be {allowed}, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{_name(f)} must be a finite number, got {value!r}")
    lo, hi = m["lo"], m["hi"]
    if lo is not None and (v <= lo if m["lo_open"] else v < lo):
        raise ValueError(f"{_name(f)} must be {'>' if m['lo_open'] else '>='} {lo:g}, got {v:g}")
    if hi is not None and v > hi:
        raise ValueError(f"{_name(f)} must be <= {hi:g}, got {v:g}")
    if m["limit"] is not None:
        _limits.check(_name(f), v, m["limit"])
    return v


@dataclass(frozen=True)
class DiagnoseOptions:
    """The options of one diagnose report, checked on construction (docs/contracts.md, "CLI")."""

    n_points: int | str = dopt(
        AUTO, kind=int, lo=1, auto=True, none="every held-out point", cli=("--n-points", "--points"), label="Evaluation points", step=100,
        help="evaluate every figure on at most this many held-out points (auto: under --budget, the encoder-only "
             "figures use every held-out point and the IWAE and blur as many as fit); each figure is printed "
             "with its standard error over its points",
        ui_help="Held-out points every figure is scored on (at most the held-out split).")
    iwae_k: int | str = dopt(
        AUTO, kind=int, lo=1, auto=True, limit="max_iwae_k", cli=("--iwae-k",), label="IWAE samples k", step=50,
        choices=(AUTO, MIN_K, TARGET_K, 1000),
        help=f"importance samples per point for the IWAE bound (auto: chosen by --budget, up to {TARGET_K})",
        ui_help=f"Importance samples per point for the IWAE bound (Burda et al. 2016). auto: the time budget "
                f"chooses k, up to {TARGET_K}, lowered before the points (more points buy more precision, larger "
                "k a tighter bound). A given k is used as given: the budget then leaves room for fewer points "
                "(k = 1000 on 1,000 points takes about a minute on this machine for a small model).")
    budget_s: float | None = dopt(
        DEFAULT_BUDGET_S, kind=float, lo=0, lo_open=True, hi=3600, none="no budget (the points and k given)",
        cli=("--budget",), label="Time budget (s)", step=10, ui_lo=1, metavar="SECONDS",
        help="time budget of the report in seconds (loading the model and data not included), a bound checked "
             "as the work goes: a short pilot times the model and k not given is chosen (lowered before the "
             f"points: more points buy more precision; floor k = {MIN_K}); with the points not given, the KL, "
             "collapse, MI and aggregate figures use every held-out point (at least 2,000 where they exist) and "
             "the IWAE and blur score points in a seeded random order until the time is spent (a model that "
             "slows down stops early, on an unbiased subset); the report says what each figure used, what was "
             "cut and why",
        ui_help="The most the report may take: a bound, checked as the work goes. The encoder-only figures (KL, "
                "collapse, mutual information, aggregate posterior) use every held-out point (at least 2,000 "
                "where the data has them); the decoder-heavy ones (IWAE, ELBO, blur) score as many as fit and "
                "stop in time. Fewer points mean wider error bars (the ± beside each figure); the caption under "
                "the summary says what each figure used and why.")
    seed: int = dopt(0, kind=int, lo=0, cli=("--seed",), label="Seed", help="seed for the Monte Carlo samples",
                     ui_help="Seeds the Monte Carlo samples (and, on Compare, the prior codes); the points are "
                             "the run's held-out split whatever the seed.")
    split_seed: int | None = dopt(
        None, kind=int, lo=0, none="the run's training seed (config.json); 0 for a model file", ui=False,
        cli=("--split-seed",),
        help="seed of the train/eval split; default: the run's training seed (config.json), so the report scores "
             "its held-out points; 0 for TorchScript. The run's --n and dataset are read from config.json too: "
             "the split is rebuilt as training made it")

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, checked(f.name, getattr(self, f.name)))

    def kwargs(self, run_split_seed: int = 0) -> dict[str, Any]:
        """The options as `diagnose`'s keyword arguments; split_seed None becomes run_split_seed (the run's)."""
        out = asdict(self)
        if out["split_seed"] is None:
            out["split_seed"] = run_split_seed
        return out


def option_fields() -> tuple[Field, ...]:
    """Every diagnose option, in declaration order."""
    return fields(DiagnoseOptions)


def option_field(name: str) -> Field:
    """The declaration of option `name` (KeyError for one that is not declared)."""
    return DiagnoseOptions.__dataclass_fields__[name]


def default(name: str) -> Any:
    """Option `name`'s declared default."""
    return option_field(name).default
