"""Issue #9, "a researcher's own model: trust every number": the diagnose figures checked against
references written independently here.

- Mutual information with sharp posteriors (logvar down to -60) against scipy in float64, and
  against mpmath where only the noise form of the sample is exact;
- standard errors of every Monte Carlo figure against numpy on per-point values recomputed here;
- Gaussian decoders without a declared scale scored at the calibrated scale (Rybkin et al. 2021)
  against the closed form 0.5 * P * (1 + log(2 pi s^2)) on hand-made arrays;
- held-out points of a run trained on `--n` of a dataset are never training points.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm
from torch import nn
from torch.distributions import Normal

from vae_core import VAE, ModelConfig, ScriptedVAE
from vae_core.data import Dataset, load_dataset
from vae_core.metrics import diagnose, log_likelihood_bounds
from vae_core.metrics.gaussian_scale import calibrated_recon_nll, calibrated_scale, decoder_scale, gaussian_log_px
from vae_core.metrics.iwae import point_bounds
from vae_core.metrics.mutual_info import mutual_info_core
from vae_core.metrics.pipeline.heldout import eval_points, training_pool

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
LOG_2PI = math.log(2 * math.pi)


# ----------------------------------------------------------------------------- references
def _mi_terms_scipy(mu: np.ndarray, logvar: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-point terms of He et al.'s estimator on one batch, by a plain double loop over scipy."""
    b, d = mu.shape
    sd = np.exp(0.5 * logvar)
    log_q = np.empty((b, b))
    for i in range(b):
        for k in range(b):
            log_q[i, k] = norm.logpdf(z[i], loc=mu[k], scale=sd[k]).sum()
    neg_entropy = -0.5 * d * LOG_2PI - 0.5 * (1 + logvar).sum(1)
    return neg_entropy - (logsumexp(log_q, axis=1) - math.log(b))


def _sharp_posteriors(seed: int, b: int = 12, d: int = 3):
    """Planted posteriors: means spread over [-3, 3], logvar from -60 to 1, a third of rows at -60."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-3, 3, size=(b, d))
    logvar = rng.uniform(-60, 1, size=(b, d))
    logvar[:: 3] = -60.0
    eps = rng.standard_normal((b, d))
    return mu, logvar, eps


def _se(v) -> float:
    v = np.asarray(v, dtype=np.float64)
    return float(v.std(ddof=1) / math.sqrt(v.size))


# ----------------------------------------------------------------------------- mutual information
@pytest.mark.parametrize("seed", range(4))
def test_mi_sharp_posteriors_match_scipy_float64(seed):
    mu, logvar, eps = _sharp_posteriors(seed)
    z = mu + np.exp(0.5 * logvar) * eps  # float64, given as is to both
    ref_terms = _mi_terms_scipy(mu, logvar, z)
    ref = ref_terms.mean()
    r = mutual_info_core(mu, logvar, z=z, batch_size=len(mu))
    assert r.unclipped == pytest.approx(ref, rel=1e-6)
    assert r.mi <= r.log_b == pytest.approx(math.log(len(mu)))  # never above log B
    assert r.mi == pytest.approx(min(ref, math.log(len(mu))), rel=1e-6)
    assert r.se == pytest.approx(_se(ref_terms), rel=1e-6)
    assert r.mi > -1.0


def test_mi_sharp_posteriors_in_batches_and_small_chunks():
    """Two batches, and chunks of one k column at a time (bounded memory): the same per-point terms."""
    mu, logvar, eps = _sharp_posteriors(7, b=20)
    z = mu + np.exp(0.5 * logvar) * eps
    ref_terms = np.concatenate([_mi_terms_scipy(mu[:10], logvar[:10], z[:10]),
                                _mi_terms_scipy(mu[10:], logvar[10:], z[10:])])
    for chunk in (1, 7, 1 << 22):
        r = mutual_info_core(mu, logvar, z=z, batch_size=10, chunk_elements=chunk)
        assert r.n_batches == 2 and r.batch_size == 10
        assert r.unclipped == pytest.approx(ref_terms.mean(), rel=1e-6)
        assert r.se == pytest.approx(_se(ref_terms), rel=1e-6)
        assert r.mi <= math.log(10)


def test_mi_from_noise_is_exact_where_z_cannot_be_stored():
    """z = mu + sigma * eps with sigma = e^-30 is mu to float64 resolution; given eps, the estimate
    matches a 50-digit mpmath reference (the estimator in float32 z was off by D/2 per point)."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    mu, logvar, eps = _sharp_posteriors(3, b=8)
    b, d = mu.shape
    mpf = mpmath.mpf
    sd = [[mpmath.exp(mpf(lv) / 2) for lv in row] for row in logvar]
    z = [[mpf(mu[i, j]) + sd[i][j] * mpf(eps[i, j]) for j in range(d)] for i in range(b)]
    terms = []
    for i in range(b):
        log_q = [sum(-((z[i][j] - mpf(mu[k, j])) / sd[k][j]) ** 2 / 2 - mpf(logvar[k, j]) / 2
                     - mpmath.log(2 * mpmath.pi) / 2 for j in range(d)) for k in range(b)]
        log_qz = mpmath.log(sum(mpmath.exp(v) for v in log_q)) - mpmath.log(b)
        neg_h = -mpf(d) / 2 * mpmath.log(2 * mpmath.pi) - sum(1 + mpf(lv) for lv in logvar[i]) / 2
        terms.append(neg_h - log_qz)
    ref = float(sum(terms) / b)
    r = mutual_info_core(mu, logvar, eps=eps, batch_size=b)
    assert r.unclipped == pytest.approx(ref, rel=1e-6)
    assert r.mi <= math.log(b)
    # float32 mu and eps (what diagnose has) give the same answer on the float32-rounded inputs
    mu32, lv32, eps32 = (torch.tensor(a, dtype=torch.float32) for a in (mu, logvar, eps))
    r32 = mutual_info_core(mu32, lv32, eps=eps32, batch_size=b)
    ref32 = mutual_info_core(mu32.double(), lv32.double(), eps=eps32.double(), batch_size=b)
    assert r32.unclipped == ref32.unclipped


# ----------------------------------------------------------------------------- standard errors
def _tiny_vae(likelihood: str = "bernoulli", **kw) -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), likelihood=likelihood, **kw)).eval()


def _grey_data(n: int = 50, seed: int = 0) -> Dataset:
    return Dataset(x=torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)), name="toy")


def _reference_log_w(model, x: torch.Tensor, k: int, seed: int, batch_size: int):
    """log w (k, N) and KL (N,), written out with torch.distributions, drawing the noise in the
    order diagnose does (per batch of points, a (k, B, D) block)."""
    g = torch.Generator().manual_seed(seed)
    log_w, kls = [], []
    with torch.inference_mode():
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            mu, logvar = model.encode(xb)
            q = Normal(mu.double(), torch.exp(0.5 * logvar.double()))
            eps = torch.randn(k, *mu.shape, generator=g)
            z = mu + torch.exp(0.5 * logvar) * eps  # (k, B, D)
            if model.likelihood == "bernoulli":
                log_px = torch.stack([-model.nll(xb, z[i]) for i in range(k)]).double()
            else:
                sd = float(model.log_scale.exp())
                log_px = torch.stack([Normal(model.decode(z[i]).double(), sd).log_prob(xb.double()).sum((1, 2, 3))
                                      for i in range(k)])
            log_w.append(log_px + Normal(0.0, 1.0).log_prob(z.double()).sum(-1) - q.log_prob(z.double()).sum(-1))
            kls.append(torch.distributions.kl_divergence(q, Normal(0.0, 1.0)).sum(1))
    return torch.cat(log_w, 1).numpy(), torch.cat(kls).numpy()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_standard_errors_match_numpy_on_per_point_values(likelihood):
    model = _tiny_vae(likelihood, gaussian_scale=0.3)
    data, k, seed, bs = _grey_data(), 6, 4, 16
    rep = diagnose(model, data, n_points=None, iwae_k=k, seed=seed, batch_size=bs)
    ev = eval_points(data, None)
    assert rep.n_points == len(ev) == 10
    log_w, kl = _reference_log_w(model, ev.x, k, seed, bs)
    elbo_i = log_w.mean(0)
    iwae_i = logsumexp(log_w, axis=0) - math.log(k)
    d = rep.to_dict()
    assert d["elbo"] == pytest.approx(elbo_i.mean(), rel=1e-5)
    assert d["iwae"] == pytest.approx(max(iwae_i.mean(), elbo_i.mean()), rel=1e-5)
    assert d["elbo_se"] == pytest.approx(_se(elbo_i), rel=1e-4)
    assert d["recon_nll_se"] == pytest.approx(_se(-elbo_i - kl), rel=1e-4)
    assert d["kl_se"] == pytest.approx(_se(kl), rel=1e-4)
    assert d["iwae_se"] == pytest.approx(_se(iwae_i), rel=1e-4)
    assert d["mutual_info_se"] == rep.mutual_info_detail.se and d["mutual_info_se"] > 0
    # recon_nll from the reference's per-point ELBO and KL
    assert d["recon_nll"] == pytest.approx(float(-elbo_i.mean() - kl.mean()), rel=1e-5)
    assert d["iwae"] >= d["elbo"]
    json.dumps(d, allow_nan=False)
    table = rep.format_table()
    assert f"{rep.elbo:10.3f} ± {rep.elbo_se:.3f}" in table
    assert f"{rep.iwae:10.3f} ± {rep.iwae_se:.3f}" in table
    assert f"{rep.mutual_info:10.3f} ± {rep.mutual_info_se:.3f}" in table


def test_log_likelihood_bounds_carry_standard_errors():
    model, data = _tiny_vae(), _grey_data(20)
    b = log_likelihood_bounds(model, data, k=4, batch_size=8, seed=1)
    log_w, kl = _reference_log_w(model, data.x, 4, 1, 8)
    assert b.elbo_se == pytest.approx(_se(log_w.mean(0)), rel=1e-4)
    assert b.iwae_se == pytest.approx(_se(logsumexp(log_w, axis=0) - math.log(4)), rel=1e-4)
    assert b.gaussian_scale is None and b.gaussian_scale_source is None


def test_one_point_has_no_standard_error():
    rep = diagnose(_tiny_vae(), _grey_data(), n_points=1, iwae_k=3)
    d = rep.to_dict()
    assert d["n_points"] == 1 and d["elbo_se"] is None and d["iwae_se"] is None and d["mutual_info_se"] is None
    json.dumps(d, allow_nan=False)
    elbo_line = next(line for line in rep.format_table().splitlines() if "ELBO" in line)
    assert "±" not in elbo_line


# ----------------------------------------------------------------------------- calibrated Gaussian decoders
def test_calibrated_scale_closed_form_on_hand_made_arrays():
    x = np.array([[0.0, 0.5, 1.0, 0.25], [1.0, 1.0, 0.0, 0.75], [0.2, 0.4, 0.6, 0.8]])  # 3 points, P = 4
    fz = np.array([[[0.1, 0.5, 0.7, 0.25], [0.9, 0.6, 0.1, 0.75], [0.2, 0.2, 0.6, 0.5]],
                   [[0.0, 0.3, 0.9, 0.35], [0.8, 1.0, 0.2, 0.70], [0.3, 0.4, 0.5, 0.8]]])  # (k=2, N=3, P)
    sq = (x[None] - fz) ** 2
    s2 = sq.mean()  # over samples, points and pixels
    sse = torch.tensor(sq.sum(-1))  # (2, 3)
    s = calibrated_scale(float(sse.sum()), sq.size)
    assert s == pytest.approx(math.sqrt(s2), rel=1e-14)
    log_px = gaussian_log_px(sse, 4, math.log(s)).numpy()  # (2, 3)
    np.testing.assert_allclose(log_px, norm.logpdf(x[None], fz, math.sqrt(s2)).sum(-1), rtol=1e-12)
    # with the calibrated scale the mean recon term per image is 0.5 P (1 + log(2 pi s^2))
    assert -log_px.mean() == pytest.approx(0.5 * 4 * (1 + math.log(2 * math.pi * s2)), rel=1e-12)
    assert calibrated_recon_nll(s, 4) == pytest.approx(-log_px.mean(), rel=1e-12)
    # and it is the best shared scale: any other s gives a lower mean log-likelihood
    for other in (0.5 * s, 0.9 * s, 1.1 * s, 2 * s, 1.0):
        assert gaussian_log_px(sse, 4, math.log(other)).mean() < log_px.mean()


class _ConstantGaussian(nn.Module):
    """q(z|x) = N(0, I) = p(z), so log p(z) - log q(z|x) = 0 and KL = 0; f(z) = a fixed image. The
    bounds are then exact: elbo(x) = iwae(x) = log N(x; c, s^2 I) for every k."""

    def __init__(self) -> None:
        super().__init__()
        self.likelihood = "gaussian"
        self.register_buffer("c", torch.linspace(0.1, 0.9, 64).view(1, 1, 8, 8))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zero = torch.zeros(x.shape[0], 2)
        return zero, zero

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.c.expand(z.shape[0], 1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


class _DeclaredGaussian(_ConstantGaussian):
    def __init__(self) -> None:
        super().__init__()
        self.scale = 0.5


def test_undeclared_gaussian_is_scored_at_the_calibrated_scale():
    module = _ConstantGaussian()
    model = ScriptedVAE(torch.jit.script(module), input_shape=(1, 8, 8))
    assert model.declared_scale is None and decoder_scale(model) == (None, "calibrated", True)
    data = _grey_data(40, seed=2)
    rep = diagnose(model, data, n_points=None, iwae_k=5, batch_size=3)
    ev = eval_points(data, None)
    sq = ((ev.x.double() - module.c.double()) ** 2).numpy().reshape(len(ev), -1)  # (N, P), the same for every z
    s2, p = sq.mean(), sq.shape[1]
    per_point = -0.5 * (sq.sum(1) / s2 + p * math.log(2 * math.pi * s2))
    d = rep.to_dict()
    assert d["gaussian_scale_source"] == "calibrated"
    assert d["gaussian_scale"] == pytest.approx(math.sqrt(s2), rel=1e-12) == d["gaussian_scale_calibrated"]
    assert d["kl"] == 0.0
    closed = 0.5 * p * (1 + math.log(2 * math.pi * s2))
    assert d["recon_nll"] == pytest.approx(closed, rel=1e-9)
    assert d["elbo"] == pytest.approx(-closed, rel=1e-9) and d["iwae"] == pytest.approx(-closed, rel=1e-9)
    assert d["elbo_se"] == pytest.approx(_se(per_point), rel=1e-9)
    assert "elbo_calibrated" not in d  # the headline figures are the calibrated ones
    assert any("declares no scale" in n for n in d["notes"])
    assert "(calibrated)" in rep.format_table()


def test_declared_gaussian_keeps_its_scale_with_the_calibrated_elbo_beside():
    module = _DeclaredGaussian()
    model = ScriptedVAE(torch.jit.script(module), input_shape=(1, 8, 8))
    assert model.declared_scale == 0.5
    data = _grey_data(40, seed=2)
    d = diagnose(model, data, n_points=None, iwae_k=5).to_dict()
    ev = eval_points(data, None)
    sq = ((ev.x.double() - module.c.double()) ** 2).numpy().reshape(len(ev), -1)
    s2, p = sq.mean(), sq.shape[1]
    own = norm.logpdf(ev.x.double().numpy().reshape(len(ev), -1), module.c.double().numpy().reshape(-1), 0.5).sum(1)
    assert d["gaussian_scale_source"] == "declared" and d["gaussian_scale"] == 0.5
    assert d["elbo"] == pytest.approx(own.mean(), rel=1e-9) and d["elbo_se"] == pytest.approx(_se(own), rel=1e-9)
    assert d["gaussian_scale_calibrated"] == pytest.approx(math.sqrt(s2), rel=1e-12)
    assert d["elbo_calibrated"] == pytest.approx(-0.5 * p * (1 + math.log(2 * math.pi * s2)), rel=1e-9)
    assert d["recon_nll_calibrated"] == pytest.approx(0.5 * p * (1 + math.log(2 * math.pi * s2)), rel=1e-9)
    assert d["elbo_calibrated"] >= d["elbo"] and d["iwae_calibrated"] >= d["elbo_calibrated"]
    assert {"elbo_calibrated_se", "iwae_calibrated_se"} <= set(d)


def test_run_scales_are_declared_or_trained():
    assert decoder_scale(_tiny_vae("gaussian", gaussian_scale=0.3))[:2] == (pytest.approx(0.3), "declared")
    assert decoder_scale(_tiny_vae("gaussian", learn_scale=True))[1] == "trained"
    assert decoder_scale(_tiny_vae()) == (None, None, True)
    d = diagnose(_tiny_vae("gaussian", learn_scale=True), _grey_data(), iwae_k=3).to_dict()
    assert d["gaussian_scale_source"] == "trained" and "elbo_calibrated" in d


def test_calibrated_iwae_same_with_stored_or_redrawn_samples():
    """Past the storage budget the samples are drawn again from the same generator state."""
    model = _tiny_vae("gaussian", gaussian_scale=0.2)
    x = _grey_data(12).x
    mu, logvar = model.encode(x)
    a = point_bounds(model, x, mu, logvar, 7, batch_size=5, generator=torch.Generator().manual_seed(3))
    b = point_bounds(model, x, mu, logvar, 7, batch_size=5, generator=torch.Generator().manual_seed(3),
                      store_budget=0, max_rows=10)
    assert not a.redrawn and b.redrawn
    # Same samples, but the decoder runs in float32 on batches of another size (5 vs 10 rows), and the
    # BLAS kernel chosen per shape rounds differently on some CPUs: agreement to float32 precision
    # (measured up to 1.7e-8 relative). Other samples would differ by the Monte Carlo spread
    # (checked below), thousands of times more.
    torch.testing.assert_close(a.iwae_cal, b.iwae_cal, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(a.elbo_cal, b.elbo_cal, rtol=1e-6, atol=1e-5)
    assert a.calibrated_scale == pytest.approx(b.calibrated_scale, rel=1e-6)
    c = point_bounds(model, x, mu, logvar, 7, batch_size=5, generator=torch.Generator().manual_seed(4))
    assert (a.iwae_cal - c.iwae_cal).abs().max() > 1e-2, "another seed's samples give other bounds"


# ----------------------------------------------------------------------------- held out means held out
def test_run_trained_on_n_is_diagnosed_on_its_own_held_out_points(tmp_path, monkeypatch, capsys):
    from vae_core import cli
    from vae_core.metrics.pipeline import report as report_mod

    out = tmp_path / "run_n"
    assert cli.main(["train", "--data", "digits", "--n", "600", "--epochs", "1", "--latent-dim", "2",
                     "--hidden", "8", "--seed", "5", "--out", str(out), "--quiet"]) == 0
    seen: list[torch.Tensor] = []
    encode_all = report_mod.encode_all

    def spy(model, x, batch_size=500):  # every point diagnose scores passes through here
        seen.append(x.detach().cpu().clone())
        return encode_all(model, x, batch_size)

    monkeypatch.setattr(report_mod, "encode_all", spy)
    capsys.readouterr()
    assert cli.main(["diagnose", str(out), "--data", "digits", "--json", "--iwae-k", "2",
                     "--n-points", "100000"]) == 0
    rep = json.loads(capsys.readouterr().out)
    train, held_out = load_dataset("digits", n=600, seed=5).split(0.2, 5)  # what `train` did
    x_eval = torch.cat(seen)
    assert rep["n_points"] == len(x_eval) == len(held_out) == 120 and rep["train_n"] == 600
    train_rows = {r.tobytes() for r in train.x.numpy()}
    assert not any(r.tobytes() in train_rows for r in x_eval.numpy()), "an evaluation point is a training point"
    assert {r.tobytes() for r in x_eval.numpy()} == {r.tobytes() for r in held_out.x.numpy()}
    # the split of the whole dataset (what diagnose used before) holds training points
    old = load_dataset("digits").split(0.2, 5)[1]
    assert sum(r.tobytes() in train_rows for r in old.x.numpy()) > 50


def test_sprites_pool_is_regenerated_as_training_made_it():
    from vae_core.data.sprites import make_sprites

    run_pool = make_sprites(n=60, seed=3, size=16)
    other = make_sprites(n=80, seed=0, size=16)
    pool = training_pool(other, 3, 60, "sprites")
    assert torch.equal(pool.x, run_pool.x) and np.array_equal(pool.factors, run_pool.factors)
    assert training_pool(run_pool, 3, 60, "sprites") is run_pool
    assert training_pool(other, 0, None, None) is other  # a TorchScript file: nothing to rebuild
    ev = eval_points(other, None, 3, 0.2, 60, "sprites")
    assert torch.equal(ev.x, run_pool.split(0.2, 3)[1].x)
