"""InfoMEC and DCI (vae_core/metrics/infomec_dci.py; docs/science.md "Disentanglement"): the scores
from hand-made matrices equal hand-computed values; on planted codes the estimators give the known
answers (codes equal to the factors: every score near 1); and MIG, InfoM and DCI's D rank an
entangled and a disentangled planted encoder the same way."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vae_core.metrics.infomec_dci import dci_from_importance, disentanglement, infom_infoc
from vae_core.metrics.mig import mig_core


def test_infom_infoc_by_hand():
    assert infom_infoc(np.eye(2)) == (1.0, 1.0)
    assert infom_infoc(np.full((2, 2), 0.5)) == (0.0, 0.0)
    # latent 0 about factor 0 only (share 1 / 1.5), latent 1 about factor 1 only (share 1): mean 5/6,
    # InfoM = (5/6 - 1/2) / (1/2) = 2/3; factor 0 all in latent 0 (share 1), factor 1 split (1/2):
    # InfoC = (3/4 - 1/2) / (1/2) = 1/2
    m, c = infom_infoc(np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert m == pytest.approx(2 / 3, abs=1e-12) and c == pytest.approx(0.5, abs=1e-12)
    # a pruned latent is left out: the third column would otherwise count
    m, c = infom_infoc(np.array([[1.0, 0.0, 0.3], [0.0, 1.0, 0.3]]), active=[True, True, False])
    assert (m, c) == (1.0, 1.0)
    assert infom_infoc(np.array([[1.0, 0.0]]))[0] is None  # one factor: InfoM undefined
    assert infom_infoc(np.array([[1.0], [0.5]]))[1] is None  # one latent: InfoC undefined


def test_dci_by_hand():
    assert dci_from_importance(np.eye(2)) == (1.0, 1.0)
    # one latent mixes the two factors equally, the other does nothing: D = 0 (its row has entropy
    # 1 bit), C = 1 (each factor's column is all in that latent)
    d, c = dci_from_importance(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(0.0, abs=1e-12) and c == pytest.approx(1.0, abs=1e-12)
    # R = [[2, 1], [0, 1]]: row 0 (2/3, 1/3) weight 3/4, row 1 (0, 1) weight 1/4; columns (1, 0) and (1/2, 1/2)
    h = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    d, c = dci_from_importance(np.array([[2.0, 1.0], [0.0, 1.0]]))
    assert d == pytest.approx(0.75 * (1 - h) + 0.25, abs=1e-12) and c == pytest.approx(0.5, abs=1e-12)
    assert dci_from_importance(np.zeros((2, 2))) == (None, None)


def _factors(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 4, n), rng.integers(0, 5, n)], 1)


def test_codes_equal_to_the_factors_score_one():
    f = _factors(300)
    r = disentanglement(f.astype(float), f, resamples=2)
    s = r.scores
    assert s["dci_d"] > 0.95 and s["dci_c"] > 0.95 and s["dci_i"] > 0.98, s
    assert s["infom"] > 0.95 and s["infoc"] > 0.95 and s["infoe"] > 0.95, s
    assert np.all(r.active) and r.nmi.shape == (2, 2) and r.importance.shape == (2, 2)
    assert all(r.se[k] is not None and 0 <= r.se[k] < 0.1 for k in r.se), r.se
    # a code that mixes the two factors equally (z = f0 + f1, plus a dead latent pruned by its range)
    # against the same factors: one latent about both, so InfoM and D are low while C stays high
    z = np.stack([f[:, 0] + f[:, 1], 1e-4 * np.random.default_rng(1).standard_normal(len(f))], 1).astype(float)
    r = disentanglement(z, f, resamples=0)
    assert list(r.active) == [True, False]
    assert r.scores["infom"] < 0.5 and r.scores["dci_d"] < 0.5, r.scores
    assert r.scores["infoc"] is None  # one kept latent
    assert r.se["infom"] is None  # no resamples, no standard error


def test_mig_infom_and_dci_rank_entangled_and_disentangled_encoders_alike():
    f = _factors(400, seed=2)
    rng = np.random.default_rng(3)
    std = (f - f.mean(0)) / f.std(0)
    clean = std + 0.05 * rng.standard_normal(std.shape)  # one latent per factor
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    mixed = clean @ np.array([[c, -s], [s, c]])  # each latent half of each factor
    a, b = disentanglement(clean, f, resamples=0).scores, disentanglement(mixed, f, resamples=0).scores
    mig_a, mig_b = mig_core(clean, f).mig, mig_core(mixed, f).mig
    assert mig_a > mig_b and a["infom"] > b["infom"] and a["dci_d"] > b["dci_d"], (mig_a, mig_b, a, b)


def test_bad_input():
    with pytest.raises(ValueError):
        disentanglement(np.zeros((10, 2)), np.zeros((9, 1), int))
    few = disentanglement(np.arange(10.0).reshape(5, 2), np.array([[0], [1], [0], [1], [0]]))
    assert few.n_points == 5 and all(v is None for v in few.scores.values())  # below MIN_POINTS: no score


def test_a_time_budget_stops_the_half_samples_and_says_how_many_ran():
    """diagnose's clock refuses after two half-samples: the scores stay, the SE comes from the two that
    ran, and `resamples` says 2; refused at once, there is no SE (one half-sample cannot give one)."""
    f = _factors(200, seed=5)
    asked = []

    def two(seconds: float) -> bool:
        asked.append(seconds)
        return len(asked) <= 2

    full = disentanglement(f.astype(float), f, resamples=4)
    r = disentanglement(f.astype(float), f, resamples=4, go_on=two)
    assert r.resamples == 2 and len(asked) == 3 and all(s > 0 for s in asked)
    assert r.scores == full.scores  # the scores themselves never depend on the budget
    assert all(r.se[k] is not None for k in r.se)
    none = disentanglement(f.astype(float), f, resamples=4, go_on=lambda s: False)
    assert none.resamples == 0 and all(v is None for v in none.se.values()) and none.scores == full.scores
