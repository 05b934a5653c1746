"""`diagnose(model, data)`: every diagnostic in one report (docs/contracts.md, "Diagnose report keys").

Units: nats per data point; every number is a mean over the evaluation points (the run's own eval
split, rebuilt as training made it: `heldout.eval_points`, or a seeded subset of `n_points` of it).
Reductions: sums over pixels and latent dims, the mean over points taken once. Every Monte Carlo
figure carries `<key>_se`, sd(per-point values, ddof=1) / sqrt(N); a Gaussian decoder's figures
say which scale they used (`gaussian_scale`, `gaussian_scale_source`; see iwae.py). The data is
encoded once; mu, logvar and one posterior sample per point are shared by the parts. Definitions:
docs/science.md and the docstring of each module in this package.

Time and memory (docs/science.md, "Precision of Monte Carlo figures"): with n_points and/or iwae_k = AUTO,
a short pilot times the model (`budget.run_pilot`) and `budget.choose_settings` picks the points and
k that fit the time budget (k lowered first, then the points, floors MIN_POINTS and MIN_K); the report
says what it used, who chose it (`chosen_by`) and why, with the measured `seconds`. Every model call
holds a bounded number of images (`iwae.row_limit`, or under a budget about CALL_S of work), the IWAE
logsumexp is accumulated across chunks, and the blur statistics are accumulated chunk by chunk
(`blur_chunks.BlurAccumulator`), so no (k x N) or (N, C, H, W) set of decoded images is ever held.

The pieces: `report_card` (the Report: its JSON dict, table and summary), `budget` (the pilot and the
choice), `heldout` (which points), `blur_chunks`; this module runs them in order.
"""
from __future__ import annotations

import importlib
import math
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..data import Dataset, check_fits
from ..progress import Progress, ProgressFn, Spans, report
from ._common import check_batch_size, encode_all, model_device
from .aggregate import AggregateStats, _aggregate_core
from .blur import KEYS as BLUR_KEYS
from .blur import BlurStats
from .blur_chunks import BlurAccumulator, blur_stats_of
from .budget import (AUTO, CALL_S, DEFAULT_BUDGET_S, PARTS, PILOT_POINTS, ROW_WEIGHTS, TARGET_K, TARGET_POINTS,
                     Choice, Pilot, choose_settings, pow2_floor, predict, run_pilot)
from .collapse import TRAVERSAL, CollapseStats, _collapse_stats, _decoder_sensitivity
from .heldout import EVAL_FRACTION, eval_points, some_points
from .iwae import PointBounds, _check_k, _point_bounds, row_limit
from .mig import MIGResult, _mig_core
from .mutual_info import MutualInfo, _mutual_info_core
from .report_card import Report
from .scoring import Scored, scale_notes, score

__all__ = ["AUTO", "DiagnoseCancelled", "Report", "diagnose", "eval_points"]

PILOT_SHARE = 0.02  # of the progress bar, taken by the pilot under a budget


class DiagnoseCancelled(Exception):
    """Raised when the progress callback returns True."""


class _Tracker:
    """diagnose's clock, progress events and seconds per part.

    Progress (vae_core.progress): an event before every chunk of work, `what` the part ("pilot",
    one of PARTS, then "done"), done out of total = 1 the fraction of that part, and fraction the
    whole report's: the pilot takes the first PILOT_SHARE, then each part a share proportional to
    its predicted seconds (`where`, set once the points and k are known).
    """

    def __init__(self, progress: ProgressFn | None, clock: Callable[[], float]):
        self.progress, self.clock = progress, clock
        self.where = Spans({})
        self.timings: dict[str, float] = {}
        self.t0 = clock()

    def step(self, part: str, frac: float) -> None:
        """Report `frac` of `part` done; raise DiagnoseCancelled when the callback asks to stop."""
        f = PILOT_SHARE * frac if part == "pilot" else self.where(part, frac) if part in PARTS else frac
        if report(self.progress, Progress(part, frac, 1.0, f)):
            raise DiagnoseCancelled(f"diagnose cancelled during {part}")

    def lap(self, part: str) -> None:
        """Record the seconds since the last lap as `part`'s."""
        now = self.clock()
        self.timings[part] = now - self.t0
        self.t0 = now


@dataclass
class _Plan:
    """The points, k and call sizes a report runs with and, under a budget, what chose them."""

    ev: Dataset
    iwae_k: int
    rows: int  # images per decode call
    enc_rows: int  # points per encode call
    pilot: Pilot | None = None
    choice: Choice | None = None
    spent: float = 0.0  # seconds before the choice (the pilot, the points' selection): in the budget


@dataclass
class _Parts:
    """Every part's result, on the plan's points."""

    pts: PointBounds
    col: CollapseStats
    mi: MutualInfo
    agg: AggregateStats
    blur: BlurStats
    mig: MIGResult | None
    latent_dim: int


def _plan(model: Any, held_out: Dataset, ev: Dataset, track: _Tracker, *, auto_n: bool, auto_k: bool,
          iwae_k: int | str, budget_s: float | None, batch_size: int, split_seed: int, seed: int,
          t_start: float) -> _Plan:
    """The given settings, or under a budget (AUTO) a pilot's timing and the choice that fits;
    sets the progress weights of the parts."""
    rows_cap = row_limit(int(ev.x[0].numel()))
    gaussian = str(getattr(model, "likelihood", "bernoulli")) == "gaussian"
    if not (auto_n or auto_k):
        d_guess = getattr(model, "latent_dim", None)
        track.where = Spans(predict(ROW_WEIGHTS, len(ev), iwae_k, batch_size=batch_size, gaussian=gaussian,
                                    latent_dim=d_guess if isinstance(d_guess, int) else 1))
        return _Plan(ev, iwae_k, rows_cap, min(batch_size, rows_cap))
    pilot = run_pilot(model, ev.x[:PILOT_POINTS].to(model_device(model)), clock=track.clock, step=track.step,
                      rows_cap=rows_cap, seed=seed)
    track.lap("pilot")
    spent = track.clock() - t_start
    choice = choose_settings(pilot.costs, budget_s - spent, n_max=len(ev), k_max=TARGET_K if auto_k else iwae_k,
                             n_fixed=not auto_n, k_fixed=not auto_k, latent_dim=pilot.latent_dim,
                             batch_size=batch_size, gaussian=gaussian)
    if choice.n_points < len(ev):
        ev = some_points(held_out, choice.n_points, split_seed)
    enc = pilot.costs.encode
    enc_rows = min(batch_size, rows_cap, pow2_floor(CALL_S / enc) if enc > 0 else batch_size)
    track.where = Spans(predict(pilot.costs, len(ev), choice.iwae_k, latent_dim=pilot.latent_dim,
                                batch_size=batch_size, gaussian=gaussian), start=PILOT_SHARE)
    return _Plan(ev, choice.iwae_k, pilot.rows_per_call, enc_rows, pilot, choice, spent)


def _encode(model: Any, x: torch.Tensor, rows: int, track: _Tracker) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar), each (N, D), of x (N, C, H, W), `rows` points per call."""
    n = x.shape[0]
    mus, logvars = [], []
    for s in range(0, n, rows):
        track.step("encode", s / n)
        m_, l_ = encode_all(model, x[s:s + rows], rows)
        mus.append(m_)
        logvars.append(l_)
    track.lap("encode")
    return torch.cat(mus), torch.cat(logvars)


def _collapse(model: Any, mu: torch.Tensor, logvar: torch.Tensor, rows: int, track: _Tracker) -> CollapseStats:
    """The collapse statistics, the decoder's sensitivity from traversals around the mean code."""
    track.step("collapse", 0.0)
    n_trav, done = 1 + mu.shape[1] * len(TRAVERSAL), [0]

    def decode_traversal(z: torch.Tensor) -> torch.Tensor:
        track.step("collapse", done[0] / n_trav)
        done[0] += z.shape[0]
        return model.decode(z)

    col = _collapse_stats(mu, logvar, _decoder_sensitivity(decode_traversal, mu.mean(0), max_rows=rows))
    track.lap("collapse")
    return col


def _blur(model: Any, x: torch.Tensor, mu: torch.Tensor, gen: torch.Generator, rows: int,
          track: _Tracker) -> BlurStats:
    """Blur of the reconstructions (the decoder mean at mu(x)) and of prior samples against the data
    x (N, C, H, W, on the CPU), decoded and measured `rows` images at a time."""
    n = x.shape[0]
    z_prior = torch.randn(mu.shape, generator=gen, device=mu.device)
    acc = [BlurAccumulator() for _ in range(3)]  # data, reconstructions, samples
    for s in range(0, n, rows):
        track.step("blur", s / n)
        acc[0].add(x[s:s + rows])
        acc[1].add(model.decode(mu[s:s + rows]).float().cpu())
        acc[2].add(model.decode(z_prior[s:s + rows]).float().cpu())
    blur = blur_stats_of(*acc)
    track.lap("blur")
    return blur


def _parts(model: Any, plan: _Plan, gen: torch.Generator, track: _Tracker, batch_size: int,
           importing: threading.Thread | None) -> _Parts:
    """Every part in order on the plan's points: encode, IWAE, collapse, MI, aggregate, blur, MIG."""
    ev, rows = plan.ev, plan.rows
    x = ev.x.to(model_device(model))  # (N, C, H, W)
    mu, logvar = _encode(model, x, plan.enc_rows, track)  # (N, D) each, reused below
    pts = _point_bounds(model, x, mu, logvar, plan.iwae_k, batch_size=batch_size, generator=gen, max_rows=rows,
                        on_batch=lambda frac: track.step("iwae", frac))  # per point (N,)
    track.lap("iwae")
    col = _collapse(model, mu, logvar, rows, track)
    track.step("mutual_info", 0.0)
    eps = torch.randn(mu.shape, generator=gen, device=mu.device)
    z = mu + eps * (0.5 * logvar).exp()  # one z per point
    # MI from eps, not z: z - mu in float32 is 0 for sharp posteriors (sigma below mu's resolution)
    mi = _mutual_info_core(mu, logvar, batch_size=batch_size, eps=eps,
                           on_batch=lambda frac: track.step("mutual_info", frac))
    track.lap("mutual_info")
    track.step("aggregate", 0.0)
    agg = _aggregate_core(mu, logvar, z)
    track.lap("aggregate")
    blur = _blur(model, ev.x, mu, gen, rows, track)
    mig_res = None
    if ev.factors is not None:
        track.step("mig", 0.0)
        if importing is not None:
            importing.join()  # an import error, if any, is raised again by _mig_core's own import
        mig_res = _mig_core(mu, ev.factors)
        track.lap("mig")
    return _Parts(pts, col, mi, agg, blur, mig_res, int(mu.shape[1]))


def _budget_note(plan: _Plan, budget_s: float | None, auto_n: bool, auto_k: bool, seconds: float,
                 seed: int) -> list[str]:
    """What the notes say about the time budget: who chose the points and k, and how long it took."""
    n, k = len(plan.ev), plan.iwae_k
    if plan.choice is not None:
        by = ", ".join(f"{what} {'chosen' if auto else 'given'}" for what, auto in (("the points", auto_n),
                                                                                     ("k", auto_k)))
        c, pilot = plan.pilot.costs, plan.pilot
        return [f"Time budget {budget_s:g} s ({by}): {plan.choice.reason}. Used {n} points and k = {k}. "
                f"A pilot on {pilot.points} points timed the model (encode {c.encode * 1e3:.3g} ms per point, "
                f"one importance sample {c.iwae * 1e3:.3g} ms per point, {pilot.rows_per_call} images per "
                f"call); predicted {plan.spent + plan.choice.predicted_s:.1f} s, took {seconds:.1f} s. "
                f"The same figures again: --n-points {n} --iwae-k {k} --seed {seed}."]
    if budget_s is not None:
        return [f"n_points and iwae_k were given, so the time budget of {budget_s:g} s did not change them; "
                f"took {seconds:.1f} s."]
    return []


def _grey(x: Any, rows: int = 4096) -> bool:
    """Whether images x (N, C, H, W) hold pixels other than 0 and 1; a batch at a time (x may be a
    lazy `Images` of a large file)."""
    return any(bool(((b != 0) & (b != 1)).any()) for b in (x[s:s + rows] for s in range(0, len(x), rows)))


def _notes(model: Any, plan: _Plan, parts: _Parts, s: Scored, *, n_points: int | None | str, auto_n: bool,
           auto_k: bool, budget_s: float | None, seconds: float, seed: int) -> list[str]:
    """The report's notes: how the figures were made and what to read into them."""
    ev, k, mi = plan.ev, plan.iwae_k, parts.mi
    n = len(ev)
    notes = [f"elbo, iwae and recon_nll use the same {k} posterior samples per point; kl is "
             "closed form; recon_nll = -elbo - kl. Each figure's ± is one standard error over the "
             f"{n} points: sd(per-point values) / sqrt({n})."]
    notes += scale_notes(s, parts.pts, k)
    if str(getattr(model, "likelihood", "bernoulli")) == "bernoulli" and _grey(ev.x):
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
    notes += _budget_note(plan, budget_s, auto_n, auto_k, seconds, seed)
    if ev.factors is None:
        notes.append("MIG needs ground-truth factors (e.g. the sprites dataset); not computed.")
    if getattr(model, "training", False):
        notes.append("The model was in training mode; call model.eval() for layers like dropout or batch norm.")
    return notes


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


def _check_settings(n_points: int | None | str, iwae_k: int | str, budget_s: float | None,
                    ) -> tuple[bool, bool, int | str, float | None]:
    """(n_points is AUTO, iwae_k is AUTO, iwae_k checked, the budget in force); ValueError naming a bad one."""
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
    return auto_n, auto_k, iwae_k, budget_s


def diagnose(model: Any, data: Dataset, *, n_points: int | None | str = 1000, iwae_k: int | str = 100,
             seed: int = 0, split_seed: int = 0, eval_fraction: float = EVAL_FRACTION, batch_size: int = 500,
             progress: ProgressFn | None = None, train_n: int | None = None, train_dataset: str | None = None,
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
    statistics are accumulated chunk by chunk. progress (vae_core.progress) receives an event
    before every chunk (see `_Tracker`); returning True raises DiagnoseCancelled.
    """
    clock = clock or time.perf_counter
    t_start = clock()
    auto_n, auto_k, iwae_k, budget_s = _check_settings(n_points, iwae_k, budget_s)
    batch_size = check_batch_size(batch_size)
    if getattr(model, "input_shape", None) is None and hasattr(model, "set_input_shape"):
        model.set_input_shape(data.shape)  # a TorchScript model learns its input shape from the data
    check_fits(data, model.input_shape)
    # the split once (it copies the training part): the budget's choice of points is a subset of the same
    held_out = eval_points(data, None, split_seed, eval_fraction, train_n, train_dataset)
    ev = some_points(held_out, TARGET_POINTS if auto_n else n_points, split_seed)
    gen = torch.Generator(device=model_device(model)).manual_seed(seed)  # local: leaves the global RNG alone
    track = _Tracker(progress, clock)
    # MIG's scikit-learn takes 1.5 s or more to import: in a thread beside the work, not as a pause in the progress
    importing = _import_in_background("sklearn.metrics") if ev.factors is not None else None
    with torch.inference_mode():
        plan = _plan(model, held_out, ev, track, auto_n=auto_n, auto_k=auto_k, iwae_k=iwae_k, budget_s=budget_s,
                     batch_size=batch_size, split_seed=split_seed, seed=seed, t_start=t_start)
        parts = _parts(model, plan, gen, track, batch_size, importing)
    track.step("done", 1.0)
    scored = score(model, parts.pts, [float(v) for v in parts.col.kl_per_dim])
    seconds = clock() - t_start
    notes = _notes(model, plan, parts, scored, n_points=n_points, auto_n=auto_n, auto_k=auto_k, budget_s=budget_s,
                   seconds=seconds, seed=seed)
    return _report(model, data, plan, parts, scored, notes, track.timings, seconds=seconds, seed=seed,
                   split_seed=split_seed, train_n=train_n, budget_s=budget_s, auto_n=auto_n, auto_k=auto_k)


def _report(model: Any, data: Dataset, plan: _Plan, parts: _Parts, s: Scored, notes: list[str],
            timings: dict[str, float], *, seconds: float, seed: int, split_seed: int, train_n: int | None,
            budget_s: float | None, auto_n: bool, auto_k: bool) -> Report:
    """The Report of one diagnose call, from its plan, its parts' results and the scored bounds."""
    col, mi, blur, pts, choice = parts.col, parts.mi, parts.blur, parts.pts, plan.choice
    blur_d: dict[str, Any] = {"reconstructions": dict(blur.reconstructions), "samples": dict(blur.samples)}
    blur_d.update({key: blur.reconstructions[key] for key in BLUR_KEYS})
    return Report(
        elbo=s.elbo, recon_nll=s.recon_nll, kl=s.kl, kl_per_dim=[float(v) for v in col.kl_per_dim],
        active_units=col.active_units, collapsed_dims=col.collapsed_dims, mutual_info=mi.mi,
        mutual_info_max=mi.log_b, iwae=s.iwae, iwae_k=plan.iwae_k,
        variance_law=[float(v) for v in parts.agg.variance_law], blur=blur_d,
        mig=None if parts.mig is None else parts.mig.mig, dataset=data.name, n_points=len(plan.ev), seed=seed,
        split_seed=split_seed, elbo_se=s.own.elbo_se, recon_nll_se=s.own.recon_nll_se, kl_se=s.own.kl_se,
        iwae_se=s.own.iwae_se, mutual_info_se=mi.se, gaussian_scale=s.scale, gaussian_scale_source=s.source,
        gaussian_scale_calibrated=pts.calibrated_scale, calibrated=s.beside, train_n=train_n,
        likelihood=str(getattr(model, "likelihood", "bernoulli")), latent_dim=parts.latent_dim, collapse=col,
        mutual_info_detail=mi, aggregate=parts.agg, blur_detail=blur, mig_detail=parts.mig,
        factor_names=tuple(plan.ev.factor_names), notes=notes, timings={**timings, "total": sum(timings.values())},
        budget_s=budget_s, chosen_by="budget" if choice is not None else "given",
        n_points_chosen_by="budget" if auto_n else "given", iwae_k_chosen_by="budget" if auto_k else "given",
        choice=choice.reason if choice is not None else "n_points and iwae_k were given", seconds=seconds,
        predicted_seconds=None if choice is None else plan.spent + choice.predicted_s,
        over_budget=bool(choice is not None and choice.over_budget), pilot=plan.pilot, rows_per_call=plan.rows)
