"""`diagnose(model, data)`: every diagnostic in one report (DESIGN.md "Diagnose report keys").

Units: nats per data point; every number is a mean over the evaluation points (the run's own eval
split, rebuilt as training made it: `eval_points`, or a seeded subset of `n_points` of it).
Reductions: sums over pixels and latent dims, the mean over points taken once. Every Monte Carlo
figure carries `<key>_se`, sd(per-point values, ddof=1) / sqrt(N); a Gaussian decoder's figures
say which scale they used (`gaussian_scale`, `gaussian_scale_source`; see iwae.py). The data is
encoded once; mu, logvar and one posterior sample per point are shared by the parts. Definitions: shared/SCIENCE.md and the
docstring of each module in this package.

Time and memory (SCIENCE.md, "Precision of Monte Carlo figures"): with n_points and/or iwae_k = AUTO,
a short pilot times the model (`_pilot`) and `choose_settings` picks the points and k that fit the
time budget (k lowered first, then the points, floors MIN_POINTS and MIN_K); the report says what it
used, who chose it (`chosen_by`) and why, with the measured `seconds`. Every model call holds a
bounded number of images (`iwae.row_limit`, or under a budget about CALL_S of work), the IWAE
logsumexp is accumulated across chunks, and the blur statistics are accumulated chunk by chunk
(`_BlurAccumulator`), so no (k x N) or (N, C, H, W) set of decoded images is ever held.
"""
from __future__ import annotations

import importlib
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..data import Dataset, check_fits
from ._common import check_batch_size, encode_all, model_device
from .aggregate import HOLE_HIGH, HOLE_LOW, AggregateStats, _aggregate_core
from .blur import KEYS as BLUR_KEYS
from .blur import BlurStats, _images, laplacian_variance, radial_spectrum
from .collapse import (ACTIVE_THRESHOLD, KL_THRESHOLD, PRIOR_SIGMA2_THRESHOLD, TRAVERSAL, CollapseStats,
                       _collapse_stats, _decoder_sensitivity)
from .iwae import (MIN_SCALE2, STORE_BUDGET, Bounds, _check_k, _log_weight_parts, _point_bounds,
                   calibrated_recon_nll, decoder_scale, row_limit)
from .mig import MIGResult, _mig_core
from .mutual_info import MutualInfo, _mi_terms, _mutual_info_core

EVAL_FRACTION = 0.2  # the training code's held-out share; diagnose reads the same split
SPRITES_DEFAULT_N = 10_000  # load_dataset("sprites") without n generates this many
SHARP_ENOUGH = 0.5  # Laplacian ratio below this is called blurry in the summary

# progress(part, fraction_done) -> True to cancel
Progress = Callable[[str, float], "bool | None"]


class DiagnoseCancelled(Exception):
    """Raised when the progress callback returns True."""


def _jsonable(v: Any) -> Any:
    """Plain Python values for json.dumps(allow_nan=False): numpy -> float/int/list, NaN/Inf -> None."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, torch.Tensor):
        return _jsonable(v.detach().cpu().tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    if v is None or isinstance(v, str):
        return v
    raise TypeError(f"cannot put a {type(v).__name__} into the report")


def _dims(dims: list[int]) -> str:
    return ", ".join(map(str, dims)) if dims else "none"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass
class Report:
    """The diagnose report: contract values as attributes, detail objects beside them."""

    # contract values (DESIGN.md), nats per data point, means over the evaluation points
    elbo: float
    recon_nll: float
    kl: float
    kl_per_dim: list[float]
    active_units: int
    collapsed_dims: list[int]
    mutual_info: float
    mutual_info_max: float
    iwae: float
    iwae_k: int
    variance_law: list[float]
    blur: dict[str, Any]
    mig: float | None
    # context
    dataset: str
    n_points: int
    seed: int
    split_seed: int  # which held-out split (the run's training seed)
    likelihood: str
    latent_dim: int
    collapse: CollapseStats
    mutual_info_detail: MutualInfo
    aggregate: AggregateStats
    blur_detail: BlurStats
    mig_detail: MIGResult | None = None
    factor_names: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part
    # standard errors over points: sd(per-point values, ddof=1) / sqrt(N) (NaN -> None for N < 2)
    elbo_se: float = float("nan")
    recon_nll_se: float = float("nan")
    kl_se: float = float("nan")
    iwae_se: float = float("nan")
    mutual_info_se: float = float("nan")
    # Gaussian decoders: the scale elbo/recon_nll/iwae used, and the calibrated figures beside
    gaussian_scale: float | None = None
    gaussian_scale_source: str | None = None  # "declared" | "trained" | "calibrated"
    gaussian_scale_calibrated: float | None = None
    calibrated: Bounds | None = None  # at the calibrated scale, for a declared or trained scale
    # the split the evaluation points came from (the run's --n: its pool before splitting)
    train_n: int | None = None
    # the time budget: who chose the points and k ("budget": a pilot timed the model; "given"), why,
    # and the measured wall time of diagnose (its clock) beside the pilot's prediction
    budget_s: float | None = None
    chosen_by: str = "given"
    n_points_chosen_by: str = "given"
    iwae_k_chosen_by: str = "given"
    choice: str = ""
    seconds: float = float("nan")
    predicted_seconds: float | None = None
    over_budget: bool = False
    pilot: "Pilot | None" = None
    rows_per_call: int | None = None  # images per model call (memory and progress granularity)

    @property
    def settings_line(self) -> str:
        """One line: the points and k used, who chose them, the budget and the time taken."""
        who = ("chosen by the time budget" if self.chosen_by == "budget" else "as given") + (
            f" ({self.budget_s:g} s)" if self.budget_s is not None else "")
        took = f"; took {self.seconds:.1f} s" if math.isfinite(self.seconds) else ""
        over = "; OVER the budget" if self.over_budget else ""
        return f"  Settings: {self.n_points} points, k = {self.iwae_k}, {who}{took}{over}"

    @property
    def summary(self) -> str:
        """A few plain-language sentences for a newcomer."""
        d = self.latent_dim
        c = self.collapse
        s = c.headline()  # the one collapse vocabulary (collapse.classify_dims)
        ignored = c.decoder_ignored_dims
        if ignored:
            s.append(f"Dims {_dims(ignored)} carry KL but the decoder barely reacts to them.")
        lap_r = self.blur["reconstructions"]["laplacian_ratio"]
        lap_s = self.blur["samples"]["laplacian_ratio"]
        if lap_r is not None and lap_s is not None:
            word = "blurrier than" if min(lap_r, lap_s) < SHARP_ENOUGH else "about as sharp as"
            s.append(f"Reconstructions keep {lap_r:.0%} and prior samples {lap_s:.0%} of the data's fine "
                     f"detail (Laplacian sharpness ratio; 100% = as sharp as the data): they are {word} the data.")
        off = [j for j in self.aggregate.off_prior_dims if j not in self.collapsed_dims]
        if off:
            s.append(f"In {len(off)} of {_n(d, 'dim')} the encoded data do not fill the prior N(0, 1) "
                     f"(Var(mu) + E[sigma^2] outside {HOLE_LOW}-{HOLE_HIGH}): prior samples there fall in "
                     "'holes' where the decoder saw no data.")
        else:
            s.append(f"The encoded data spread like the prior in every dimension (Var(mu) + E[sigma^2] "
                     f"within {HOLE_LOW}-{HOLE_HIGH}), so prior samples land where the decoder was trained.")
        return " ".join(s)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the contract keys plus detail; plain floats/ints/lists, None for n/a."""
        c, a, b, mi = self.collapse, self.aggregate, self.blur_detail, self.mutual_info_detail
        out: dict[str, Any] = {
            "elbo": self.elbo, "recon_nll": self.recon_nll, "kl": self.kl,
            "kl_per_dim": self.kl_per_dim, "active_units": self.active_units,
            "collapsed_dims": self.collapsed_dims, "partly_collapsed_dims": c.partly_collapsed_dims,
            "mutual_info": self.mutual_info,
            "mutual_info_max": self.mutual_info_max, "iwae": self.iwae, "iwae_k": self.iwae_k,
            "variance_law": self.variance_law, "blur": self.blur, "mig": self.mig,
            "units": "nats per data point, means over the evaluation points",
            "dataset": self.dataset, "n_points": self.n_points, "seed": self.seed, "split_seed": self.split_seed,
            "likelihood": self.likelihood, "latent_dim": self.latent_dim,
            "collapse": {
                "activity": c.activity, "mean_sigma2": c.mean_sigma2,
                "active_dims": [j for j in range(self.latent_dim) if c.active[j]],
                "low_kl_dims": c.collapsed_dims, "prior_like_dims": c.prior_like_dims,
                "decoder_ignored_dims": c.decoder_ignored_dims, "classes": c.classes,
                "class_counts": c.class_counts, "verdicts": c.verdicts,
                "thresholds": {"activity": ACTIVE_THRESHOLD, "kl": KL_THRESHOLD,
                               "mean_sigma2": PRIOR_SIGMA2_THRESHOLD},
                "rules": "active: Var_x(mu_j) > 0.01 (population variance, Burda et al. 2016); "
                         "collapsed: KL_j < 0.01 nats; prior-like: mean sigma_j^2 > 0.8 (Asperti)",
            },
            "sensitivity": c.sensitivity,
            "sensitivity_traversal": list(TRAVERSAL),
            "mutual_info_unclipped": mi.unclipped, "mutual_info_batch_size": mi.batch_size,
            "aggregate": {"mean": a.sample_mean, "var": a.sample_var, "hist_edges": a.hist_edges,
                          "hist_counts": a.hist_counts, "hist_density": a.hist_density,
                          "prior_density": a.prior_density, "off_prior_dims": a.off_prior_dims},
            "spectra": {"frequencies": b.frequencies, "data": b.spectrum_data,
                        "reconstructions": b.spectrum_reconstructions, "samples": b.spectrum_samples},
            "notes": self.notes, "timings": self.timings, "summary": self.summary,
            "elbo_se": self.elbo_se, "recon_nll_se": self.recon_nll_se, "kl_se": self.kl_se,
            "iwae_se": self.iwae_se, "mutual_info_se": self.mutual_info_se,
            "standard_errors": "sd(per-point values, ddof=1) / sqrt(N) over the N evaluation points; for "
                               "iwae the per-point L_k; for mutual_info the per-point terms of its estimator "
                               "over the points it used",
            "gaussian_scale": self.gaussian_scale, "gaussian_scale_source": self.gaussian_scale_source,
            "gaussian_scale_calibrated": self.gaussian_scale_calibrated, "train_n": self.train_n,
        }
        out.update(budget_s=self.budget_s, chosen_by=self.chosen_by, n_points_chosen_by=self.n_points_chosen_by,
                   iwae_k_chosen_by=self.iwae_k_chosen_by, choice=self.choice, seconds=self.seconds,
                   predicted_seconds=self.predicted_seconds, over_budget=self.over_budget,
                   pilot=None if self.pilot is None else self.pilot.to_dict(), rows_per_call=self.rows_per_call)
        if self.calibrated is not None:
            cal = self.calibrated
            out.update(elbo_calibrated=cal.elbo, elbo_calibrated_se=cal.elbo_se,
                       recon_nll_calibrated=cal.recon_nll, recon_nll_calibrated_se=cal.recon_nll_se,
                       iwae_calibrated=cal.iwae, iwae_calibrated_se=cal.iwae_se)
        if self.mig_detail is not None:
            out.update(mig_matrix=self.mig_detail.mi_matrix, mig_factor_names=list(self.factor_names),
                       mig_factor_entropy=self.mig_detail.entropies, mig_gaps=self.mig_detail.gaps)
        return _jsonable(out)

    def _scale_lines(self, pm: Callable[[float, float], str]) -> list[str]:
        """Table lines saying which Gaussian scale the figures used, and the calibrated ones beside."""
        if self.gaussian_scale_source is None:
            return []
        lines = [f"  Gaussian decoder scale s = {self.gaussian_scale:.4g} ({self.gaussian_scale_source}); "
                 f"calibrated s = {self.gaussian_scale_calibrated:.4g}"]
        if self.calibrated is not None:
            cal = self.calibrated
            lines += [f"  ELBO at the calibrated s       {pm(cal.elbo, cal.elbo_se)}",
                      f"  {f'IWAE at the calibrated s':<31s}{pm(cal.iwae, cal.iwae_se)}"]
        return lines

    def format_table(self) -> str:
        """A multi-line plain-text table for the CLI."""
        def num(v: float | None, fmt: str = "{:10.3f}") -> str:
            return "       n/a" if v is None else fmt.format(v)

        def pm(v: float, se: float) -> str:  # "-111.880 ± 0.950": the figure and its standard error
            return num(v) + ("" if se is None or not math.isfinite(se) else f" ± {se:.3f}")

        c, a = self.collapse, self.aggregate
        lines = [f"Diagnose: {self.dataset}, {self.n_points} evaluation points, latent dim {self.latent_dim}, "
                 f"{self.likelihood} decoder (nats per data point)",
                 self.settings_line,
                 f"  ELBO (higher is better)        {pm(self.elbo, self.elbo_se)}",
                 f"    reconstruction NLL           {pm(self.recon_nll, self.recon_nll_se)}",
                 f"    KL                           {pm(self.kl, self.kl_se)}",
                 f"  {f'IWAE bound (k={self.iwae_k})':<31s}{pm(self.iwae, self.iwae_se)}",
                 f"  Mutual information I(x; z)     {pm(self.mutual_info, self.mutual_info_se)}   (ceiling log B = "
                 f"{self.mutual_info_max:.3f})",
                 f"  Active units (Var mu > {ACTIVE_THRESHOLD})   {self.active_units:10d} / {self.latent_dim}",
                 f"  Collapsed dims (KL < {KL_THRESHOLD})     {_dims(self.collapsed_dims)}",
                 f"  MIG                            {num(self.mig)}",
                 "  (± one standard error over the evaluation points)",
                 *self._scale_lines(pm),
                 "",
                 f"  Blur vs data            {'Laplacian ratio':>16s} {'variance loss':>14s} {'spectrum ratio':>15s}"]
        for part in ("reconstructions", "samples"):
            v = self.blur[part]
            lines.append(f"    {part:<21s} {num(v['laplacian_ratio'], '{:16.3f}'):>16s} "
                         f"{num(v['variance_loss'], '{:14.4f}'):>14s} {num(v['spectrum_ratio'], '{:15.3f}'):>15s}")
        lines += ["", "  dim       KL   Var(mu)  E[sig^2]  var.law   sensit.  flags"]
        sens = c.sensitivity if c.sensitivity is not None else np.full(self.latent_dim, np.nan)
        for j in range(self.latent_dim):
            flags = [name for name, on in (("collapsed", c.low_kl[j]), ("inactive", not c.active[j]),
                                           ("prior-like", c.prior_like[j]),
                                           ("ignored", j in c.decoder_ignored_dims)) if on]
            lines.append(f"  {j:3d} {c.kl_per_dim[j]:8.3f} {c.activity[j]:9.3f} {c.mean_sigma2[j]:9.3f} "
                         f"{a.variance_law[j]:8.3f} {sens[j]:9.4f}  {' '.join(flags)}")
        lines += ["", *("  note: " + n for n in self.notes), "", self.summary]
        return "\n".join(lines)


# --- the time budget: a pilot times the model, then the points and k are chosen to fit ---------

AUTO = "auto"  # n_points / iwae_k chosen by the time budget
DEFAULT_BUDGET_S = 60.0  # seconds for the whole report (CLI --budget, the Diagnose page's control)
TARGET_POINTS, TARGET_K = 1000, 100  # the full report; a budget only lowers them
MIN_POINTS, MIN_K = 100, 10  # floors kept where possible; a note says when even they exceed the budget
SAFETY = 0.9  # plan for this share of the time left after the pilot
CALL_S = 0.5  # aim of one model call under a budget: the progress moves at least every ~2 s
PILOT_POINTS = 4  # points the pilot encodes, decodes and scores
PILOT_STEP_S = 0.25  # the pilot's IWAE step doubles its samples until one call takes this long
PILOT_MAX_SAMPLES = 256
PARTS = ("encode", "iwae", "collapse", "mutual_info", "aggregate", "blur", "mig")


@dataclass(frozen=True)
class Costs:
    """Seconds per unit of work, measured by the pilot (or relative weights for progress)."""

    encode: float  # per point
    decode: float  # per image (reconstructions, prior samples, traversals)
    iwae: float  # per point and importance sample: decode + log p(x|z) + log-prior ratio
    blur: float  # per image, the blur statistics alone (model excluded)
    mi: float  # per element of the mutual information's (B, B, D) pairwise terms


# relative weights when no pilot ran (the settings were given): decoded images dominate
_ROW_WEIGHTS = Costs(encode=0.5, decode=1.0, iwae=1.0, blur=0.1, mi=1e-4)


@dataclass(frozen=True)
class Pilot:
    """What the pilot measured: per-unit costs, its own time, and the images per model call it chose."""

    costs: Costs
    seconds: float
    rows_per_call: int
    latent_dim: int
    points: int  # points it encoded and decoded
    samples: int  # importance samples per point of its last (timed) IWAE step

    def to_dict(self) -> dict[str, Any]:
        c = self.costs
        return {"seconds": self.seconds, "points": self.points, "iwae_samples": self.samples,
                "encode_s_per_point": c.encode, "decode_s_per_image": c.decode,
                "iwae_s_per_sample": c.iwae, "blur_s_per_image": c.blur, "mi_s_per_element": c.mi,
                "rows_per_call": self.rows_per_call}


@dataclass(frozen=True)
class Choice:
    """The points and k a report uses, its predicted seconds (after the pilot), and why."""

    n_points: int
    iwae_k: int
    predicted_s: float
    over_budget: bool
    reason: str


def predict(costs: Costs, n: int, k: int, *, latent_dim: int, batch_size: int = 500, gaussian: bool = False,
            store_budget: int = STORE_BUDGET) -> dict[str, float]:
    """Predicted seconds per part of a report on n points with k samples (aggregate and mig: 0).

    iwae: n k samples (twice for a Gaussian decoder past store_budget, which draws them again);
    collapse: the 1 + D x len(TRAVERSAL) decoded traversal images; mutual_info: its whole batches
    of B = min(batch_size, n) points, B x B x D terms each; blur: n reconstructions and n prior
    samples decoded, and the statistics of those and of the n data images.
    """
    passes = 2 if gaussian and k * n > store_budget else 1
    b = max(1, min(batch_size, n))
    return {"encode": n * costs.encode, "iwae": passes * n * k * costs.iwae,
            "collapse": (1 + latent_dim * len(TRAVERSAL)) * costs.decode,
            "mutual_info": (n // b) * b * b * latent_dim * costs.mi, "aggregate": 0.0,
            "blur": 2 * n * costs.decode + 3 * n * costs.blur, "mig": 0.0}


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """The largest v in [lo, hi] with ok(v), for ok true up to some value then false; None if not ok(lo)."""
    if lo > hi or not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def choose_settings(costs: Costs, available_s: float, *, n_max: int, k_max: int, n_fixed: bool, k_fixed: bool,
                    latent_dim: int, batch_size: int = 500, gaussian: bool = False,
                    n_floor: int = MIN_POINTS, k_floor: int = MIN_K) -> Choice:
    """The points n <= n_max and samples k <= k_max whose predicted time fits SAFETY x available_s.

    n_max / k_max are the targets (the given values when fixed). In order: the targets if they fit;
    else k lowered (down to k_floor) keeping every point, since more points usually buy more
    precision than larger k (SCIENCE.md: the standard error falls as 1/sqrt(N), while k mostly
    tightens the bound); else k at its floor and the points lowered (down to n_floor); else the
    floors, over the budget (`over_budget`). A fixed value is never changed.
    """
    limit = SAFETY * available_s

    def total(n: int, k: int) -> float:
        return sum(predict(costs, n, k, latent_dim=latent_dim, batch_size=batch_size, gaussian=gaussian).values())

    nf, kf = min(n_floor, n_max), min(k_floor, k_max)
    full = total(n_max, k_max)
    if n_fixed and k_fixed:
        return Choice(n_max, k_max, full, full > available_s, "n_points and iwae_k were given")
    if full <= limit:
        return Choice(n_max, k_max, full, False, f"the full settings ({n_max} points, k = {k_max}) fit the budget")
    k = None if k_fixed else _largest(kf, k_max, lambda v: total(n_max, v) <= limit)
    if k is not None:
        return Choice(n_max, k, total(n_max, k), False,
                      f"the full settings ({n_max} points, k = {k_max}) would take about {full:.0f} s: k was lowered "
                      f"to keep every point, since more points buy more precision than larger k")
    k = k_max if k_fixed else kf
    n = None if n_fixed else _largest(nf, n_max, lambda v: total(v, k) <= limit)
    if n is not None:
        why = f"k = {k} was given" if k_fixed else f"k at its floor of {kf}"
        return Choice(n, k, total(n, k), False, f"the full settings ({n_max} points, k = {k_max}) would take about "
                      f"{full:.0f} s: {why}, the points were lowered to fit")
    n = n_max if n_fixed else nf
    t = total(n, k)
    return Choice(n, k, t, True, f"even the floor ({n} points, k = {k}) is predicted to take about {t:.0f} s of "
                  f"the {available_s:.0f} s left: it ran anyway, over the budget")


def _pow2_floor(v: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(v, 1.0)))))


@torch.inference_mode()
def _pilot(model: Any, x: torch.Tensor, *, clock: Callable[[], float], step: Callable[[str, float], None],
           rows_cap: int, seed: int = 0) -> Pilot:
    """Time the model on the first PILOT_POINTS points of x: encode, decode, the blur statistics,
    an IWAE step (samples doubled until one call takes PILOT_STEP_S) and the MI's pairwise terms.

    Every cost is measured on small batches, so per-call overheads make it an overestimate for
    fast models. Its own generator: the report's samples do not depend on it.
    """
    def now() -> float:  # CUDA runs asynchronously: wait for the device before reading the clock
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        return clock()

    t0 = now()
    step("pilot", 0.0)
    b = min(PILOT_POINTS, x.shape[0])
    xb = x[:b]
    for i in range(2):  # warm-up: a TorchScript model optimises itself on its first calls
        model.decode(model.encode(xb[:1])[0].float())
        step("pilot", 0.1 * (i + 1))
    ta = now()
    mu, logvar = model.encode(xb)
    enc = (now() - ta) / b
    step("pilot", 0.22)
    mu, logvar = mu.float(), logvar.float()
    d = int(mu.shape[1])
    ta = now()
    imgs = model.decode(mu).float()
    dec = (now() - ta) / b
    step("pilot", 0.25)
    reps = max(1, 32 // b)  # the statistics of 32 images: a per-image cost less swamped by per-call overhead
    ta = now()
    _BlurAccumulator().add(imgs.cpu().repeat(reps, 1, 1, 1))
    blur_s = (now() - ta) / (b * reps)
    gen = torch.Generator(device=mu.device).manual_seed(seed + 7919)
    kp = 1
    while True:
        step("pilot", 0.3 + 0.4 * math.log2(kp) / math.log2(PILOT_MAX_SAMPLES))
        ta = now()
        _log_weight_parts(model, xb, mu, logvar, kp, generator=gen, max_rows=b * kp)
        dt = now() - ta
        if dt >= PILOT_STEP_S or kp >= PILOT_MAX_SAMPLES or 2 * b * kp > rows_cap:
            break
        kp *= 2
    step("pilot", 0.8)
    ta = now()  # the last step once more, the faster kept: one pause of a loaded machine is not the model
    _log_weight_parts(model, xb, mu, logvar, kp, generator=gen, max_rows=b * kp)
    iw = min(dt, now() - ta) / (b * kp)
    m = 64
    r = torch.randn(m, d, generator=gen, dtype=torch.float64, device=mu.device)
    ta = now()
    _mi_terms(r, torch.zeros_like(r), eps=r)
    mi_s = (now() - ta) / (m * m * d)
    rows = max(1, min(rows_cap, _pow2_floor(CALL_S / iw) if iw > 0 else rows_cap))
    costs = Costs(encode=enc, decode=min(dec, iw) if iw > 0 else dec, iwae=iw, blur=blur_s, mi=mi_s)
    return Pilot(costs=costs, seconds=now() - t0, rows_per_call=rows, latent_dim=d, points=b, samples=kp)


class _BlurAccumulator:
    """The blur statistics of an image set given in chunks, never holding the set: per-pixel variance
    (chunk means and sums of squares merged, Chan et al.), the summed per-image Laplacian variance,
    and the summed radial spectrum; equal to blur.py's pixel_variance, laplacian_sharpness and
    radial_spectrum of the whole set up to float rounding."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None  # (C, H, W) float64
        self.m2: torch.Tensor | None = None  # sum of squared deviations from the mean
        self.lap = 0.0
        self.freqs: np.ndarray | None = None
        self.spec: np.ndarray | None = None  # sum over images of their radial spectra

    def add(self, images: torch.Tensor) -> None:
        t = _images(images, "images")
        m = int(t.shape[0])
        freqs, spec = radial_spectrum(t)  # float32 FFT, as blur.radial_spectrum of the whole set
        if self.freqs is not None and freqs.shape != self.freqs.shape:
            raise ValueError(f"images must have the data's H and W, got spectra of {freqs.shape} and "
                             f"{self.freqs.shape} bins")
        td = t.double()
        cm = td.mean(0)
        cm2 = (td - cm).pow(2).sum(0)
        if self.mean is None:
            self.mean, self.m2 = cm, cm2
        else:
            delta, tot = cm - self.mean, self.n + m
            self.mean = self.mean + delta * (m / tot)
            self.m2 = self.m2 + cm2 + delta.pow(2) * (self.n * m / tot)
        self.lap += float(laplacian_variance(td).sum())
        self.freqs, self.spec = freqs, spec * m if self.spec is None else self.spec + spec * m
        self.n += m

    def stats(self) -> tuple[float, float, np.ndarray, np.ndarray]:
        """(pixel variance, Laplacian sharpness, frequencies, radial spectrum) of every image added."""
        if self.n < 1:
            raise ValueError("no images were added")
        return float((self.m2 / self.n).mean()), self.lap / self.n, self.freqs, self.spec / self.n


def _blur_stats(data: _BlurAccumulator, recon: _BlurAccumulator, samples: _BlurAccumulator) -> BlurStats:
    """BlurStats (as blur._blur_core) from the three accumulated image sets."""
    pv, sharp, freqs, spec_d = data.stats()
    upper = freqs > 0.25

    def ratio(num: float, den: float) -> float | None:
        return num / den if den > 0 else None

    out = []
    for acc in (recon, samples):
        pv_m, sharp_m, f_m, spec_m = acc.stats()
        if f_m.shape != freqs.shape:
            raise ValueError(f"images must have the data's H and W, got spectra of {f_m.shape} and {freqs.shape} bins")
        out.append(({"laplacian_ratio": ratio(sharp_m, sharp), "variance_loss": pv - pv_m,
                     "spectrum_ratio": ratio(float(spec_m[upper].sum()), float(spec_d[upper].sum()))}, spec_m))
    (rec, spec_r), (smp, spec_s) = out
    return BlurStats(reconstructions=rec, samples=smp, frequencies=freqs, spectrum_data=spec_d,
                     spectrum_reconstructions=spec_r, spectrum_samples=spec_s)


class _Fractions:
    """Maps (part, fraction of that part) to the fraction of the whole report, from predicted seconds."""

    def __init__(self, parts: dict[str, float], start: float = 0.0):
        w = {p: max(float(parts.get(p, 0.0)), 0.0) for p in PARTS}
        tot = sum(w.values()) or 1.0
        self.span, at = {}, start
        for p in PARTS:
            share = (1.0 - start) * w[p] / tot
            self.span[p] = (at, share)
            at += share

    def __call__(self, part: str, frac: float) -> float:
        lo, share = self.span.get(part, (0.0, 0.0))
        return min(1.0, lo + share * min(max(frac, 0.0), 1.0))


def training_pool(data: Dataset, split_seed: int = 0, train_n: int | None = None,
                  train_dataset: str | None = None) -> Dataset:
    """The items a run split into train and eval, rebuilt from the whole dataset as `train` did:
    `load_dataset(data, n=train_n, seed=split_seed)` before `.split(eval_fraction, split_seed)`.

    For a file or a built-in image set, `--n` drew a seeded subset (the same draw as `load_dataset`);
    for `sprites` the pool is the one generated with (n or 10,000, seed), regenerated here when
    `data` is another draw. train_dataset is the run's dataset id (None: no run, nothing to rebuild
    beyond the subset).
    """
    if train_dataset == "sprites" and data.name == "sprites":
        from ..data.sprites import make_sprites

        count = train_n if train_n is not None else SPRITES_DEFAULT_N
        size = int(data.meta.get("size", data.shape[-1]))
        if len(data) == count and data.meta.get("seed") == split_seed and data.shape[-1] == size:
            return data
        return make_sprites(n=count, seed=split_seed, size=size)
    if train_n is not None and train_n < len(data):
        # exactly load_dataset's draw (vae_core/data/__init__.py): a sorted seeded choice
        idx = np.sort(np.random.default_rng(split_seed).choice(len(data), size=train_n, replace=False))
        data = data.subset(idx)
    return data


def eval_points(data: Dataset, n_points: int | None, split_seed: int = 0,
                eval_fraction: float = EVAL_FRACTION, train_n: int | None = None,
                train_dataset: str | None = None) -> Dataset:
    """The held-out points a report uses: the eval part of the run's split, or n_points of it.

    The run's split is `training_pool(data, split_seed, train_n, train_dataset).split(eval_fraction,
    split_seed)[1]`: split_seed, eval_fraction, train_n and train_dataset must be the run's (what
    `checkpoints.eval_split` reads from config.json, in that order, so `*eval_split(run)` passes
    them all), or the "held-out" points include training points. The Monte Carlo seed is separate.
    """
    ev = training_pool(data, split_seed, train_n, train_dataset).split(eval_fraction, split_seed)[1]
    return _some_points(ev, n_points, split_seed)


def _some_points(ev: Dataset, n_points: int | None, split_seed: int) -> Dataset:
    """n_points of the held-out points ev (all when None or more), as `eval_points` picks them."""
    if n_points is not None and n_points < len(ev):
        idx = np.sort(np.random.default_rng(split_seed).choice(len(ev), size=n_points, replace=False))
        ev = ev.subset(idx)
    return ev


def _import_in_background(module: str) -> threading.Thread | None:
    """Start importing `module` in a daemon thread (None when it is already imported)."""
    if module in sys.modules:
        return None

    def run() -> None:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - the caller's own import raises it where it is needed
            pass

    t = threading.Thread(target=run, name=f"import {module}", daemon=True)
    t.start()
    return t


def _budget_value(budget_s: float | None) -> float | None:
    if budget_s is None:
        return None
    try:
        b = float(budget_s)
    except (TypeError, ValueError):
        raise ValueError(f"budget_s must be a number of seconds > 0, got {budget_s!r}") from None
    if not (math.isfinite(b) and b > 0):
        raise ValueError(f"budget_s must be a number of seconds > 0, got {budget_s!r}")
    return b


def diagnose(model: Any, data: Dataset, *, n_points: int | None | str = 1000, iwae_k: int | str = 100,
             seed: int = 0, split_seed: int = 0, eval_fraction: float = EVAL_FRACTION, batch_size: int = 500,
             progress: Progress | None = None, train_n: int | None = None, train_dataset: str | None = None,
             budget_s: float | None = None, clock: Callable[[], float] | None = None) -> Report:
    """Run every diagnostic of `model` on the evaluation split of `data` and return one Report.

    split_seed/eval_fraction/train_n/train_dataset rebuild the held-out points (use the run's:
    `checkpoints.eval_split`); seed drives only the Monte Carlo samples, so two seeds score the
    same points.

    Time budget: n_points and/or iwae_k = AUTO ("auto") are chosen to fit `budget_s` seconds for
    the whole call (DEFAULT_BUDGET_S when not given): a pilot times the model on a few points, then
    `choose_settings` picks up to TARGET_POINTS points and k up to TARGET_K (floors MIN_POINTS,
    MIN_K). Given values are used as given. The report states the points and k it used, who chose
    them (`chosen_by`), why (`choice`), the budget, and the measured `seconds`. `clock` is the timer
    (time.perf_counter); a test may inject its own.

    Memory stays bounded: the data is encoded, scored and decoded in chunks (images per model call:
    `iwae.row_limit`, or under a budget what the pilot measured to take about CALL_S), and the blur
    statistics are accumulated chunk by chunk. progress(part, fraction) is called before every
    chunk; it returns True to cancel.
    """
    clock = clock or time.perf_counter
    t_start = clock()
    auto_n, auto_k = isinstance(n_points, str) and n_points == AUTO, isinstance(iwae_k, str) and iwae_k == AUTO
    if isinstance(n_points, str) and not auto_n:
        raise ValueError(f"n_points must be a whole number, None or {AUTO!r}, got {n_points!r}")
    if not auto_n and n_points is not None and int(n_points) < 1:
        raise ValueError(f"n_points must be >= 1, None or {AUTO!r}, got {n_points!r}")
    if not auto_k:
        iwae_k = _check_k(iwae_k)
    budget_s = _budget_value(budget_s)
    if budget_s is None and (auto_n or auto_k):
        budget_s = DEFAULT_BUDGET_S
    batch_size = check_batch_size(batch_size)
    if getattr(model, "input_shape", None) is None and hasattr(model, "set_input_shape"):
        model.set_input_shape(data.shape)  # a TorchScript model learns its input shape from the data
    check_fits(data, model.input_shape)
    # the split once (it copies the training part): the budget's choice of points is a subset of the same
    held_out = eval_points(data, None, split_seed, eval_fraction, train_n, train_dataset)
    ev = _some_points(held_out, TARGET_POINTS if auto_n else n_points, split_seed)
    dev = model_device(model)
    gen = torch.Generator(device=dev).manual_seed(seed)  # local: leaves the global RNG alone
    n_pixels = int(ev.x[0].numel())
    rows_cap = row_limit(n_pixels)
    gaussian = str(getattr(model, "likelihood", "bernoulli")) == "gaussian"
    timings: dict[str, float] = {}
    t0 = clock()
    where = _Fractions({})

    def step(part: str, fraction: float) -> None:
        f = 0.02 * fraction if part == "pilot" else where(part, fraction) if part in PARTS else fraction
        if progress is not None and progress(part, f):
            raise DiagnoseCancelled(f"diagnose cancelled during {part}")

    def lap(part: str) -> None:
        nonlocal t0
        now = clock()
        timings[part] = now - t0
        t0 = now

    # MIG's scikit-learn takes 1.5 s or more to import: in a thread beside the work, not as a pause in the progress
    importing = _import_in_background("sklearn.metrics") if ev.factors is not None else None
    pilot = choice = None
    with torch.inference_mode():
        if auto_n or auto_k:
            pilot = _pilot(model, ev.x[:PILOT_POINTS].to(dev), clock=clock, step=step, rows_cap=rows_cap, seed=seed)
            lap("pilot")
            spent = clock() - t_start  # the pilot, the points' selection: counted in the budget
            choice = choose_settings(pilot.costs, budget_s - spent, n_max=len(ev),
                                     k_max=TARGET_K if auto_k else iwae_k, n_fixed=not auto_n, k_fixed=not auto_k,
                                     latent_dim=pilot.latent_dim, batch_size=batch_size, gaussian=gaussian)
            if choice.n_points < len(ev):
                ev = _some_points(held_out, choice.n_points, split_seed)
            iwae_k = choice.iwae_k
            rows = pilot.rows_per_call
            enc_rows = min(batch_size, rows_cap, _pow2_floor(CALL_S / pilot.costs.encode)
                           if pilot.costs.encode > 0 else batch_size)
            where = _Fractions(predict(pilot.costs, len(ev), iwae_k, latent_dim=pilot.latent_dim,
                                       batch_size=batch_size, gaussian=gaussian), start=0.02)
        else:
            rows, enc_rows = rows_cap, min(batch_size, rows_cap)
            d_guess = getattr(model, "latent_dim", None)
            where = _Fractions(predict(_ROW_WEIGHTS, len(ev), iwae_k, batch_size=batch_size, gaussian=gaussian,
                                       latent_dim=d_guess if isinstance(d_guess, int) else 1))

        x = ev.x.to(dev)  # (N, C, H, W)
        n = x.shape[0]
        mus, logvars = [], []
        for s in range(0, n, enc_rows):
            step("encode", s / n)
            m_, l_ = encode_all(model, x[s:s + enc_rows], enc_rows)
            mus.append(m_)
            logvars.append(l_)
        mu, logvar = torch.cat(mus), torch.cat(logvars)  # (N, D) each, reused below
        d = mu.shape[1]
        lap("encode")

        pts = _point_bounds(model, x, mu, logvar, iwae_k, batch_size=batch_size, generator=gen, max_rows=rows,
                            on_batch=lambda frac: step("iwae", frac))  # per point (N,)
        lap("iwae")

        step("collapse", 0.0)
        n_trav, done = 1 + d * len(TRAVERSAL), [0]

        def decode_traversal(z: torch.Tensor) -> torch.Tensor:
            step("collapse", done[0] / n_trav)
            done[0] += z.shape[0]
            return model.decode(z)

        sens = _decoder_sensitivity(decode_traversal, mu.mean(0), max_rows=rows)
        col = _collapse_stats(mu, logvar, sens)
        lap("collapse")

        step("mutual_info", 0.0)
        eps = torch.randn(mu.shape, generator=gen, device=dev)
        z = mu + eps * (0.5 * logvar).exp()  # one z per point
        # MI from eps, not z: z - mu in float32 is 0 for sharp posteriors (sigma below mu's resolution)
        mi = _mutual_info_core(mu, logvar, batch_size=batch_size, eps=eps,
                               on_batch=lambda frac: step("mutual_info", frac))
        lap("mutual_info")

        step("aggregate", 0.0)
        agg = _aggregate_core(mu, logvar, z)
        lap("aggregate")

        # reconstructions (the decoder mean at mu(x)) and prior samples, decoded and measured chunk by chunk
        z_prior = torch.randn(mu.shape, generator=gen, device=dev)
        acc = [_BlurAccumulator() for _ in range(3)]  # data, reconstructions, samples
        for s in range(0, n, rows):
            step("blur", s / n)
            acc[0].add(ev.x[s:s + rows])
            acc[1].add(model.decode(mu[s:s + rows]).float().cpu())
            acc[2].add(model.decode(z_prior[s:s + rows]).float().cpu())
        blur = _blur_stats(*acc)
        del acc
        lap("blur")

        mig_res = None
        if ev.factors is not None:
            step("mig", 0.0)
            if importing is not None:
                importing.join()  # an import error, if any, is raised again by _mig_core's own import
            mig_res = _mig_core(mu, ev.factors)
            lap("mig")
    step("done", 1.0)

    # kl is the sum of the closed-form per-dim means; recon_nll = -(MC ELBO) - kl (see iwae.py)
    scale, source, scale_known = decoder_scale(model)
    own = pts.summary(calibrated=source == "calibrated")  # the figures at the scale the report uses
    if source == "calibrated":
        scale = pts.calibrated_scale
    beside = pts.summary(calibrated=True) if source in ("declared", "trained") else None
    kl_dims = [float(v) for v in col.kl_per_dim]
    kl = float(sum(kl_dims))
    elbo_pts = pts.elbo_cal if source == "calibrated" else pts.elbo  # (N,) per-point MC ELBO
    recon = -float(elbo_pts.mean()) - kl
    elbo = -(recon + kl)
    iwae = max(own.iwae, elbo)

    notes = [f"elbo, iwae and recon_nll use the same {iwae_k} posterior samples per point; kl is "
             "closed form; recon_nll = -elbo - kl. Each figure's ± is one standard error over the "
             f"{n} points: sd(per-point values) / sqrt({n})."]
    lik = str(getattr(model, "likelihood", "bernoulli"))
    if source == "calibrated":
        notes.append(f"The Gaussian decoder declares no scale, so it is scored with the calibrated scale "
                     f"s = {scale:.4g} (Rybkin et al. 2021: s^2 = mean squared error over the points, pixels and "
                     f"{iwae_k} posterior samples); with it the mean recon term per image is "
                     f"0.5 * P * (1 + log(2 pi s^2)) = {calibrated_recon_nll(scale, pts.n_pixels):.3f} nats.")
    elif source is not None:
        notes.append(f"The Gaussian decoder is scored with its {source} scale s = {scale:.4g}; at the calibrated "
                     f"scale s = {pts.calibrated_scale:.4g} (Rybkin et al. 2021) the ELBO would be "
                     f"{beside.elbo:.3f} (elbo_calibrated).")
        if not scale_known:
            notes.append("The model does not say whether its file declared a scale (no declared_scale); its "
                         f"scale s = {scale:.4g} was taken as declared. If it was trained with a plain MSE loss, "
                         "read elbo_calibrated instead.")
    if pts.calibrated_scale is not None and pts.calibrated_scale ** 2 <= MIN_SCALE2:
        notes.append("The decoder reproduces the data almost exactly: the calibrated s^2 was floored at "
                     f"{MIN_SCALE2:g}.")
    if lik == "bernoulli" and bool(((ev.x != 0) & (ev.x != 1)).any()):
        notes.append("The data has grey (non-binary) pixels: with a Bernoulli decoder log p(x|z) is then a "
                     "cross-entropy, not a normalised likelihood, so elbo, iwae and recon_nll are not true "
                     "log-likelihoods; compare them only between models on the same data.")
    if mi.unclipped > mi.log_b:
        notes.append(f"The mutual-information estimate reached its ceiling log B = {mi.log_b:.3f} "
                     f"(raw {mi.unclipped:.3f}); the true I(x; z) may be larger. More points raise the ceiling.")
    if mi.n_batches * mi.batch_size < n:
        notes.append(f"Mutual information used {mi.n_batches * mi.batch_size} of {n} points "
                     f"(whole batches of {mi.batch_size}).")
    if not auto_n and n_points is not None and n < n_points:
        notes.append(f"Only {n} evaluation points were available ({n_points} requested).")
    seconds = clock() - t_start
    if choice is not None:
        by = ", ".join(f"{what} {'chosen' if auto else 'given'}" for what, auto in (("the points", auto_n),
                                                                                     ("k", auto_k)))
        c = pilot.costs
        notes.append(f"Time budget {budget_s:g} s ({by}): {choice.reason}. Used {n} points and k = {iwae_k}. "
                     f"A pilot on {pilot.points} points timed the model (encode {c.encode * 1e3:.3g} ms per point, "
                     f"one importance sample {c.iwae * 1e3:.3g} ms per point, {pilot.rows_per_call} images per "
                     f"call); predicted {spent + choice.predicted_s:.1f} s, took {seconds:.1f} s. "
                     f"The same figures again: --n-points {n} --iwae-k {iwae_k} --seed {seed}.")
    elif budget_s is not None:
        notes.append(f"n_points and iwae_k were given, so the time budget of {budget_s:g} s did not change them; "
                     f"took {seconds:.1f} s.")
    if ev.factors is None:
        notes.append("MIG needs ground-truth factors (e.g. the sprites dataset); not computed.")
    if getattr(model, "training", False):
        notes.append("The model was in training mode; call model.eval() for layers like dropout or batch norm.")

    blur_d: dict[str, Any] = {"reconstructions": dict(blur.reconstructions), "samples": dict(blur.samples)}
    blur_d.update({key: blur.reconstructions[key] for key in BLUR_KEYS})
    return Report(
        elbo=elbo, recon_nll=recon, kl=kl, kl_per_dim=kl_dims, active_units=col.active_units,
        collapsed_dims=col.collapsed_dims, mutual_info=mi.mi, mutual_info_max=mi.log_b, iwae=iwae,
        iwae_k=iwae_k, variance_law=[float(v) for v in agg.variance_law], blur=blur_d,
        mig=None if mig_res is None else mig_res.mig, dataset=data.name, n_points=n, seed=seed, split_seed=split_seed,
        elbo_se=own.elbo_se, recon_nll_se=own.recon_nll_se, kl_se=own.kl_se, iwae_se=own.iwae_se,
        mutual_info_se=mi.se, gaussian_scale=scale, gaussian_scale_source=source,
        gaussian_scale_calibrated=pts.calibrated_scale, calibrated=beside, train_n=train_n,
        likelihood=lik, latent_dim=d, collapse=col, mutual_info_detail=mi, aggregate=agg,
        blur_detail=blur, mig_detail=mig_res, factor_names=tuple(ev.factor_names), notes=notes,
        timings={**timings, "total": sum(timings.values())}, budget_s=budget_s,
        chosen_by="budget" if choice is not None else "given", n_points_chosen_by="budget" if auto_n else "given",
        iwae_k_chosen_by="budget" if auto_k else "given", choice=choice.reason if choice is not None else (
            "n_points and iwae_k were given"), seconds=seconds,
        predicted_seconds=None if choice is None else spent + choice.predicted_s,
        over_budget=bool(choice is not None and choice.over_budget), pilot=pilot, rows_per_call=rows)
