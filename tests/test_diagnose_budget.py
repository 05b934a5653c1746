"""Diagnose within a time budget, memory bounded, with its precision stated (issue #9, item 2).

No assertion here depends on how fast this machine is: the chooser is tested on hand-made costs, and
diagnose on a model wrapper whose every call advances a fake clock by a known cost (the pilot then
measures exactly those costs), so each decision is checked exactly.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from settle import settle

from vae_core import VAE, ModelConfig
from vae_core.data import Dataset
from vae_core.metrics.iwae import _log_weights, point_bounds, row_limit
from vae_core.metrics.pipeline.budget import (AUTO, MIN_K, MIN_POINTS, SAFETY, TARGET_K, TARGET_POINTS, Costs,
                                     choose_settings)
from vae_core.metrics.pipeline.report import diagnose
from paths import ROOT  # the repository root (tests/paths.py)

DIAGNOSE = str(ROOT / "app_pages" / "3_Diagnose.py")
TRAVERSAL_VALUES = 9  # collapse.TRAVERSAL: decoded images per latent dim for the sensitivity


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Costly:
    """A VAE whose encode/decode/nll calls advance `clock` by a known cost per image (nothing else does),
    recording the largest batch of any call."""

    def __init__(self, inner: VAE, clock: FakeClock, encode_s: float, decode_s: float):
        self.inner, self.clock, self.encode_s, self.decode_s = inner, clock, encode_s, decode_s
        self.likelihood, self.input_shape, self.latent_dim = inner.likelihood, inner.input_shape, inner.latent_dim
        self.training = False
        self.max_rows = 0

    def parameters(self):
        return self.inner.parameters()

    def _cost(self, rows: int, each: float) -> None:
        self.max_rows = max(self.max_rows, rows)
        self.clock.t += rows * each

    def encode(self, x):
        self._cost(x.shape[0], self.encode_s)
        return self.inner.encode(x)

    def decode(self, z):
        self._cost(z.shape[0], self.decode_s)
        return self.inner.decode(z)

    def nll(self, x, z):
        self._cost(z.shape[0], self.decode_s)
        return self.inner.nll(x, z)


def _vae(shape=(1, 8, 8), d: int = 2, likelihood: str = "bernoulli", **kw) -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(input_shape=shape, latent_dim=d, hidden=(16,), likelihood=likelihood, **kw)).eval()


def _data(n: int = 6000, shape=(1, 8, 8)) -> Dataset:  # 20% held out: 1,200 evaluation points
    return Dataset(x=(torch.rand(n, *shape, generator=torch.Generator().manual_seed(0)) > 0.5).float(), name="toy")


def _predicted(n: int, k: int, enc: float, dec: float, d: int) -> float:
    """The cost of a report under Costly, written out: n encodes, n k scored samples, the traversal
    images, n reconstructions and n prior samples (statistics and MI cost nothing on the fake clock)."""
    return n * enc + n * k * dec + (1 + d * TRAVERSAL_VALUES) * dec + 2 * n * dec


def _largest(lo: int, hi: int, ok) -> int | None:
    good = [v for v in range(lo, hi + 1) if ok(v)]
    return max(good) if good else None


# ------------------------------------------------------------------------------------------ the chooser
def _choose(available: float, *, n_max: int = TARGET_POINTS, k_max: int = TARGET_K, n_fixed=False, k_fixed=False):
    costs = Costs(encode=0.0, decode=0.0, iwae=1e-3, blur=0.0, mi=0.0)  # n k ms: nothing else costs
    return choose_settings(costs, available, n_max=n_max, k_max=k_max, n_fixed=n_fixed, k_fixed=k_fixed,
                           latent_dim=2)


def test_chooser_lowers_k_before_points_and_keeps_its_floors():
    assert SAFETY == 0.9 and (MIN_POINTS, MIN_K) == (100, 10)
    full = _choose(200.0)  # 1000 x 100 x 1 ms = 100 s <= 180 s
    assert (full.n_points, full.iwae_k, full.over_budget) == (1000, 100, False) and "fit" in full.reason
    k_low = _choose(50.5)  # 45.45 s usable: every point kept, k = 45
    assert (k_low.n_points, k_low.iwae_k) == (1000, 45) and "more points" in k_low.reason
    n_low = _choose(5.05)  # 4.545 s: even k = 10 on 1000 points (10 s) is too slow: 454 points at k = 10
    assert (n_low.n_points, n_low.iwae_k, n_low.over_budget) == (454, 10, False)
    floor = _choose(0.5)  # the floor (100 x 10 = 1 s) does not fit: it runs anyway, and says so
    assert (floor.n_points, floor.iwae_k, floor.over_budget) == (100, 10, True) and "over the budget" in floor.reason
    # given values are never changed
    assert (lambda c: (c.n_points, c.iwae_k))(_choose(5.05, k_max=100, k_fixed=True)) == (100, 100)
    assert _choose(5.05, k_max=100, k_fixed=True).over_budget  # 100 x 100 = 10 s > 4.5 s
    assert (lambda c: (c.n_points, c.iwae_k))(_choose(5.05, n_max=300, n_fixed=True)) == (300, 15)
    both = _choose(0.01, n_max=300, k_max=7, n_fixed=True, k_fixed=True)
    assert (both.n_points, both.iwae_k) == (300, 7) and both.reason == "n_points and iwae_k were given"
    # fewer evaluation points than the target: the floor is what there is
    few = _choose(0.001, n_max=40)
    assert (few.n_points, few.iwae_k, few.over_budget) == (40, 10, True)


# ------------------------------------------------------------------------------- diagnose on a fake clock
ENC, DEC = 1e-3, 1e-2  # seconds per point encoded, per image decoded or scored


def _slow(clock: FakeClock, shape=(1, 8, 8), **kw) -> Costly:
    return Costly(_vae(shape, **kw), clock, ENC, DEC)


def _iwae_chunk(rep, k: int, dec: float) -> float:
    """Fake seconds of one IWAE chunk with the blur of its points (k scored samples and 2 decodes a point)."""
    chunk = max(1, min(500, int(min(1.0, 0.01 * rep.budget_s) / (k * rep.pilot.costs.iwae))))
    return chunk * (k + 2) * dec


def test_slow_model_uses_its_budget_and_states_points_k_and_errors():
    clock = FakeClock()
    model, budget = _slow(clock), 30.0
    seen: list[tuple[str, float, float]] = []
    rep = diagnose(model, _data(), n_points=AUTO, iwae_k=AUTO, budget_s=budget, clock=clock,
                   progress=lambda e: seen.append((e.what, e.fraction, clock.t)))
    # what the pilot measured is exactly the wrapper's cost
    c = rep.pilot.costs
    assert c.encode == pytest.approx(ENC) and c.iwae == pytest.approx(DEC) and c.decode == pytest.approx(DEC)
    assert c.blur == 0 and c.mi == 0
    d = rep.to_dict()
    # k at its floor (every k from 10 on the 1,200 points is too slow), then the points as far as the budget goes
    assert rep.iwae_k == 10 and _predicted(1200, 10, ENC, DEC, 2) > budget
    n = rep.n_points
    assert d["points"] == {"encoder": 1200, "mutual_info": 1200, "iwae": n, "blur": n, "sensitivity_images": 19}
    # the budget is a bound: the IWAE stopped when its next chunk and the blur after it would pass the budget,
    # so the report ends inside the budget, less than one such chunk before it; every call was on the fake clock
    assert budget - _iwae_chunk(rep, 10, DEC) < d["seconds"] <= budget
    assert d["seconds"] == pytest.approx(rep.pilot.seconds + 1200 * ENC + 19 * DEC + n * (10 + 2) * DEC, rel=1e-9)
    assert 100 < n < 1200 and d["over_budget"] is False
    assert d["chosen_by"] == "budget" and d["n_points_chosen_by"] == "budget" and d["iwae_k_chosen_by"] == "budget"
    assert d["budget_s"] == budget and "k at its floor" in d["choice"]
    assert d["budget_cut"]["iwae"]["used"] == n and d["budget_cut"]["iwae"]["planned"] == 1200
    assert "would pass the budget" in d["budget_cut"]["iwae"]["reason"]
    # precision stated: standard errors of every Monte Carlo figure, and the settings in words
    for key in ("elbo_se", "recon_nll_se", "kl_se", "iwae_se", "mutual_info_se"):
        assert isinstance(d[key], float) and d[key] > 0, key
    assert d["figures"]["iwae"] == {"points": n, "samples": 10, "se": d["iwae_se"]}
    assert d["figures"]["kl"]["points"] == 1200 and d["figures"]["mutual_info"]["ceiling"] == math.log(1200)
    assert any(f"Used {n} points and k = 10" in note and f"--n-points {n} --iwae-k 10" in note for note in d["notes"])
    assert any(f"stopped early, on {n} of the 1200" in note for note in d["notes"])
    assert any("held-out split has 1200 points" in note for note in d["notes"])  # fewer than 2,000: said
    assert f"{n} points, k = 10, chosen by the time budget (30 s)" in rep.format_table()
    json.dumps(d, allow_nan=False)
    # progress: the pilot, the encoder-only parts, then the decoder-heavy ones; fractions never going back,
    # and never 2 s (fake) apart
    parts = [p for p, _, _ in seen]
    assert parts[0] == "pilot" and parts[-1] == "done"
    order = [p for i, p in enumerate(parts) if i == 0 or p != parts[i - 1]]
    assert order == ["pilot", "encode", "collapse", "mutual_info", "aggregate", "iwae", "blur", "done"]
    fracs = [f for _, f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0
    times = [t for _, _, t in seen]
    assert max(b - a for a, b in zip(times, times[1:])) <= 2.0


class SlowAfterPilot(Costly):
    """Costly, but every call after the pilot costs `factor` times as much (a model fast while timed)."""

    factor = 1.0

    def _cost(self, rows: int, each: float) -> None:
        super()._cost(rows, each * self.factor)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_model_slow_after_the_pilot_still_ends_within_its_budget(likelihood):
    clock, budget = FakeClock(), 10.0
    model = SlowAfterPilot(_vae(likelihood=likelihood), clock, 1e-4, 1e-3)

    def slow_after_pilot(e) -> None:
        model.factor = 1.0 if e.what == "pilot" else 10.0

    rep = diagnose(model, _data(15_000), n_points=AUTO, iwae_k=AUTO, budget_s=budget, clock=clock,
                   progress=slow_after_pilot)
    d = rep.to_dict()
    assert rep.pilot.costs.iwae == pytest.approx(1e-3)  # the pilot saw the fast model
    # the plan at the pilot's speed would have taken far longer at the real one; the bound held it:
    # within the budget + one chunk (at the slow speed) on the fake clock, and no more than one chunk short
    chunk = _iwae_chunk(rep, rep.iwae_k, 1e-2)
    assert budget - chunk < d["seconds"] <= budget + chunk
    cut = d["budget_cut"]["iwae"]
    assert cut["used"] == rep.n_points < cut["planned"] == 3000
    assert cut["slowdown_vs_pilot"] == pytest.approx(10.0)
    assert "10x the pilot's speed" in cut["reason"] and any("stopped early" in note for note in d["notes"])
    # k was chosen again before the IWAE at the decoder speed measured then (10x slower): its floor
    assert rep.iwae_k == 10 and "10x the pilot's" in d["iwae_k_choice"]
    # the encoder-only figures kept their 2,000-point floor; past it encoding stopped at its quarter of the budget
    # left after the pilot: 2,500 points at 1 ms (fake) each
    assert d["points"]["encoder"] == d["points"]["mutual_info"] == 2500
    assert d["budget_cut"]["encode"] == {"planned": 3000, "used": 2500,
                                         "reason": "encoding took 25% of the budget by then"}


def test_fast_model_keeps_the_full_settings_and_slowest_runs_one_chunk_over():
    clock = FakeClock()
    fast = Costly(_vae(), clock, 1e-7, 1e-7)
    rep = diagnose(fast, _data(), n_points=AUTO, iwae_k=AUTO, budget_s=60, clock=clock)
    assert (rep.n_points, rep.iwae_k, rep.chosen_by, rep.budget_cut) == (1200, TARGET_K, "budget", {})
    assert "fit the budget" in rep.choice

    clock = FakeClock()  # 2 s: every part cut to fit, inside the budget
    rep = diagnose(_slow(clock), _data(), n_points=AUTO, iwae_k=AUTO, budget_s=2.0, clock=clock)
    assert rep.iwae_k == MIN_K and not rep.over_budget and rep.seconds <= 2.0
    assert rep.n_points < MIN_POINTS and rep.points["encoder"] < 1200
    assert any("fewer than the floor of 100 points" in note for note in rep.notes)
    assert "encode" in rep.budget_cut and "short of the 2000 points" in rep.budget_cut["encode"]["reason"]

    clock = FakeClock()  # 0.5 s: the pilot alone passes it; each part then runs its first chunk only, and says so
    rep = diagnose(_slow(clock), _data(), n_points=AUTO, iwae_k=AUTO, budget_s=0.5, clock=clock)
    assert rep.pilot.seconds > 0.5 and rep.over_budget and rep.seconds > 0.5
    assert rep.n_points == 1  # one IWAE chunk: its aim, 0.005 s, holds less than one point at k = 10 x 10 ms
    assert any("over the 0.5 s budget" in note for note in rep.notes)


def test_a_slow_encoder_stops_short_of_2000_points_within_half_the_budget_and_says_so():
    """Encoding at 20 ms (fake) a point: 2,000 points would take 40 s of a 30 s budget. Encoding stops at the
    first call (16 points: about CALL_S of work) that starts past half the 30 s left after the pilot, and the
    notes say why; the MI takes those points (ceiling log N)."""
    clock = FakeClock()
    model = Costly(_vae(), clock, 2e-2, 1e-3)
    rep = diagnose(model, _data(15_000), n_points=AUTO, iwae_k=AUTO, budget_s=30, clock=clock)
    d = rep.to_dict()
    half = rep.pilot.seconds + 0.5 * (30 - rep.pilot.seconds)  # when encoding below the floor must stop
    n = next(s for s in range(0, 3000, 16) if rep.pilot.seconds + s * 2e-2 > half)
    assert d["points"]["encoder"] == d["points"]["mutual_info"] == n < 2000
    assert d["budget_cut"]["encode"]["used"] == n and "short of the 2000 points" in d["budget_cut"]["encode"]["reason"]
    assert d["mutual_info_max"] == pytest.approx(math.log(n), abs=1e-12)
    assert any("The encoder figures stopped early" in note for note in d["notes"])
    assert d["seconds"] <= 30 and not d["over_budget"]


def test_encoder_figures_use_every_held_out_point_against_a_float64_reference():
    """3,000 held-out points: KL per dimension over all of them (closed form recomputed here in float64 with
    torch.distributions), MI over one batch of all of them (ceiling log 3000), the bounds on what fits."""
    clock = FakeClock()
    data = _data(15_000)
    model = _slow(clock, d=3)
    rep = diagnose(model, data, n_points=AUTO, iwae_k=AUTO, budget_s=20, clock=clock)
    d = rep.to_dict()
    held_out = data.split(0.2, 0)[1]
    assert len(held_out) == 3000 and d["points"]["encoder"] == 3000 and d["points"]["mutual_info"] == 3000
    assert d["mutual_info_max"] == pytest.approx(math.log(3000), abs=1e-12)
    assert d["mutual_info_batch_size"] == 3000
    with torch.inference_mode():
        mu, logvar = model.inner.encode(held_out.x)
    q = torch.distributions.Normal(mu.double(), (0.5 * logvar.double()).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu.double()), torch.ones_like(mu.double()))
    kl = torch.distributions.kl_divergence(q, p)  # (3000, D)
    assert d["kl_per_dim"] == pytest.approx(kl.mean(0).tolist(), rel=1e-4, abs=1e-6)
    assert d["kl"] == pytest.approx(float(kl.sum(1).mean()), rel=1e-4, abs=1e-6)
    assert d["kl_se"] == pytest.approx(float(kl.sum(1).std() / math.sqrt(3000)), rel=1e-3)
    assert d["points"]["iwae"] < 3000
    # Var(mu_j) over all 3,000 points: Burda's activity
    assert d["collapse"]["activity"] == pytest.approx(mu.double().var(0, unbiased=False).tolist(), rel=1e-4,
                                                      abs=1e-9)


def test_given_values_are_honoured():
    clock = FakeClock()
    rep = diagnose(_slow(clock), _data(), n_points=50, iwae_k=7, budget_s=0.01, clock=clock)
    d = rep.to_dict()
    assert (d["n_points"], d["iwae_k"], d["chosen_by"], d["pilot"]) == (50, 7, "given", None)
    assert d["budget_s"] == 0.01 and any("did not change them" in note for note in d["notes"])
    assert d["seconds"] == pytest.approx(_predicted(50, 7, ENC, DEC, 2), rel=1e-9)  # no pilot ran
    assert d["budget_cut"] == {} and d["points"]["encoder"] == d["points"]["iwae"] == 50

    clock = FakeClock()  # the points given, k chosen: k lowered to fit, the 300 points kept
    rep = diagnose(_slow(clock), _data(), n_points=300, iwae_k=AUTO, budget_s=100, clock=clock)
    limit = SAFETY * (100 - rep.pilot.seconds)
    k = _largest(10, 100, lambda v: _predicted(300, v, ENC, DEC, 2) <= limit)
    assert k is not None and 10 < k < 100
    assert (rep.n_points, rep.iwae_k, rep.n_points_chosen_by, rep.iwae_k_chosen_by) == (300, k, "given", "budget")

    clock = FakeClock()  # k given, the points chosen: as many as the budget allows, k kept
    rep = diagnose(_slow(clock), _data(), n_points=AUTO, iwae_k=40, budget_s=100, clock=clock)
    n = rep.n_points
    assert 100 < n < 1200 and rep.iwae_k == 40 and 100 - _iwae_chunk(rep, 40, DEC) < rep.seconds <= 100
    assert (rep.n_points_chosen_by, rep.iwae_k_chosen_by) == ("budget", "given")

    # no budget and both given: the old call, unchanged
    rep = diagnose(_vae(), _data(600), n_points=20, iwae_k=3)
    assert (rep.n_points, rep.iwae_k, rep.chosen_by, rep.budget_s) == (20, 3, "given", None)
    with pytest.raises(ValueError, match="budget_s"):
        diagnose(_vae(), _data(600), n_points=AUTO, budget_s=0)
    with pytest.raises(ValueError, match="n_points"):
        diagnose(_vae(), _data(600), n_points="many")


def test_model_calls_stay_small_on_64x64_images():
    """k x batch is never decoded at once: every call holds at most row_limit(64 x 64) = 128 images."""
    clock = FakeClock()
    model = _slow(clock, shape=(1, 64, 64), d=3)
    rep = diagnose(model, _data(1500, (1, 64, 64)), n_points=300, iwae_k=50, clock=clock)
    assert rep.n_points == 300 and rep.rows_per_call == row_limit(64 * 64) == 128
    assert model.max_rows == 128  # 300 x 50 = 15,000 samples, 128 at a time


# ------------------------------------------------------------------------ chunked IWAE = unchunked IWAE
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_chunked_iwae_equals_unchunked(likelihood):
    model = _vae(likelihood=likelihood, gaussian_scale=0.3)
    x = torch.rand(37, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        mu, logvar = model.encode(x)
    k = 11
    whole = point_bounds(model, x, mu, logvar, k, batch_size=64, generator=torch.Generator().manual_seed(5),
                          max_rows=10 ** 6)
    pieces = point_bounds(model, x, mu, logvar, k, batch_size=64, generator=torch.Generator().manual_seed(5),
                           max_rows=5, store_budget=0)  # 5 images per call; calibrated: drawn again
    # the unchunked reference: all k x N log-weights at once, one logsumexp
    log_w = _log_weights(model, x, mu, logvar, k, generator=torch.Generator().manual_seed(5), max_rows=10 ** 6)
    ref_iwae = torch.logsumexp(log_w, 0) - math.log(k)
    for pts in (whole, pieces):
        torch.testing.assert_close(pts.iwae, torch.maximum(ref_iwae, log_w.mean(0)), rtol=0, atol=1e-5)
        torch.testing.assert_close(pts.elbo, log_w.mean(0), rtol=0, atol=1e-5)
    if likelihood == "gaussian":
        assert pieces.redrawn and not whole.redrawn
        torch.testing.assert_close(pieces.iwae_cal, whole.iwae_cal, rtol=0, atol=1e-5)
        torch.testing.assert_close(pieces.elbo_cal, whole.elbo_cal, rtol=0, atol=1e-5)
        assert pieces.calibrated_scale == pytest.approx(whole.calibrated_scale, rel=1e-9)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_iwae_stopped_after_a_chunk_is_exact_on_the_points_it_scored(likelihood):
    """A stop after 2 noise blocks of 10 points: the result is those 20 points, each with all its k samples,
    equal to the unchunked log-weights of the same draws (blocks drawn in order from the generator)."""
    model = _vae(likelihood=likelihood, gaussian_scale=0.3)
    x = torch.rand(45, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        mu, logvar = model.encode(x)
    k, asked = 6, []
    pts = point_bounds(model, x, mu, logvar, k, batch_size=10, generator=torch.Generator().manual_seed(9),
                        max_rows=7, store_budget=0, stop=lambda done: asked.append(done) or done >= 20)
    assert asked == [10, 20] and pts.iwae.shape == pts.elbo.shape == pts.kl.shape == (20,)
    gen = torch.Generator().manual_seed(9)
    log_w = torch.cat([_log_weights(model, x[s:s + 10], mu[s:s + 10], logvar[s:s + 10], k, generator=gen,
                                    max_rows=10 ** 6) for s in (0, 10)], 1)  # (k, 20)
    torch.testing.assert_close(pts.iwae, torch.logsumexp(log_w, 0) - math.log(k), rtol=0, atol=1e-5)
    torch.testing.assert_close(pts.elbo, log_w.mean(0), rtol=0, atol=1e-5)
    if likelihood == "gaussian":  # the calibrated scale from those 20 points' squared errors, drawn again
        assert pts.redrawn
        with torch.inference_mode():
            gen = torch.Generator().manual_seed(9)
            sse = []
            for s in (0, 10):
                eps = torch.randn(k, 10, mu.shape[1], generator=gen)
                z = mu[s:s + 10] + (0.5 * logvar[s:s + 10]).exp() * eps  # (k, 10, D)
                mean = model.decode(z.reshape(-1, mu.shape[1])).reshape(k, 10, -1).double()
                sse.append((x[s:s + 10].reshape(1, 10, -1).double() - mean).pow(2).sum(-1))
        mse = float(torch.cat(sse, 1).sum()) / (k * 20 * 64)
        assert pts.calibrated_scale == pytest.approx(math.sqrt(mse), rel=1e-5)


def test_mi_over_one_batch_of_n_points_has_ceiling_log_n_and_matches_float64():
    """MI over one batch of all N points, streamed over chunks of k (here one column at a time), against the
    estimator written out in float64 numpy on hand-made posteriors: ceiling log N."""
    from scipy.special import logsumexp

    from vae_core.metrics.mutual_info import mutual_info_core

    rng = np.random.default_rng(4)
    n, d = 40, 3
    mu = rng.normal(0, 2, size=(n, d))
    logvar = rng.uniform(-8, 0.5, size=(n, d))
    eps = rng.standard_normal((n, d))
    z = mu + np.exp(0.5 * logvar) * eps
    # log N(z_i; mu_k, sigma_k^2), summed over dims, for every pair: (N, N)
    log_q = -0.5 * (((z[:, None, :] - mu[None]) ** 2) / np.exp(logvar)[None] + logvar[None]
                    + math.log(2 * math.pi)).sum(-1)
    terms = (-0.5 * d * math.log(2 * math.pi) - 0.5 * (1 + logvar).sum(1)) - (logsumexp(log_q, 1) - math.log(n))
    for chunk in (1, 3 * n * d, 10 ** 6):
        r = mutual_info_core(mu, logvar, eps=eps, batch_size=n, chunk_elements=chunk)
        assert r.log_b == pytest.approx(math.log(n), abs=1e-12) and (r.batch_size, r.n_batches) == (n, 1)
        assert r.unclipped == pytest.approx(float(terms.mean()), rel=1e-9, abs=1e-9)
        assert r.mi == pytest.approx(min(float(terms.mean()), math.log(n)), rel=1e-9, abs=1e-9)
        assert r.se == pytest.approx(float(terms.std(ddof=1) / math.sqrt(n)), rel=1e-6)


# ------------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    from vae_core import cli

    out = tmp_path_factory.mktemp("budget") / "run"
    assert cli.main(["train", "--data", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden", "8",
                     "--out", str(out), "--quiet"]) == 0
    return out


def test_cli_budget_progress_bar_on_stderr_and_one_json_object(digits_run, capsys):
    from vae_core import cli

    capsys.readouterr()
    assert cli.main(["diagnose", str(digits_run), "--data", "digits", "--json", "--budget", "45", "--progress"]) == 0
    out, err = capsys.readouterr()
    rep = json.loads(out)  # the whole of stdout is one JSON object
    assert out.count("\n") == 1 and isinstance(rep, dict)
    assert rep["budget_s"] == 45 and rep["chosen_by"] == "budget" and rep["pilot"] is not None
    assert rep["n_points"] >= 100 and rep["iwae_k"] >= 10 and rep["iwae_se"] is not None
    assert "diagnose pilot:" in err and "%|" in err  # the bar and its parts, on stderr

    # --points (alias of --n-points) and --iwae-k given: used as given; no bar on a non-terminal by default
    assert cli.main(["diagnose", str(digits_run), "--data", "digits", "--json", "--points", "50", "--iwae-k", "5"]) == 0
    out, err = capsys.readouterr()
    rep = json.loads(out)
    assert (rep["n_points"], rep["iwae_k"], rep["chosen_by"]) == (50, 5, "given") and "%|" not in err

    assert cli.main(["diagnose", str(digits_run), "--data", "digits", "--budget", "30", "--quiet",
                     "--progress"]) == 0
    out, err = capsys.readouterr()
    assert "Settings:" in out and "time budget (30 s)" in out and "%|" not in err

    assert cli.main(["diagnose", str(digits_run), "--data", "digits", "--budget", "-1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "--budget" in err


# ------------------------------------------------------------------------------------------------ page
def _settings(at: AppTest) -> tuple[int, int, str]:
    """(points, k, caption) from the summary caption's settings sentence."""
    cap = next(c.value for c in at.caption if "Settings:" in c.value)
    m = re.search(r"Settings: (\d+) points and k = (\d+)", cap)
    return int(m.group(1)), int(m.group(2)), cap


def test_page_k_is_auto_by_default_and_the_caption_says_what_each_figure_used():
    at = settle(AppTest.from_file(DIAGNOSE, default_timeout=300).run())
    assert not at.exception, [e.value for e in at.exception]
    k_box = at.selectbox(key="diag_iwae_k")
    assert k_box.value == "auto" and k_box.options == ["auto (fit the budget)", "10", "100", "1000"]
    control = at.number_input(key="diag_budget")
    assert control.value == 60
    n60, k60, cap60 = _settings(at)
    assert 10 <= k60 <= 100 and "(chosen) for the bounds, under the 60 s time budget" in cap60
    assert "Points per figure: KL, collapse views and aggregate posterior 1000" in cap60  # the whole held-out split
    assert f"ELBO and IWAE {n60} (k = {k60} samples each)" in cap60
    at = settle(control.set_value(1).run())
    assert not at.exception, [e.value for e in at.exception]
    n1, k1, cap1 = _settings(at)
    assert "under the 1 s time budget" in cap1 and cap1 != cap60
    assert any("±" in c.value for c in at.caption), "figures keep their standard errors"
    at = settle(at.selectbox(key="diag_iwae_k").set_value(100).run())  # a given k is used as given
    assert not at.exception, [e.value for e in at.exception]
    n, k, cap = _settings(at)
    assert k == 100 and "k = 100 (given)" in cap
