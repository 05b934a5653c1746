"""`diagnose(model, data)`: every diagnostic in one report (docs/contracts.md, "Diagnose report keys").

Units: nats per data point; every number is a mean over the evaluation points (the run's own eval
split, rebuilt as training made it: `heldout.eval_points`, or a seeded subset of `n_points` of it).
Reductions: sums over pixels and latent dims, the mean over points taken once. Every Monte Carlo
figure carries `<key>_se`, sd(per-point values, ddof=1) / sqrt(N); a Gaussian decoder's figures
say which scale they used (`gaussian_scale`, `gaussian_scale_source`; see iwae.py). The data is
encoded once; mu, logvar and one posterior sample per point are shared by the parts. Definitions:
docs/science.md and the docstring of each module in this package.

Time and memory (docs/science.md, "Precision of Monte Carlo figures"): with n_points and/or iwae_k = AUTO,
a short pilot times the model (`budget.run_pilot`) and `budget.choose_settings` picks k (lowered
before the points, floor MIN_K). With n_points = AUTO the budget is a bound, not a plan: each figure
gets the points its cost allows. The encoder-only figures (KL per dimension, kl, the collapse views,
MI, the aggregate posterior, MIG) use every held-out point (at least ENCODER_POINTS where they exist;
past that while encoding fits ENCODE_SHARE of the budget), MI one batch of them (ceiling log N). The
held-out points are taken in a seeded random order (`heldout.point_order`), so any first m are an
unbiased subset; the decoder-heavy parts (the IWAE with the ELBO and recon term, then the blur) go
through them in chunks, and after each chunk compare the time spent with the budget and what must
still follow at the speed measured so far, stopping early (`budget_cut` says where and why). Before
the IWAE, an auto k is chosen again at the decoder speed measured on the sensitivity's traversals.
Every part runs at least its first chunk, so a report passes its budget only by about one chunk,
and says so. The report says what each figure used (`points`, `samples`, `figures`), who chose it
(`chosen_by`) and why, with the measured `seconds`. Every model call holds a bounded number of
images (`iwae.row_limit`, or under a budget about CALL_S of work), the IWAE logsumexp is
accumulated across chunks, and the blur statistics are accumulated chunk by chunk
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
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import torch

from ...data import Dataset, check_fits
from ...losses import kl_per_dim
from ...progress import Progress, ProgressFn, Spans, report
from .._common import check_batch_size, encode_all, model_device, std_error
from ..aggregate import AggregateStats, aggregate_core
from ..blur import KEYS as BLUR_KEYS
from ..blur import BlurStats
from .blur_chunks import BlurAccumulator, blur_stats_of
from .budget import (AUTO, CALL_S, CHUNK_S, DEFAULT_BUDGET_S, ENCODE_FLOOR_SHARE, ENCODE_SHARE, ENCODER_POINTS,
                     MIN_POINTS, PARTS, PILOT_POINTS, ROW_WEIGHTS, TARGET_K, TARGET_POINTS, Choice, Costs, Pilot, choose_settings, encoder_points,
                     pow2_floor, predict, run_pilot)
from ..collapse import TRAVERSAL, CollapseStats, collapse_stats, decoder_sensitivity
from .options import checked
from .heldout import EVAL_FRACTION, eval_points, point_order, some_points, training_pool
from ..iwae import STORE_BUDGET, PointBounds, point_bounds, row_limit
from ..infomec_dci import disentanglement
from ..mig import MIGResult, mig_core
from ..mutual_info import MutualInfo, mutual_info_core
from .report_card import MI_CEILING_MARGIN, Report
from .scoring import Scored, scale_notes, score

__all__ = ["AUTO", "DiagnoseCancelled", "Report", "diagnose", "eval_points"]

PILOT_SHARE = 0.02  # of the progress bar, taken by the pilot under a budget
ENC_SEED_OFFSET = 104_729  # the encoder parts' generator: seed + this
CHUNK_FRACTION = 0.01  # of the budget: one IWAE chunk's aim (at most CHUNK_S), after which the time left is checked


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
    """The points, k and call sizes a report runs with and, under a budget, what chose them.

    ev holds the encoder-only figures' points (KL, collapse, MI, aggregate, MIG); the decoder-heavy
    ones (IWAE with the ELBO, blur) use its first n_dec. Under a budget with the points chosen
    (`bound` set) ev is in the seeded random `point_order`, so any first m points are an unbiased
    subset, and the decoder-heavy parts stop early when the time left runs out.
    """

    ev: Dataset
    iwae_k: int
    rows: int  # images per decode call
    enc_rows: int  # points per encode call
    n_dec: int  # points planned for the decoder-heavy parts (the first of ev)
    pilot: Pilot | None = None
    choice: Choice | None = None
    spent: float = 0.0  # seconds before the choice (the pilot, the points' selection): in the budget
    mi_points: int | None = None  # one MI batch of this many points (None: batches of batch_size)
    bound: float | None = None  # the budget enforced as the work goes (None: run what was planned)
    chunk_points: int = 500  # IWAE points per chunk (noise block); the time is checked after each
    held_out_n: int = 0  # points of the held-out split
    pool_n: int = 0  # points the split was made from (held-out and training)
    auto_k: bool = False  # k chosen by the budget: chosen again before the IWAE, at the speed measured then
    gaussian: bool = False
    batch_size: int = 500
    rechoice: str = ""  # why k is what it is, when chosen again before the IWAE
    from_run: bool = True  # the split is a run's (its dataset known), not a default one for a bare model


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
    kl_points: torch.Tensor  # (n_encoder,) closed-form KL per encoder point, float64
    points: dict[str, int]  # points each figure used
    cuts: dict[str, dict[str, Any]]  # what the budget cut as the work went, and why
    disentanglement: Any = None  # infomec_dci.Disentanglement where the data has factors


def _plan(model: Any, held_out: Dataset, ev: Dataset, track: _Tracker, *, auto_n: bool, auto_k: bool,
          iwae_k: int | str, budget_s: float | None, batch_size: int, split_seed: int, seed: int,
          t_start: float, pool_n: int) -> _Plan:
    """The given settings, or under a budget (AUTO) a pilot's timing and the choice that fits;
    sets the progress weights of the parts."""
    rows_cap = row_limit(int(ev.x[0].numel()))
    gaussian = str(getattr(model, "likelihood", "bernoulli")) == "gaussian"
    if not (auto_n or auto_k):
        d_guess = getattr(model, "latent_dim", None)
        track.where = Spans(predict(ROW_WEIGHTS, len(ev), iwae_k, batch_size=batch_size, gaussian=gaussian,
                                    latent_dim=d_guess if isinstance(d_guess, int) else 1))
        return _Plan(ev, iwae_k, rows_cap, min(batch_size, rows_cap), len(ev), chunk_points=batch_size,
                     held_out_n=len(held_out), pool_n=pool_n)
    pilot = run_pilot(model, ev.x[:PILOT_POINTS].to(model_device(model)), clock=track.clock, step=track.step,
                      rows_cap=rows_cap, seed=seed)
    track.lap("pilot")
    spent = track.clock() - t_start
    left = budget_s - spent
    c, d = pilot.costs, pilot.latent_dim
    n_enc, n_mi = encoder_points(c, len(ev), left, latent_dim=d) if auto_n else (len(ev), None)
    ev = ev.subset(np.arange(n_enc)) if n_enc < len(ev) else ev  # the first n_enc in point order
    choice = choose_settings(c, left, n_max=len(ev), k_max=TARGET_K if auto_k else iwae_k,
                             n_fixed=not auto_n, k_fixed=not auto_k, latent_dim=d, batch_size=batch_size,
                             gaussian=gaussian, n_encoder=n_enc if auto_n else None, mi_points=n_mi)
    enc_rows = min(batch_size, rows_cap, pow2_floor(CALL_S / c.encode) if c.encode > 0 else batch_size)
    k = choice.iwae_k
    chunk = batch_size
    if auto_n:  # one IWAE chunk takes about CHUNK_FRACTION of the budget (at most CHUNK_S) at the pilot's speed
        aim = min(CHUNK_S, CHUNK_FRACTION * budget_s)
        chunk = max(1, min(batch_size, int(aim / (k * c.iwae)) if c.iwae > 0 else batch_size))
    track.where = Spans(predict(c, choice.n_points, k, latent_dim=d, batch_size=batch_size, gaussian=gaussian,
                                n_encoder=len(ev), mi_points=n_mi), start=PILOT_SHARE)
    # under a bound the decoder-heavy parts plan every encoder point and stop when the time is spent: the
    # pilot's choice.n_points is only its prediction (a pessimistic pilot then costs no points)
    return _Plan(ev, k, pilot.rows_per_call, enc_rows, len(ev) if auto_n else choice.n_points, pilot, choice, spent,
                 mi_points=n_mi, bound=budget_s if auto_n else None, chunk_points=chunk, held_out_n=len(held_out),
                 pool_n=pool_n, auto_k=auto_k, gaussian=gaussian, batch_size=batch_size)


def _rechoose_k(plan: _Plan, track: _Tracker, clock: _Clock, latent_dim: int) -> None:
    """Before the IWAE, under a bound with k chosen: choose k again for the time left, at the decoder's
    speed measured on the sensitivity's traversal images (the pilot's costs scaled by it), lowering k
    (never raising it: one batch of traversals can flatter a model) and sizing the IWAE's chunks for it.
    Sets plan.iwae_k, plan.chunk_points and plan.rechoice."""
    c = plan.pilot.costs
    n_trav = 1 + latent_dim * len(TRAVERSAL)
    measured = track.timings.get("collapse", 0.0) / n_trav  # seconds per decoded image, now
    slow = measured / c.decode if c.decode > 0 and measured > 0 else 1.0
    now_costs = Costs(encode=0.0, decode=c.decode * slow, iwae=c.iwae * slow, blur=c.blur, mi=0.0)
    left = plan.bound - clock.elapsed()
    choice = choose_settings(now_costs, left, n_max=plan.n_dec, k_max=TARGET_K, n_fixed=False, k_fixed=False,
                             latent_dim=latent_dim, batch_size=plan.batch_size, gaussian=plan.gaussian,
                             n_encoder=0, mi_points=0)
    if left <= 0:
        plan.rechoice = (f"k = {plan.iwae_k} kept for the IWAE: the budget was already spent before it "
                         f"({-left:.1f} s over), so it scores its first chunk only")
    elif choice.iwae_k >= plan.iwae_k:  # never raised: a few traversal images can flatter a model (one batch)
        plan.rechoice = (f"k = {plan.iwae_k} kept for the IWAE, with {left:.1f} s left: the decoder's speed measured "
                         f"on the {n_trav} traversal images ({slow:.2g}x the pilot's) asks for no lower k (k is only "
                         "ever lowered here)")
    else:
        plan.rechoice = (f"k = {choice.iwae_k} for the IWAE (lowered from {plan.iwae_k}), chosen again with "
                         f"{left:.1f} s left at the decoder's speed measured on the {n_trav} traversal images "
                         f"({slow:.2g}x the pilot's): {choice.reason}")
        plan.iwae_k = choice.iwae_k
    aim = min(CHUNK_S, CHUNK_FRACTION * plan.bound)  # one chunk's seconds at the speed measured now
    plan.chunk_points = max(1, min(plan.batch_size, int(aim / (plan.iwae_k * now_costs.iwae))
                                   if now_costs.iwae > 0 else plan.batch_size))


class _Clock:
    """The time left under the bound: elapsed seconds since diagnose began, measured as the work goes."""

    def __init__(self, track: _Tracker, t_start: float, bound: float | None, device: torch.device | None = None):
        self.track, self.t_start, self.bound = track, t_start, bound
        self.cuda = device is not None and device.type == "cuda"

    def now(self) -> float:
        if self.cuda:  # CUDA runs asynchronously: the time spent is the device's, once it has caught up
            torch.cuda.synchronize()
        return self.track.clock()

    def elapsed(self) -> float:
        return self.now() - self.t_start

    def go_on(self, next_s: float) -> bool:
        """Whether to run the next chunk (next_s seconds, with what must follow it): only while it fits the
        bound. The first chunk of a part is never asked about, so a part has at least one chunk's points,
        and a report ends past its bound by at most about one chunk (the first, when even that is over)."""
        return self.bound is None or self.elapsed() + next_s <= self.bound


def _encode(model: Any, x: torch.Tensor, rows: int, track: _Tracker, clock: _Clock | None = None,
            floor: int = 0, until: float = math.inf, floor_until: float = math.inf,
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar), each (N', D), of x (N, C, H, W), `rows` points per call; with a clock, the
    encoding stops once `until` seconds of the report have passed, or below `floor` points once
    `floor_until` have (N' <= N; the first call always runs)."""
    n = x.shape[0]
    mus, logvars = [], []
    for s in range(0, n, rows):
        if clock is not None and s > 0 and clock.elapsed() > (floor_until if s < floor else until):
            break
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

    col = collapse_stats(mu, logvar, decoder_sensitivity(decode_traversal, mu.mean(0), max_rows=rows))
    track.lap("collapse")
    return col


def _blur(model: Any, x: torch.Tensor, mu: torch.Tensor, gen: torch.Generator, rows: int,
          track: _Tracker, clock: _Clock | None = None) -> tuple[BlurStats, int]:
    """Blur of the reconstructions (the decoder mean at mu(x)) and of prior samples against the data
    x (N, C, H, W, on the CPU), decoded and measured `rows` images at a time: (stats, points used).
    Under a clock's bound it stops early when the next chunk would pass it (after its first chunk)."""
    n = x.shape[0]
    z_prior = torch.randn(mu.shape, generator=gen, device=mu.device)
    acc = [BlurAccumulator() for _ in range(3)]  # data, reconstructions, samples
    t0 = track.clock()
    used = n
    for s in range(0, n, rows):
        if clock is not None and s > 0:
            per_point = (clock.now() - t0) / s  # measured so far: two decodes and the statistics
            if not clock.go_on(min(rows, n - s) * per_point):
                used = s
                break
        track.step("blur", s / n)
        acc[0].add(x[s:s + rows])
        acc[1].add(model.decode(mu[s:s + rows]).float().cpu())
        acc[2].add(model.decode(z_prior[s:s + rows]).float().cpu())
    blur = blur_stats_of(*acc)
    track.lap("blur")
    return blur, used


def _iwae_stop(plan: _Plan, track: _Tracker, clock: _Clock, gaussian: bool, cuts: dict[str, dict[str, Any]],
               ) -> Callable[[int], bool] | None:
    """The IWAE's stop(points done), asked after each chunk under a bound: stop when the next chunk and
    what must follow it (the blur of those points, a Gaussian decoder's second pass) would pass the
    bound, at the speed measured on the chunks so far; None without a bound."""
    if plan.bound is None:
        return None
    c: Costs = plan.pilot.costs
    k, n, t0 = plan.iwae_k, plan.n_dec, clock.now()
    passes = 2 if gaussian and k * n > STORE_BUDGET else 1
    floor = min(MIN_POINTS, n)

    def stop(done: int) -> bool:
        per_point = (clock.now() - t0) / done  # seconds per point at this k, measured
        slow = per_point / (k * c.iwae) if c.iwae > 0 else 1.0  # the model's speed now against the pilot's
        nxt = min(plan.chunk_points, n - done)
        after = (done + nxt) * ((passes - 1) * per_point + 2 * c.decode * slow + 3 * c.blur)
        if clock.go_on(nxt * per_point + after):
            return False
        cuts["iwae"] = {
            "planned": n, "used": done, "seconds_per_point": per_point, "slowdown_vs_pilot": slow,
            "reason": f"after {done} of {n} points {clock.elapsed():.1f} s of the {clock.bound:g} s budget were "
                      f"spent; the model now takes {per_point * 1e3:.3g} ms per point at k = {k} "
                      f"({slow:.2g}x the pilot's speed), so the next {nxt} points and the blur after them "
                      f"would pass the budget" + (f" (fewer than the floor of {floor} points: the budget holds "
                                                  "no more at this speed)" if done < floor else "")}
        return True

    return stop


def _parts(model: Any, plan: _Plan, gen: torch.Generator, track: _Tracker, batch_size: int,
           importing: threading.Thread | None, t_start: float) -> _Parts:
    """Every part on the plan's points: the encoder-only ones (encode, collapse, MI, aggregate, MIG) on
    the encoder points, then the decoder-heavy ones (IWAE, blur) on as many as the bound allows."""
    ev, rows = plan.ev, plan.rows
    clock = _Clock(track, t_start, plan.bound, torch.device(model_device(model)))
    gaussian = str(getattr(model, "likelihood", "bernoulli")) == "gaussian"
    cuts: dict[str, dict[str, Any]] = {}
    x = ev.x.to(model_device(model))  # (N, C, H, W)
    bounded = plan.bound is not None
    left = (plan.bound or 0.0) - plan.spent
    mu, logvar = _encode(model, x, plan.enc_rows, track, clock if bounded else None,
                         floor=min(ENCODER_POINTS, len(ev)), until=plan.spent + ENCODE_SHARE * left,
                         floor_until=plan.spent + ENCODE_FLOOR_SHARE * left)  # (N, D) each, reused below
    n_enc = mu.shape[0]
    if n_enc < len(ev):
        share = ENCODE_FLOOR_SHARE if n_enc < ENCODER_POINTS else ENCODE_SHARE
        cuts["encode"] = {"planned": len(ev), "used": n_enc,
                          "reason": f"encoding took {share:.0%} of the budget by then"
                                    + (f", short of the {ENCODER_POINTS} points the encoder figures aim for: "
                                       "the model encodes too slowly for them in this budget" if n_enc < min(
                                           ENCODER_POINTS, len(ev)) else "")}
    col = _collapse(model, mu, logvar, rows, track)
    track.step("mutual_info", 0.0)
    # the encoder parts' one sample per point from a generator of their own: the IWAE's samples come first
    # from `gen`, whatever the encoder parts draw (and a report's IWAE draws do not depend on the points encoded)
    enc_gen = torch.Generator(device=mu.device).manual_seed(gen.initial_seed() + ENC_SEED_OFFSET)
    eps = torch.randn(mu.shape, generator=enc_gen, device=mu.device)
    z = mu + eps * (0.5 * logvar).exp()  # one z per point
    # MI from eps, not z: z - mu in float32 is 0 for sharp posteriors (sigma below mu's resolution)
    n_mi = n_enc if plan.mi_points is None else min(plan.mi_points, n_enc)
    mi = mutual_info_core(mu[:n_mi], logvar[:n_mi], batch_size=batch_size if plan.mi_points is None else n_mi,
                           eps=eps[:n_mi], on_batch=lambda frac: track.step("mutual_info", frac))
    track.lap("mutual_info")
    track.step("aggregate", 0.0)
    agg = aggregate_core(mu, logvar, z)
    track.lap("aggregate")
    mig_res = dis = None
    if ev.factors is not None:
        track.step("mig", 0.0)
        if importing is not None:
            importing.join()  # an import error, if any, is raised again by mig_core's own import
        mig_res = mig_core(mu, ev.factors[:n_enc])
        # InfoMEC and DCI beside MIG (on at most infomec_dci.MAX_POINTS of the points)
        dis = disentanglement(mu, ev.factors[:n_enc], seed=gen.initial_seed() % 2**32,
                              go_on=clock.go_on if bounded else None)  # half-samples only while they fit
        track.lap("mig")
    if bounded and plan.auto_k:
        _rechoose_k(plan, track, clock, int(mu.shape[1]))
    n_dec = min(plan.n_dec, n_enc)
    pts = point_bounds(model, x[:n_dec], mu[:n_dec], logvar[:n_dec], plan.iwae_k, batch_size=plan.chunk_points,
                        generator=gen, max_rows=rows, on_batch=lambda frac: track.step("iwae", frac),
                        stop=_iwae_stop(plan, track, clock, gaussian, cuts))  # per point (N',)
    track.lap("iwae")
    n_iwae = int(pts.iwae.shape[0])
    # under a bound a blur chunk takes about an IWAE chunk's time: 2 decodes a point against k
    blur_rows = max(1, min(rows, plan.chunk_points * plan.iwae_k // 2)) if bounded else rows
    blur, n_blur = _blur(model, ev.x[:n_iwae], mu[:n_iwae], gen, blur_rows, track, clock if bounded else None)
    if n_blur < n_iwae:
        cuts["blur"] = {"planned": n_iwae, "used": n_blur,
                        "reason": f"after {n_blur} of {n_iwae} points the next chunk would pass the "
                                  f"{plan.bound:g} s budget"}
    kl_points = kl_per_dim(mu.double(), logvar.double()).sum(1).cpu()  # (n_enc,)
    points = {"encoder": n_enc, "mutual_info": mi.n_batches * mi.batch_size, "iwae": n_iwae, "blur": n_blur,
              "sensitivity_images": 1 + int(mu.shape[1]) * len(TRAVERSAL)}
    if ev.factors is not None:
        points["mig"] = n_enc
    if dis is not None:
        points["disentanglement"] = dis.n_points
    return _Parts(pts, col, mi, agg, blur, mig_res, int(mu.shape[1]), kl_points, points, cuts, dis)


def _budget_note(plan: _Plan, parts: _Parts, budget_s: float | None, auto_n: bool, auto_k: bool, seconds: float,
                 seed: int) -> list[str]:
    """What the notes say about the time budget: who chose the points and k, what was cut as the work
    went, and how long it took."""
    n, k = parts.points["iwae"], plan.iwae_k
    if plan.choice is not None:
        by = ", ".join(f"{what} {'chosen' if auto else 'given'}" for what, auto in (("the points", auto_n),
                                                                                     ("k", auto_k)))
        c, pilot = plan.pilot.costs, plan.pilot
        reason = plan.choice.reason
        if plan.bound is not None:  # a prediction only: the parts stop when the time is spent
            reason = reason.replace("it ran anyway, over the budget", "the parts stop when the time is spent")
        notes = [f"Time budget {budget_s:g} s ({by}): {reason}. Used {n} points and k = {k}. "
                 f"A pilot on {pilot.points} points timed the model (encode {c.encode * 1e3:.3g} ms per point, "
                 f"one importance sample {c.iwae * 1e3:.3g} ms per point, {pilot.rows_per_call} images per "
                 f"call); predicted {plan.spent + plan.choice.predicted_s:.1f} s, took {seconds:.1f} s. "
                 f"The same points and k again: --n-points {n} --iwae-k {k} --seed {seed}."]
        for part, cut in parts.cuts.items():
            what = {"iwae": "The IWAE bound, the ELBO and the reconstruction term",
                    "blur": "The blur statistics", "encode": "The encoder figures"}[part]
            notes.append(f"{what} stopped early, on {cut['used']} of the {cut['planned']} planned points: "
                         f"{cut['reason']}. The points are the first of a seeded random order, so the figures "
                         "stay unbiased; their ± is over the points actually used.")
        if plan.rechoice:
            notes.append(plan.rechoice + ".")
        if plan.bound is not None and seconds > plan.bound:
            notes.append(f"The report took {seconds:.1f} s, over the {budget_s:g} s budget: every part runs at "
                         "least its first chunk, and even that did not fit.")
        elif plan.bound is None and plan.choice.over_budget:
            notes.append(f"The report took {seconds:.1f} s against the {budget_s:g} s budget: the given settings "
                         "were predicted not to fit, and were used as given.")
        return notes
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
    ev, k, mi, pts = plan.ev, plan.iwae_k, parts.mi, parts.points
    n, n_enc = pts["iwae"], pts["encoder"]
    notes = [f"elbo, iwae and recon_nll use the same {k} posterior samples per point; kl is "
             "closed form; recon_nll = -elbo - kl. Each figure's ± is one standard error over the "
             f"{n} points: sd(per-point values) / sqrt({n})."]
    if n_enc != n:
        notes.append(f"Each figure uses the points its cost allows: the encoder-only figures (KL per dimension, "
                     f"kl, active units and the collapse views, the aggregate posterior) use {n_enc} points, the "
                     f"mutual information {pts['mutual_info']}, the IWAE bound with the ELBO and reconstruction "
                     f"term {n} (k = {k} samples each), the blur statistics {pts['blur']}; the sensitivity decodes "
                     f"{pts['sensitivity_images']} traversal images. recon_nll = -elbo - kl combines the ELBO over "
                     f"{n} points with the KL over {n_enc}; its ± accounts for both.")
    if auto_n and plan.held_out_n < ENCODER_POINTS and plan.pool_n > plan.held_out_n:
        rest = plan.pool_n - plan.held_out_n
        why = (f"the other {rest} points of the data trained the model" if plan.from_run else
               f"the other {rest} points are left out as a run's training part would be (this model carries no "
               "record of its split; --split-seed and the data pick the points)")
        notes.append(f"The held-out split has {plan.held_out_n} points (fewer than {ENCODER_POINTS}); {why}, so "
                     "every figure uses the held-out points only.")
    if auto_n and n_enc < min(ENCODER_POINTS, plan.held_out_n) and "encode" not in parts.cuts:
        notes.append(f"The encoder figures use {n_enc} points, fewer than the {ENCODER_POINTS} they aim for: "
                     f"the pilot timed encoding at {plan.pilot.costs.encode * 1e3:.3g} ms per point, and at most "
                     f"{ENCODE_FLOOR_SHARE:.0%} of the budget goes to reaching them. A larger budget gives more.")
    notes += scale_notes(s, parts.pts, k)
    if str(getattr(model, "likelihood", "bernoulli")) == "bernoulli" and _grey(ev.x):
        notes.append("The data has grey (non-binary) pixels: with a Bernoulli decoder log p(x|z) is then a "
                     "cross-entropy, not a normalised likelihood, so elbo, iwae and recon_nll are not true "
                     "log-likelihoods; compare them only between models on the same data.")
    if mi.mi >= mi.log_b - MI_CEILING_MARGIN:
        notes.append(f"The mutual-information estimate {mi.mi:.3f} nats is at its ceiling log B = {mi.log_b:.3f} "
                     f"(B = {mi.batch_size} points; raw {mi.unclipped:.3f}): the estimator cannot go higher, so the "
                     "true I(x; z) may be larger. Only more points raise the ceiling.")
    if mi.n_batches * mi.batch_size < n_enc:
        notes.append(f"Mutual information used {mi.n_batches * mi.batch_size} of {n_enc} points "
                     f"({'whole batches' if mi.n_batches > 1 else 'one batch'} of {mi.batch_size}).")
    if not auto_n and n_points is not None and n < n_points:
        notes.append(f"Only {n} evaluation points were available ({n_points} requested).")
    notes += _budget_note(plan, parts, budget_s, auto_n, auto_k, seconds, seed)
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


def _check_settings(n_points: int | None | str, iwae_k: int | str, budget_s: float | None,
                    ) -> tuple[bool, bool, int | str, float | None]:
    """(n_points is AUTO, iwae_k is AUTO, iwae_k checked, the budget in force); the options' declared
    checks (`options.checked`, the CLI's too) raise a ValueError naming a bad one."""
    n_points, iwae_k, budget_s = (checked(name, v) for name, v in
                                  (("n_points", n_points), ("iwae_k", iwae_k), ("budget_s", budget_s)))
    auto_n, auto_k = n_points == AUTO, iwae_k == AUTO
    if budget_s is None and (auto_n or auto_k):
        budget_s = DEFAULT_BUDGET_S
    return auto_n, auto_k, iwae_k, budget_s


def diagnose(model: Any, data: Dataset, *, n_points: int | None | str = TARGET_POINTS, iwae_k: int | str = TARGET_K,
             seed: int = 0, split_seed: int = 0, eval_fraction: float = EVAL_FRACTION, batch_size: int = 500,
             progress: ProgressFn | None = None, train_n: int | None = None, train_dataset: str | None = None,
             budget_s: float | None = None, clock: Callable[[], float] | None = None) -> Report:
    """Run every diagnostic of `model` on the evaluation split of `data` and return one Report.

    split_seed/eval_fraction/train_n/train_dataset rebuild the held-out points (use the run's:
    `runs.run_load.eval_split`); seed drives only the Monte Carlo samples, so two seeds score the
    same points.

    Time budget: n_points and/or iwae_k = AUTO ("auto") fit `budget_s` seconds for the whole call
    (DEFAULT_BUDGET_S when not given): a pilot times the model on a few points, `choose_settings` picks
    k up to TARGET_K (floor MIN_K, lowered before the points); with n_points = AUTO the encoder-only
    figures use every held-out point and the IWAE and blur stop when the time is spent (see the module
    docstring). Given values are used as given. The report states each figure's points and samples,
    who chose them (`chosen_by`), why (`choice`, `iwae_k_choice`, `budget_cut`), the budget, and the
    measured `seconds`. `clock` is the timer (time.perf_counter); a test may inject its own.

    Memory stays bounded: the data is encoded, scored and decoded in chunks (images per model call:
    `iwae.row_limit`, or under a budget what the pilot measured to take about CALL_S), and the blur
    statistics are accumulated chunk by chunk. progress (vae_core.progress) receives an event
    before every chunk (see `_Tracker`); returning True raises DiagnoseCancelled.
    """
    clock = clock or time.perf_counter
    t_start = clock()
    auto_n, auto_k, iwae_k, budget_s = _check_settings(n_points, iwae_k, budget_s)
    seed, split_seed = checked("seed", seed), checked("split_seed", split_seed)
    batch_size = check_batch_size(batch_size)
    if getattr(model, "input_shape", None) is None and hasattr(model, "set_input_shape"):
        model.set_input_shape(data.shape)  # a TorchScript model learns its input shape from the data
    check_fits(data, model.input_shape)
    # the split once (it copies the training part): the budget's choice of points is a subset of the same
    pool = training_pool(data, split_seed, train_n, train_dataset)
    held_out = pool.split(eval_fraction, split_seed)[1]  # as eval_points(data, None, ...) makes it
    # under a budget every held-out point in a seeded random order (the first m are a random subset);
    # given points as eval_points picks them
    ev = held_out.subset(point_order(len(held_out), split_seed)) if auto_n else some_points(held_out, n_points,
                                                                                            split_seed)
    gen = torch.Generator(device=model_device(model)).manual_seed(seed)  # local: leaves the global RNG alone
    track = _Tracker(progress, clock)
    # MIG's scikit-learn takes 1.5 s or more to import: in a thread beside the work, not as a pause in the progress
    importing = _import_in_background("sklearn.metrics") if ev.factors is not None else None
    with torch.inference_mode():
        plan = _plan(model, held_out, ev, track, auto_n=auto_n, auto_k=auto_k, iwae_k=iwae_k, budget_s=budget_s,
                     batch_size=batch_size, split_seed=split_seed, seed=seed, t_start=t_start, pool_n=len(pool))
        plan.from_run = train_dataset is not None
        parts = _parts(model, plan, gen, track, batch_size, importing, t_start)
    track.step("done", 1.0)
    scored = _scored(model, parts)
    seconds = clock() - t_start
    notes = _notes(model, plan, parts, scored, n_points=n_points, auto_n=auto_n, auto_k=auto_k, budget_s=budget_s,
                   seconds=seconds, seed=seed)
    return _report(model, data, plan, parts, scored, notes, track.timings, seconds=seconds, seed=seed,
                   split_seed=split_seed, train_n=train_n, budget_s=budget_s, auto_n=auto_n, auto_k=auto_k)


def _scored(model: Any, parts: _Parts) -> Scored:
    """The bounds the report states: kl (and kl_per_dim) over the encoder points, the ELBO and IWAE over
    the first of them that the IWAE scored, recon_nll = -elbo - kl with its standard error from both.

    recon_nll = A - B with A the mean of a_i = -elbo_i over the n_I IWAE points and B the mean KL over
    the n_E >= n_I encoder points, the IWAE points among them: Var = var(a) / n_I + var(kl) / n_E
    - 2 cov(a, kl) / n_E (the covariance from the n_I shared points), which is var(a - kl) / n at n_I = n_E.
    """
    s = score(model, parts.pts, [float(v) for v in parts.col.kl_per_dim])
    kl_e = parts.kl_points.double()  # (n_E,)
    n_i, n_e = int(parts.pts.elbo.shape[0]), int(kl_e.shape[0])
    if n_i == n_e:
        return s
    a = -(parts.pts.elbo_cal if s.source == "calibrated" else parts.pts.elbo).double()  # (n_I,)
    kl_i = kl_e[:n_i]
    if n_i < 2:
        se = float("nan")
    else:
        cov = float(((a - a.mean()) * (kl_i - kl_i.mean())).sum()) / (n_i - 1)
        var = float(a.var()) / n_i + float(kl_e.var()) / n_e - 2 * cov / n_e
        se = math.sqrt(max(var, 0.0))
    s.own = replace(s.own, kl_se=std_error(kl_e), recon_nll_se=se)
    return s


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
        mig=None if parts.mig is None else parts.mig.mig, dataset=data.name, n_points=parts.points["iwae"], seed=seed,
        split_seed=split_seed, elbo_se=s.own.elbo_se, recon_nll_se=s.own.recon_nll_se, kl_se=s.own.kl_se,
        iwae_se=s.own.iwae_se, mutual_info_se=mi.se, gaussian_scale=s.scale, gaussian_scale_source=s.source,
        gaussian_scale_calibrated=pts.calibrated_scale, calibrated=s.beside, train_n=train_n,
        likelihood=str(getattr(model, "likelihood", "bernoulli")), latent_dim=parts.latent_dim, collapse=col,
        mutual_info_detail=mi, aggregate=parts.agg, blur_detail=blur, mig_detail=parts.mig, disentanglement_detail=parts.disentanglement,
        factor_names=tuple(plan.ev.factor_names), notes=notes, timings={**timings, "total": sum(timings.values())},
        budget_s=budget_s, chosen_by="budget" if choice is not None else "given",
        n_points_chosen_by="budget" if auto_n else "given", iwae_k_chosen_by="budget" if auto_k else "given",
        choice=choice.reason if choice is not None else "n_points and iwae_k were given", seconds=seconds,
        predicted_seconds=None if choice is None else plan.spent + choice.predicted_s, iwae_k_choice=plan.rechoice,
        over_budget=bool(choice is not None and (seconds > plan.bound if plan.bound is not None
                                                  else choice.over_budget)),
        pilot=plan.pilot, rows_per_call=plan.rows, points=dict(parts.points),
        samples={"iwae": plan.iwae_k, "mutual_info": 1, "aggregate": 1, "blur": 1},
        budget_cut={part: dict(cut) for part, cut in parts.cuts.items()},
        standard_errors_by_figure=_figure_errors(s, parts))


def _figure_errors(s: Scored, parts: _Parts) -> dict[str, dict[str, Any]]:
    """Each figure's points, samples per point and standard error, in one place."""
    p, k = parts.points, parts.pts.k
    return {"kl": {"points": p["encoder"], "samples": 0, "se": s.own.kl_se},
            "elbo": {"points": p["iwae"], "samples": k, "se": s.own.elbo_se},
            "recon_nll": {"points": p["iwae"], "kl_points": p["encoder"], "samples": k, "se": s.own.recon_nll_se},
            "iwae": {"points": p["iwae"], "samples": k, "se": s.own.iwae_se},
            "mutual_info": {"points": p["mutual_info"], "samples": 1, "se": parts.mi.se,
                            "ceiling": parts.mi.log_b},
            "blur": {"points": p["blur"], "samples": 1, "se": None}}
