"""`diagnose(model, data)`: every diagnostic in one report (DESIGN.md "Diagnose report keys").

Units: nats per data point; every number is a mean over the evaluation points (the run's own eval
split, rebuilt as training made it: `eval_points`, or a seeded subset of `n_points` of it).
Reductions: sums over pixels and latent dims, the mean over points taken once. Every Monte Carlo
figure carries `<key>_se`, sd(per-point values, ddof=1) / sqrt(N); a Gaussian decoder's figures
say which scale they used (`gaussian_scale`, `gaussian_scale_source`; see iwae.py). The data is
encoded once; mu, logvar and one posterior sample per point are shared by the parts. Definitions: shared/SCIENCE.md and the
docstring of each module in this package.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..data import Dataset, check_fits
from ._common import check_batch_size, decode_all, encode_all, model_device
from .aggregate import HOLE_HIGH, HOLE_LOW, AggregateStats, _aggregate_core
from .blur import KEYS as BLUR_KEYS
from .blur import BlurStats, _blur_core
from .collapse import (ACTIVE_THRESHOLD, KL_THRESHOLD, PRIOR_SIGMA2_THRESHOLD, TRAVERSAL, CollapseStats,
                       _collapse_stats, _decoder_sensitivity)
from .iwae import (MIN_SCALE2, Bounds, _check_k, _point_bounds, calibrated_recon_nll, decoder_scale)
from .mig import MIGResult, _mig_core
from .mutual_info import MutualInfo, _mutual_info_core

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
    if n_points is not None and n_points < len(ev):
        idx = np.sort(np.random.default_rng(split_seed).choice(len(ev), size=n_points, replace=False))
        ev = ev.subset(idx)
    return ev


def diagnose(model: Any, data: Dataset, *, n_points: int | None = 1000, iwae_k: int = 100, seed: int = 0,
             split_seed: int = 0, eval_fraction: float = EVAL_FRACTION, batch_size: int = 500,
             progress: Progress | None = None, train_n: int | None = None,
             train_dataset: str | None = None) -> Report:
    """Run every diagnostic of `model` on the evaluation split of `data` and return one Report.

    split_seed/eval_fraction/train_n/train_dataset rebuild the held-out points (use the run's:
    `checkpoints.eval_split`); seed drives only the Monte Carlo samples, so two seeds score the
    same points.
    """
    if n_points is not None and int(n_points) < 1:
        raise ValueError(f"n_points must be >= 1 or None, got {n_points!r}")
    iwae_k = _check_k(iwae_k)
    batch_size = check_batch_size(batch_size)
    if getattr(model, "input_shape", None) is None and hasattr(model, "set_input_shape"):
        model.set_input_shape(data.shape)  # a TorchScript model learns its input shape from the data
    check_fits(data, model.input_shape)
    ev = eval_points(data, n_points, split_seed, eval_fraction, train_n, train_dataset)
    dev = model_device(model)
    gen = torch.Generator(device=dev).manual_seed(seed)  # local: leaves the global RNG alone
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def step(part: str, fraction: float) -> None:
        if progress is not None and progress(part, fraction):
            raise DiagnoseCancelled(f"diagnose cancelled during {part}")

    def lap(part: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        timings[part] = now - t0
        t0 = now

    with torch.inference_mode():
        step("encode", 0.0)
        x = ev.x.to(dev)  # (N, C, H, W)
        mu, logvar = encode_all(model, x, batch_size)  # (N, D) each, reused below
        n, d = mu.shape
        lap("encode")

        pts = _point_bounds(model, x, mu, logvar, iwae_k, batch_size=batch_size, generator=gen,
                            on_batch=lambda frac: step("iwae", 0.05 + 0.7 * frac))  # per point (N,)
        lap("iwae")

        step("collapse", 0.75)
        sens = _decoder_sensitivity(model.decode, mu.mean(0))
        col = _collapse_stats(mu, logvar, sens)
        lap("collapse")

        step("mutual_info", 0.8)
        eps = torch.randn(mu.shape, generator=gen, device=dev)
        z = mu + eps * (0.5 * logvar).exp()  # one z per point
        # MI from eps, not z: z - mu in float32 is 0 for sharp posteriors (sigma below mu's resolution)
        mi = _mutual_info_core(mu, logvar, batch_size=batch_size, eps=eps)
        lap("mutual_info")

        step("aggregate", 0.85)
        agg = _aggregate_core(mu, logvar, z)
        lap("aggregate")

        step("blur", 0.87)
        recon = decode_all(model.decode, mu, batch_size).cpu()  # decoder mean at mu(x)
        samples = decode_all(model.decode, torch.randn(mu.shape, generator=gen, device=dev), batch_size).cpu()
        blur = _blur_core(ev.x, recon, samples)
        lap("blur")

        mig_res = None
        if ev.factors is not None:
            step("mig", 0.95)
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
    if n_points is not None and n < n_points:
        notes.append(f"Only {n} evaluation points were available ({n_points} requested).")
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
        timings={**timings, "total": sum(timings.values())})
