"""The diagnose report: the `Report` dataclass, its JSON dict (docs/contracts.md, "Diagnose report keys", and
detail beside them), its text table for the CLI and its plain-language summary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..aggregate import HOLE_HIGH, HOLE_LOW, AggregateStats
from ..blur import BlurStats
from .budget import Pilot
from ..collapse import ACTIVE_THRESHOLD, KL_THRESHOLD, PRIOR_SIGMA2_THRESHOLD, TRAVERSAL, CollapseStats
from ..iwae import Bounds
from ..mig import MIGResult
from ..mutual_info import MutualInfo

SHARP_ENOUGH = 0.5  # Laplacian ratio below this is called blurry in the summary
MI_CEILING_MARGIN = 0.1  # nats: an MI estimate this close to its log B ceiling says only "at least this much"


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

    # contract values (docs/contracts.md), nats per data point, means over the evaluation points
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
    disentanglement_detail: Any = None  # infomec_dci.Disentanglement: InfoMEC and DCI, where factors exist
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
    # each figure's points: {"encoder", "mutual_info", "iwae", "blur", "sensitivity_images"[, "mig"]};
    # n_points is the IWAE's (the bounds'); samples per point; what the budget cut as the work went
    points: dict[str, int] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    budget_cut: dict[str, dict[str, Any]] = field(default_factory=dict)
    standard_errors_by_figure: dict[str, dict[str, Any]] = field(default_factory=dict)
    iwae_k_choice: str = ""  # under a budget: k chosen again before the IWAE, at the speed measured then

    @property
    def mi_at_ceiling(self) -> bool:
        """Whether the MI estimate is within MI_CEILING_MARGIN nats of its log B ceiling."""
        return self.mutual_info >= self.mutual_info_max - MI_CEILING_MARGIN

    @property
    def settings_line(self) -> str:
        """One line: the points and k used, who chose them, the budget and the time taken."""
        who = ("chosen by the time budget" if self.chosen_by == "budget" else "as given") + (
            f" ({self.budget_s:g} s)" if self.budget_s is not None else "")
        took = f"; took {self.seconds:.1f} s" if math.isfinite(self.seconds) else ""
        over = "; OVER the budget" if self.over_budget else ""
        cut = f"; cut by the budget: {', '.join(self.budget_cut)}" if self.budget_cut else ""
        p = self.points
        enc = (f"; encoder figures on {p['encoder']} points, MI on {p['mutual_info']}, blur on {p['blur']}"
               if p and (p.get("encoder"), p.get("blur")) != (self.n_points, self.n_points) else "")
        return f"  Settings: {self.n_points} points, k = {self.iwae_k}, {who}{took}{over}{enc}{cut}"

    @property
    def summary(self) -> str:
        """A few plain-language sentences for a newcomer."""
        d = self.latent_dim
        c = self.collapse
        s = c.headline()  # the one collapse vocabulary (collapse.classify_dims)
        ignored = c.decoder_ignored_dims
        if ignored:
            s.append(f"Dims {_dims(ignored)} carry KL but the decoder barely reacts to them.")
        if self.mi_at_ceiling:
            s.append(f"The mutual information I(x; z) estimate ({self.mutual_info:.2f} nats) is at its ceiling "
                     f"log B = {self.mutual_info_max:.2f} nats (B = {self.mutual_info_detail.batch_size} points): "
                     "the estimator cannot show more than that, so the true I(x; z) may be larger.")
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
                   pilot=None if self.pilot is None else self.pilot.to_dict(), rows_per_call=self.rows_per_call,
                   points=self.points, samples=self.samples, budget_cut=self.budget_cut,
                   mutual_info_at_ceiling=self.mi_at_ceiling, figures=self.standard_errors_by_figure,
                   iwae_k_choice=self.iwae_k_choice)
        if self.calibrated is not None:
            cal = self.calibrated
            out.update(elbo_calibrated=cal.elbo, elbo_calibrated_se=cal.elbo_se,
                       recon_nll_calibrated=cal.recon_nll, recon_nll_calibrated_se=cal.recon_nll_se,
                       iwae_calibrated=cal.iwae, iwae_calibrated_se=cal.iwae_se)
        if self.mig_detail is not None:
            out.update(mig_matrix=self.mig_detail.mi_matrix, mig_factor_names=list(self.factor_names),
                       mig_factor_entropy=self.mig_detail.entropies, mig_gaps=self.mig_detail.gaps)
        from ..infomec_dci import KEYS as DIS_KEYS

        if self.disentanglement_detail is not None:
            out.update(self.disentanglement_detail.to_dict())
        else:
            out.update({k: None for k in DIS_KEYS}, **{f"{k}_se": None for k in DIS_KEYS})
        return _jsonable(out)

    def _disentanglement_lines(self, pm: Callable[[float, float], str]) -> list[str]:
        """InfoM, InfoC, InfoE and DCI beside MIG, where the data has factors (± half-sample SE)."""
        d = self.disentanglement_detail
        if d is None:
            return []
        names = {"infom": "InfoM", "infoc": "InfoC", "infoe": "InfoE", "dci_d": "DCI disentanglement",
                 "dci_c": "DCI completeness", "dci_i": "DCI informativeness"}
        return [f"  {names[k]:<31s}{'n/a' if d.scores[k] is None else pm(d.scores[k], d.se[k])}" for k in names]

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
        lines = [f"Diagnose: {self.dataset}, {self.points.get('encoder', self.n_points)} evaluation points "
                 f"({self.n_points} for the bounds), latent dim {self.latent_dim}, "
                 f"{self.likelihood} decoder (nats per data point)",
                 self.settings_line,
                 f"  ELBO (higher is better)        {pm(self.elbo, self.elbo_se)}",
                 f"    reconstruction NLL           {pm(self.recon_nll, self.recon_nll_se)}",
                 f"    KL                           {pm(self.kl, self.kl_se)}",
                 f"  {f'IWAE bound (k={self.iwae_k})':<31s}{pm(self.iwae, self.iwae_se)}",
                 f"  Mutual information I(x; z)     {pm(self.mutual_info, self.mutual_info_se)}   (ceiling log B = "
                 f"{self.mutual_info_max:.3f}{', AT the ceiling: the true value may be larger' if self.mi_at_ceiling else ''})",
                 f"  Active units (Var mu > {ACTIVE_THRESHOLD})   {self.active_units:10d} / {self.latent_dim}",
                 f"  Collapsed dims (KL < {KL_THRESHOLD})     {_dims(self.collapsed_dims)}",
                 f"  MIG                            {num(self.mig)}",
                 *self._disentanglement_lines(pm),
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
