"""The planted linear-Gaussian data set and the linear theory (vae_core/data/planted.py,
vae_core/metrics/theory.py; docs/science.md "Theory checks"): the sample spectrum matches the planted
one within sampling error (numpy float64 here), the prediction matches closed forms on hand-made
spectra, and a linear VAE trained on the planted data has the predicted active units and KLs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from linear_vae import fit_linear_vae

from vae_core.data import BUILTIN, load_dataset
from vae_core.data.planted import NOISE, OFFSET, PLANTED_SPECTRUM, SCALE, SPECTRUM, directions, make_planted
from vae_core.metrics.collapse import KL_THRESHOLD
from vae_core.metrics.theory import data_spectrum, linear_prediction


def _flat64(data) -> np.ndarray:
    return data.x.reshape(len(data), -1).numpy().astype(np.float64)


# ------------------------------------------------------------------------------------------- planted
def test_planted_is_builtin_with_its_true_spectrum():
    assert "planted" in BUILTIN
    d = load_dataset("planted")
    assert d.shape == (1, 8, 8) and len(d) == 10_000 and d.name == "planted"
    x = d.x.numpy()
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert d.meta["clipped"] == 0, "the shipped draw needs no clipping: its spectrum is the planted one"
    # the meta's spectrum is the planted one times the affine factor squared, stated exactly
    want = [SCALE ** 2 * v for v in (9.0, 6.0, 4.0, 2.5)] + [SCALE ** 2 * 0.2] * 60
    np.testing.assert_allclose(d.meta["spectrum"], want, rtol=1e-15)
    np.testing.assert_allclose(d.meta["spectrum"], SPECTRUM, rtol=0)
    u = directions()
    np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-15)
    assert np.all(np.abs(u) == 1 / 8), "Walsh directions: every pixel has the same variance"
    sub = load_dataset("planted", n=300, seed=4)
    assert len(sub) == 300 and sub.meta["spectrum"] == d.meta["spectrum"]


def test_sample_spectrum_matches_the_planted_one():
    d = make_planted(n=10_000, seed=0)
    x = _flat64(d)
    n, p = x.shape
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False, ddof=0))[::-1]  # independent float64 reference
    true = np.array(SPECTRUM)
    # strong directions: a sample eigenvalue's sd is lambda sqrt(2/n) (Anderson 1963); 5 sd
    np.testing.assert_allclose(lam[:4], true[:4], rtol=5 * math.sqrt(2 / n))
    # the 60 noise eigenvalues lie inside the Marchenko-Pastur support, widened by 5%
    ratio = p / n
    lo, hi = SCALE ** 2 * NOISE * (1 - math.sqrt(ratio)) ** 2, SCALE ** 2 * NOISE * (1 + math.sqrt(ratio)) ** 2
    assert np.all(lam[4:] > 0.95 * lo) and np.all(lam[4:] < 1.05 * hi), (lam[4:].min(), lam[4:].max(), lo, hi)
    assert abs(lam[4:].mean() - true[4]) < 0.02 * true[4]
    # the planted directions are the top eigenvectors: the covariance along them is their eigenvalue
    u = directions()
    along = np.einsum("ip,pq,iq->i", u, np.cov(x, rowvar=False, ddof=0), u)
    np.testing.assert_allclose(along, true[:4], rtol=5 * math.sqrt(2 / n))
    # the mean is the offset
    assert np.abs(x.mean(0) - OFFSET).max() < 5 * math.sqrt(x.var(0).max() / n)
    # and data_spectrum gives the same numbers
    np.testing.assert_allclose(data_spectrum(d.x, max_points=n), lam, rtol=1e-9, atol=1e-15)


# -------------------------------------------------------------------------------------- prediction
def test_linear_prediction_closed_forms():
    out = linear_prediction([9.0, 6.0, 4.0, 2.5] + [0.2] * 60, 0.75)
    assert out["active"] == 4 and out["threshold"] == 0.75
    np.testing.assert_allclose(out["kl_per_dim_pred"], [0.5 * math.log(v / 0.75) for v in (9, 6, 4, 2.5)], rtol=1e-15)
    # beta raises the threshold: beta sigma^2 = 3 leaves 9, 6, 4
    out = linear_prediction([2.5, 9.0, 0.2, 4.0, 6.0], 0.75, beta=4)  # any order in
    assert out["active"] == 3 and out["threshold"] == 3.0
    np.testing.assert_allclose(out["kl_per_dim_pred"], [0.5 * math.log(3), 0.5 * math.log(2), 0.5 * math.log(4 / 3)])
    # strictly above: an eigenvalue equal to beta sigma^2 is not active; none above: nothing
    assert linear_prediction([2.0, 1.0, 1.0], 1.0)["active"] == 1
    assert linear_prediction([0.5, 0.1], 1.0) == {"active": 0, "kl_per_dim_pred": [], "threshold": 1.0}
    # the affine map of the planted data scales both sides by SCALE^2: the same prediction
    a = linear_prediction(SPECTRUM, SCALE ** 2 * 0.75)
    b = linear_prediction(list(PLANTED_SPECTRUM) + [NOISE] * 60, 0.75)
    assert a["active"] == b["active"] == 4
    np.testing.assert_allclose(a["kl_per_dim_pred"], b["kl_per_dim_pred"], rtol=1e-12)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            linear_prediction([1.0], bad)
    with pytest.raises(ValueError):
        linear_prediction([1.0], 1.0, beta=0)


def test_data_spectrum_on_hand_made_arrays():
    # two points: the covariance of [[0, 0], [2, 4]] is [[1, 2], [2, 4]] (1/N): eigenvalues 5 and 0
    np.testing.assert_allclose(data_spectrum(np.array([[0.0, 0.0], [2.0, 4.0]])), [5.0, 0.0], atol=1e-12)
    # images (N, C, H, W) are flattened; a tensor works as an array does
    rng = np.random.default_rng(0)
    x = rng.random((500, 1, 3, 3)).astype(np.float32)
    ref = np.linalg.eigvalsh(np.cov(x.reshape(500, -1).astype(np.float64), rowvar=False, ddof=0))[::-1]
    np.testing.assert_allclose(data_spectrum(torch.from_numpy(x)), ref, rtol=1e-9)
    # a sample of max_points points (seeded): the spectrum of exactly those points
    got = data_spectrum(x, max_points=100, seed=3)
    idx = np.sort(np.random.default_rng(3).choice(500, 100, replace=False))
    sub = x[idx].reshape(100, -1).astype(np.float64)
    np.testing.assert_allclose(got, np.linalg.eigvalsh(np.cov(sub, rowvar=False, ddof=0))[::-1], rtol=1e-9)
    with pytest.raises(ValueError):
        data_spectrum(x[:1])


def test_data_spectrum_top_k_beyond_exact_size():
    # P = 1030 > EXACT_UP_TO: the top k by randomized SVD, against numpy's eigh in float64
    rng = np.random.default_rng(1)
    n, p = 300, 1030
    q, _ = np.linalg.qr(rng.standard_normal((p, 5)))
    x = rng.standard_normal((n, 5)) * np.array([5.0, 4.0, 3.0, 2.0, 1.5]) @ q.T + 0.1 * rng.standard_normal((n, p))
    ref = np.linalg.eigvalsh(np.cov(x, rowvar=False, ddof=0))[::-1]
    got = data_spectrum(x, top_k=8)
    assert got.shape == (8,)
    np.testing.assert_allclose(got[:5], ref[:5], rtol=1e-6)
    np.testing.assert_allclose(got, ref[:8], rtol=0.05)


# -------------------------------------------------------------------- a linear VAE on planted data
SIGMA2 = SCALE ** 2 * 0.75  # docs/science.md's measurement: sigma^2 = 0.75 before the affine map
LATENT, STEPS, LR = 8, 600, 3e-2  # cosine decay; measured on 7 draws: within 1.6% at beta = 1, 1e-4 at 4


def _train_linear_vae(x: torch.Tensor, sigma2: float, beta: float = 1.0) -> np.ndarray:
    """KL per dimension (nats, mean over points) of a linear VAE trained to its optimum on x (N, P)
    (tests/linear_vae.py)."""
    mu, lv = fit_linear_vae(x, sigma2, beta, LATENT, STEPS, LR)
    return (0.5 * (mu ** 2 + np.exp(lv) - lv - 1)).mean(0)


@pytest.mark.parametrize("beta, want", [(1.0, 4), (4.0, 3)])
def test_linear_vae_on_planted_data_matches_the_prediction(beta, want):
    d = make_planted(n=1000, seed=1)
    pred = linear_prediction(data_spectrum(d.x), SIGMA2, beta)  # the sample's spectrum, in pixel space
    assert pred["active"] == want == linear_prediction(SPECTRUM, SIGMA2, beta)["active"]
    # Trained on (x - OFFSET) / SCALE with sigma^2 / SCALE^2: the same model in better-conditioned
    # coordinates (the affine map is absorbed by the encoder's and decoder's weights; each KL is unchanged).
    x = (torch.from_numpy(_flat64(d)) - OFFSET) / SCALE
    kl = np.sort(_train_linear_vae(x, SIGMA2 / SCALE ** 2, beta))[::-1]
    assert int(np.sum(kl >= KL_THRESHOLD)) == pred["active"], kl  # the project's rule: KL_j >= 0.01 nats
    # tolerance: 3% per active dimension (measured within 1.6% on 7 draws), collapsed ones below 1e-3 nats
    np.testing.assert_allclose(kl[:want], pred["kl_per_dim_pred"], rtol=0.03)
    assert kl[want:].max() < 1e-3


# ------------------------------------------------------------------ the panel's figure and words
def test_theory_figure_draws_the_spectrum_line_and_kls():
    from explorer.figures import theory_spectrum_figure

    lam = np.array([0.09, 0.06, 0.04, 0.025] + [0.002] * 60)
    kl = np.array([1.1, 0.9, 0.7, 0.45, 0.004, 0.0])
    pred = linear_prediction(lam, 0.01)["kl_per_dim_pred"]
    fig = theory_spectrum_figure(lam, 0.01, kl, pred, threshold_name="beta sigma^2 = 0.01")
    bars, line, meas, predicted = fig.data
    assert list(bars.x) == list(range(1, 31)) and np.allclose(bars.y, lam[:30]), "the largest 30, from 1"
    assert list(bars.marker.color[:5]) == ["#1f77b4"] * 4 + ["#b0b0b0"], "blue above the line, grey below"
    assert list(line.y) == [0.01, 0.01] and line.name == "beta sigma^2 = 0.01"
    assert meas.yaxis == predicted.yaxis == "y2"
    assert np.allclose(meas.y, kl) and list(meas.x) == [1, 2, 3, 4, 5, 6]
    assert np.allclose(predicted.y, [0.5 * math.log(v / 0.01) for v in lam[:4]])
    assert fig.layout.yaxis.type == "log"


def test_theory_words_say_what_a_mismatch_suggests():
    from explorer.diagnose_ui import theory_words

    assert "They agree" in theory_words(4, 4, 8)
    fewer = theory_words(4, 2, 8)
    assert "predicts **4** active dimensions; the model has **2**" in fewer
    assert "optimisation problem" in fewer and "non-linearity" in fewer
    assert "non-linearity at work" in theory_words(4, 6, 8)
    capped = theory_words(10, 6, 6)  # more directions than latents: at most 6, and 6 is agreement
    assert "more than the model's 6 latents" in capped and "They agree" in capped
    assert "predicts **1** active dimension;" in theory_words(1, 1, 4)
