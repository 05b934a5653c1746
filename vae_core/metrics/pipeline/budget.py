"""The time budget of `diagnose`: a short pilot times the model, then k (and a first guess of the points) is chosen.

With n_points and/or iwae_k = AUTO, `pilot` measures the model's costs on PILOT_POINTS points
(encode, decode, an IWAE step, the blur statistics, the mutual information's pairwise terms) and
`choose_settings` picks the points and k whose `predict`ed time fits the budget: k lowered first,
then the points, floors MIN_POINTS and MIN_K (docs/science.md, "Precision of Monte Carlo figures").
`encoder_points` says how many points the encoder-only figures and the MI batch take. With the points
chosen, the report then enforces the budget as the work goes (report.py): the points chosen here are
only the pilot's prediction. `predict` also weighs the report's parts for its progress events.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .blur_chunks import BlurAccumulator
from ..collapse import TRAVERSAL
from ..iwae import STORE_BUDGET, log_weight_parts
from ..mutual_info import mi_terms

AUTO = "auto"  # n_points / iwae_k chosen by the time budget
DEFAULT_BUDGET_S = 60.0  # seconds for the whole report (CLI --budget, the Diagnose page's control)
TARGET_POINTS, TARGET_K = 1000, 100  # the full report; a budget only lowers them
MIN_POINTS, MIN_K = 100, 10  # floors kept where possible; a note says when even they exceed the budget
SAFETY = 0.9  # plan for this share of the time left after the pilot
CALL_S = 0.5  # aim of one model call under a budget: the progress moves at least every ~2 s
PILOT_POINTS = 4  # points the pilot encodes, decodes and scores
PILOT_STEP_S = 0.25  # the pilot's IWAE step doubles its samples until one call takes this long
PILOT_MAX_SAMPLES = 256
ENCODER_POINTS = 2000  # encoder-only figures (KL, collapse, MI, aggregate) use at least this many, where they exist
ENCODE_SHARE = 0.25  # of the budget that encoding may take past ENCODER_POINTS (more held-out points)
ENCODE_FLOOR_SHARE = 0.5  # of the budget that encoding may take to reach ENCODER_POINTS (a slow encoder stops
#                           short of them, with a note, so the decoder-heavy figures keep time)
MI_SHARE = 0.15  # of the budget that the mutual information may take past ENCODER_POINTS (its one batch)
MI_MAX_POINTS = 20_000  # one MI batch at most: B^2 D pairwise terms (20,000 x 20,000 x 16: seconds)
CHUNK_S = 1.0  # aim of one IWAE chunk under a budget: after each, the time left is checked
PARTS = ("encode", "collapse", "mutual_info", "aggregate", "mig", "iwae", "blur")


@dataclass(frozen=True)
class Costs:
    """Seconds per unit of work, measured by the pilot (or relative weights for progress)."""

    encode: float  # per point
    decode: float  # per image (reconstructions, prior samples, traversals)
    iwae: float  # per point and importance sample: decode + log p(x|z) + log-prior ratio
    blur: float  # per image, the blur statistics alone (model excluded)
    mi: float  # per element of the mutual information's (B, B, D) pairwise terms


# relative weights when no pilot ran (the settings were given): decoded images dominate
ROW_WEIGHTS = Costs(encode=0.5, decode=1.0, iwae=1.0, blur=0.1, mi=1e-4)


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
            store_budget: int = STORE_BUDGET, n_encoder: int | None = None,
            mi_points: int | None = None) -> dict[str, float]:
    """Predicted seconds per part of a report on n points with k samples (aggregate and mig: 0).

    encode: n_encoder points (n when not given); iwae: n k samples (twice for a Gaussian decoder
    past store_budget, which draws them again); collapse: the 1 + D x len(TRAVERSAL) decoded
    traversal images; mutual_info: one batch of mi_points points when given (B = mi_points), else
    its whole batches of B = min(batch_size, n) points, B x B x D terms each; blur: n reconstructions
    and n prior samples decoded, and the statistics of those and of the n data images.
    """
    passes = 2 if gaussian and k * n > store_budget else 1
    b = max(1, min(batch_size, n)) if mi_points is None else max(1, mi_points)
    batches = (n // b) if mi_points is None else 1
    seconds = {"encode": (n if n_encoder is None else n_encoder) * costs.encode,
               "iwae": passes * n * k * costs.iwae, "collapse": (1 + latent_dim * len(TRAVERSAL)) * costs.decode,
               "mutual_info": batches * b * b * latent_dim * costs.mi, "aggregate": 0.0,
               "blur": 2 * n * costs.decode + 3 * n * costs.blur, "mig": 0.0}
    return {part: seconds[part] for part in PARTS}  # in the order the report runs them (its progress)


def encoder_points(costs: Costs, n_available: int, budget_s: float, *, latent_dim: int) -> tuple[int, int]:
    """(points encoded, points of the MI batch) for the encoder-only figures under a budget.

    Every available point is planned, at least ENCODER_POINTS where they exist; past that only as many as
    ENCODE_SHARE of the budget encodes. (The report stops an encoder that turns out too slow for the
    floor once ENCODE_FLOOR_SHARE of the budget is spent.) The MI's one batch takes them all, at least ENCODER_POINTS,
    past that as many as MI_SHARE of the budget allows (its cost grows as B^2), at most MI_MAX_POINTS.
    """
    floor = min(ENCODER_POINTS, n_available)
    n_enc = n_available
    if costs.encode > 0:  # past the floor only what ENCODE_SHARE of the budget encodes; below it the report's
        #                   own clock stops a slow encoder (ENCODE_FLOOR_SHARE), not a 4-point pilot's guess
        n_enc = min(n_available, max(floor, int(ENCODE_SHARE * budget_s / costs.encode)))
    n_mi = n_enc
    if costs.mi > 0:
        n_mi = min(n_enc, max(floor, int(math.sqrt(MI_SHARE * budget_s / (costs.mi * max(1, latent_dim))))))
    return n_enc, max(1, min(n_mi, max(floor, MI_MAX_POINTS)))


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
                    n_floor: int = MIN_POINTS, k_floor: int = MIN_K, n_encoder: int | None = None,
                    mi_points: int | None = None) -> Choice:
    """The points n <= n_max and samples k <= k_max whose predicted time fits SAFETY x available_s.

    n_max / k_max are the targets (the given values when fixed). In order: the targets if they fit;
    else k lowered (down to k_floor) keeping every point, since more points usually buy more
    precision than larger k (docs/science.md: the standard error falls as 1/sqrt(N), while k mostly
    tightens the bound); else k at its floor and the points lowered (down to n_floor); else the
    floors, over the budget (`over_budget`). A fixed value is never changed. n_encoder / mi_points:
    the encoder-only parts' points when they do not follow n (see `predict`).
    """
    limit = SAFETY * available_s

    def total(n: int, k: int) -> float:
        return sum(predict(costs, n, k, latent_dim=latent_dim, batch_size=batch_size, gaussian=gaussian,
                           n_encoder=n_encoder, mi_points=mi_points).values())

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


def pow2_floor(v: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(v, 1.0)))))


@torch.inference_mode()
def run_pilot(model: Any, x: torch.Tensor, *, clock: Callable[[], float], step: Callable[[str, float], None],
              rows_cap: int, seed: int = 0) -> Pilot:
    """Time the model on the first PILOT_POINTS points of x: encode, decode, the blur statistics,
    an IWAE step (samples doubled until one call takes PILOT_STEP_S) and the MI's pairwise terms.

    Every cost is measured on small batches, so per-call overheads make it an overestimate for
    fast models. Its own generator: the report's samples do not depend on it. step(part, fraction
    of the pilot) is called between its model calls.
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
    BlurAccumulator().add(imgs.cpu().repeat(reps, 1, 1, 1))
    blur_s = (now() - ta) / (b * reps)
    gen = torch.Generator(device=mu.device).manual_seed(seed + 7919)
    kp = 1
    while True:
        step("pilot", 0.3 + 0.4 * math.log2(kp) / math.log2(PILOT_MAX_SAMPLES))
        ta = now()
        log_weight_parts(model, xb, mu, logvar, kp, generator=gen, max_rows=b * kp)
        dt = now() - ta
        if dt >= PILOT_STEP_S or kp >= PILOT_MAX_SAMPLES or 2 * b * kp > rows_cap:
            break
        kp *= 2
    step("pilot", 0.8)
    ta = now()  # the last step once more, the faster kept: one pause of a loaded machine is not the model
    log_weight_parts(model, xb, mu, logvar, kp, generator=gen, max_rows=b * kp)
    iw = min(dt, now() - ta) / (b * kp)
    r = torch.randn(256, d, generator=gen, dtype=torch.float64, device=mu.device)
    mi_terms(r[:32], torch.zeros_like(r[:32]), eps=r[:32])  # warm-up: a first call costs ~100x a later one
    mi_s = math.inf
    for m in (128, 256):  # the per-element cost of a batch big enough that the per-call overhead fades
        ta = now()
        mi_terms(r[:m], torch.zeros_like(r[:m]), eps=r[:m])
        mi_s = min(mi_s, (now() - ta) / (m * m * d))
    rows = max(1, min(rows_cap, pow2_floor(CALL_S / iw) if iw > 0 else rows_cap))
    costs = Costs(encode=enc, decode=min(dec, iw) if iw > 0 else dec, iwae=iw, blur=blur_s, mi=mi_s)
    return Pilot(costs=costs, seconds=now() - t0, rows_per_call=rows, latent_dim=d, points=b, samples=kp)
