"""vae_core.metrics against independent references: torch.distributions, closed-form log p(x),
hand-made arrays with known answers, and sanity bounds (disentanglement_lib style)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from vae_core import VAE, ModelConfig, ScriptedVAE
from vae_core.data import DataError, Dataset
from vae_core.metrics import (DiagnoseCancelled, aggregate_posterior, blurriness, diagnose,
                              laplacian_sharpness, log_likelihood_bounds, mig, mutual_information,
                              pixel_variance, posterior_collapse, radial_spectrum)
from vae_core.metrics.aggregate import aggregate_core
from vae_core.metrics.blur import _blur_core
from vae_core.metrics.collapse import collapse_stats, decoder_sensitivity
from vae_core.metrics.iwae import _bounds_core, _log_px_given_z
from vae_core.metrics.mig import mig_core
from vae_core.metrics.mutual_info import mutual_info_core

# the bring-your-own-model contract (docs/contracts.md) is TorchScript, deprecated or not
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

CONTRACT_KEYS = {"elbo", "recon_nll", "kl", "kl_per_dim", "active_units", "collapsed_dims", "mutual_info",
                 "mutual_info_max", "iwae", "iwae_k", "variance_law", "blur", "mig"}
BLUR_KEYS = {"laplacian_ratio", "variance_loss", "spectrum_ratio"}


# ----------------------------------------------------------------------------- models under test
class _Planted(nn.Module):
    """Linear encoder/decoder on 1x8x8 with dims 1 and 3 collapsed: mu = 0, logvar = 0 for every x,
    and decoder weights zero on them (so the decoder ignores them)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        keep = torch.tensor([1.0, 0.0, 1.0, 0.0])
        self.register_buffer("keep", keep)
        self.register_buffer("w_enc", torch.randn(4, 64, generator=g) * 0.3)
        self.register_buffer("w_dec", torch.randn(64, 4, generator=g) * keep)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = ((x.flatten(1) - 0.5) @ self.w_enc.t()) * self.keep  # (B, 4)
        logvar = (-2.0 * self.keep).expand_as(mu).contiguous()
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z @ self.w_dec.t()).view(-1, 1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


class _LinearGaussian(nn.Module):
    """z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I) on 1x8x8, W with orthogonal columns so the exact
    posterior is diagonal; encode gives it, optionally shifted and widened (a wrong q)."""

    def __init__(self, shift: float = 0.0, widen: float = 0.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        q, _ = torch.linalg.qr(torch.randn(64, 2, generator=g))
        self.likelihood = "gaussian"
        self.scale = 0.5
        self.register_buffer("w", q * torch.tensor([2.0, 1.0]))  # W^T W = diag(4, 1)
        self.register_buffer("b", torch.randn(64, generator=g) * 0.1)
        post_var = 1.0 / (1.0 + (self.w ** 2).sum(0) / 0.25)  # (2,) exact posterior variance
        self.register_buffer("post_var", post_var)
        self.shift = shift
        self.widen = widen

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = ((x.flatten(1) - self.b) @ self.w) / 0.25 * self.post_var + self.shift
        logvar = (self.post_var.log() + self.widen).expand_as(mu).contiguous()
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.w.t() + self.b).view(-1, 1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) = log N(x; b, W W^T + s^2 I), float64, (B,)."""
        w, b = self.w.double(), self.b.double()
        cov = w @ w.T + 0.25 * torch.eye(64, dtype=torch.float64)
        return MultivariateNormal(b, covariance_matrix=cov).log_prob(x.flatten(1).double())

    def sample_x(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, 2, generator=g)
        return (self.decode(z) + 0.5 * torch.randn(n, 1, 8, 8, generator=g)).float()


def _planted() -> ScriptedVAE:
    return ScriptedVAE(torch.jit.script(_Planted()))


def _binary_data(n: int = 60, seed: int = 0, factors: bool = True) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 8, 8, generator=g) > 0.5).float()
    f = np.random.default_rng(seed).integers(0, [3, 4], size=(n, 2)) if factors else None
    return Dataset(x=x, name="toy", factors=f, factor_names=("a", "b") if factors else (),
                   factor_sizes=(3, 4) if factors else ())


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- collapse
def test_kl_per_dim_matches_torch_distributions():
    g = _gen(0)
    mu, logvar = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g)
    ref = kl_divergence(Normal(mu.double(), (0.5 * logvar.double()).exp()), Normal(0.0, 1.0)).mean(0)
    stats = collapse_stats(mu, logvar)
    np.testing.assert_allclose(stats.kl_per_dim, ref.numpy(), rtol=1e-6)


def test_activity_uses_population_variance_and_strict_threshold():
    # dim 0: +-1 (active); dim 1: constant 0.5 (KL > 0 but inactive); dim 2: +-0.09 -> population
    # variance 0.0081 (inactive), though the unbiased variance 0.0162 would pass He et al.'s rule
    mu = np.array([[1.0, 0.5, 0.09], [-1.0, 0.5, -0.09]])
    logvar = np.zeros((2, 3))
    s = collapse_stats(mu, logvar)
    np.testing.assert_allclose(s.activity, [1.0, 0.0, 0.0081])
    assert s.active_units == 1 and s.inactive_dims == [1, 2]
    assert s.collapsed_dims == [2]  # KL: 0.5, 0.125, 0.00405
    np.testing.assert_allclose(s.mean_sigma2, [1, 1, 1])
    assert s.prior_like_dims == [0, 1, 2]


def test_variance_law_and_aggregate_moments():
    mu = np.array([[0.0, 2.0], [2.0, 2.0], [4.0, 2.0]])
    logvar = np.log(np.array([[0.5, 1.0], [0.5, 2.0], [0.5, 3.0]]))
    a = aggregate_core(mu, logvar, z=mu)  # z given: moments are those of z
    np.testing.assert_allclose(a.variance_law, [8 / 3 + 0.5, 0.0 + 2.0])
    np.testing.assert_allclose(a.sample_mean, [2.0, 2.0])
    np.testing.assert_allclose(a.sample_var, [8 / 3, 0.0])
    np.testing.assert_allclose((a.hist_density * np.diff(a.hist_edges, axis=1)).sum(1), [1.0, 1.0])
    assert a.hist_counts.sum(1).tolist() == [3, 3]
    np.testing.assert_allclose(a.prior_density, Normal(0.0, 1.0).log_prob(
        torch.from_numpy(0.5 * (a.hist_edges[:, 1:] + a.hist_edges[:, :-1]))).exp().numpy())


def test_planted_collapse_is_found_exactly():
    model = _planted()
    data = _binary_data(200)
    model.set_input_shape(data.shape)
    s = posterior_collapse(model, data)
    assert s.collapsed_dims == [1, 3]
    assert s.kl_per_dim[[1, 3]].tolist() == [0.0, 0.0]
    assert (s.kl_per_dim[[0, 2]] > 0.1).all()
    np.testing.assert_allclose(s.sensitivity[[1, 3]], 0.0, atol=1e-7)
    assert (s.sensitivity[[0, 2]] > 1e-3).all()
    assert s.active_units == 2 and s.prior_like_dims == [1, 3]


def test_sensitivity_against_a_direct_loop():
    w = torch.randn(16, 3, generator=_gen(2))

    def decode(z):
        return torch.tanh(z @ w.T).view(-1, 1, 4, 4)

    base = torch.tensor([0.3, -0.2, 0.1])
    values = (-2.0, 0.0, 1.5)
    ref = []
    for j in range(3):  # independent reference: one decode per traversal value
        diffs = []
        for v in values:
            z = base.clone()
            z[j] = v
            diffs.append((decode(z[None]) - decode(base[None])).abs().mean().item())
        ref.append(np.mean(diffs))
    np.testing.assert_allclose(decoder_sensitivity(decode, base, values), ref, rtol=1e-5)


# ----------------------------------------------------------------------------- mutual information
def test_mi_is_zero_when_posterior_ignores_x():
    mu, logvar = torch.zeros(1000, 3), torch.zeros(1000, 3)
    r = mutual_info_core(mu, logvar, generator=_gen(0))
    assert r.batch_size == 500 and r.n_batches == 2
    assert abs(r.mi) < 0.15 and r.log_b == pytest.approx(math.log(500))


def test_mi_near_log_b_for_separated_deterministic_codes():
    mu = torch.randn(400, 3, generator=_gen(1)) * 50.0  # far apart compared with sigma = e^-5
    logvar = torch.full((400, 3), -10.0)
    r = mutual_info_core(mu, logvar, generator=_gen(2))
    assert r.log_b == pytest.approx(math.log(400))
    assert r.log_b - 0.15 < r.mi <= r.log_b
    assert abs(r.unclipped - r.log_b) < 0.15


@pytest.mark.parametrize("seed", range(4))
def test_mi_never_above_log_b(seed):
    g = _gen(seed)
    mu, logvar = torch.randn(100, 2, generator=g) * 3, torch.randn(100, 2, generator=g) - 2
    r = mutual_info_core(mu, logvar, batch_size=30, generator=g)
    assert r.batch_size == 30 and r.n_batches == 3 and r.mi <= math.log(30)


def test_mi_matches_direct_he_et_al_formula():
    g = _gen(3)
    mu, logvar = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)
    z = mu + torch.randn(8, 2, generator=g) * (0.5 * logvar).exp()
    q = Normal(mu.double()[None], (0.5 * logvar.double()).exp()[None])  # over k, (1, 8, 2)
    log_qz = torch.logsumexp(q.log_prob(z.double()[:, None]).sum(-1), 1) - math.log(8)  # (8,)
    neg_h = (-Normal(mu.double(), (0.5 * logvar.double()).exp()).entropy().sum(-1)).mean()
    ref = float(neg_h - log_qz.mean())
    r = mutual_info_core(mu, logvar, z=z)
    assert r.unclipped == pytest.approx(ref, abs=1e-9)


# ----------------------------------------------------------------------------- IWAE / ELBO
def test_bounds_exact_for_linear_gaussian_with_true_posterior():
    module = _LinearGaussian()
    model = ScriptedVAE(torch.jit.script(module), input_shape=(1, 8, 8))
    x = module.sample_x(5, seed=0)
    mu, logvar = model.encode(x)
    iwae, elbo, kl = _bounds_core(model, x, mu, logvar, 50, generator=_gen(0))
    log_px = module.log_px(x)
    np.testing.assert_allclose(elbo.numpy(), log_px.numpy(), atol=2e-3)
    np.testing.assert_allclose(iwae.numpy(), log_px.numpy(), atol=2e-3)


def test_iwae_approaches_log_px_for_a_wrong_posterior():
    module = _LinearGaussian(shift=0.4, widen=1.0)
    model = ScriptedVAE(torch.jit.script(module), input_shape=(1, 8, 8))
    x = module.sample_x(32, seed=1)
    mu, logvar = model.encode(x)
    log_px = float(module.log_px(x).mean())
    iwae, elbo = {}, {}
    for k in (10, 100, 1000):  # means over 32 points and 3 seeds
        runs = [_bounds_core(model, x, mu, logvar, k, generator=_gen(s)) for s in range(3)]
        iwae[k] = np.mean([float(r[0].mean()) for r in runs])
        elbo[k] = np.mean([float(r[1].mean()) for r in runs])
    gap = log_px - elbo[1000]  # L_1 = the ELBO, here from 3000 samples per point
    assert gap > 1.0  # the wrong q costs a visible ELBO gap
    assert elbo[1000] < iwae[10] < iwae[100] <= iwae[1000] + 0.02
    assert abs(log_px - iwae[1000]) < 0.05 * gap


def test_iwae_at_least_elbo_and_rising_with_k_on_a_vae():
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))).eval()
    data = _binary_data(40, factors=False)
    with torch.inference_mode():  # the closed-form KL over all 40 points, recomputed in float64
        mu, logvar = model.encode(data.x)
    kl_ref = kl_divergence(Normal(mu.double(), (0.5 * logvar.double()).exp()), Normal(0.0, 1.0)).sum(1).mean()
    by_k = {}
    for k in (1, 5, 50):
        runs = [log_likelihood_bounds(model, data, k=k, batch_size=16, seed=s) for s in range(3)]
        for b in runs:
            assert b.iwae >= b.elbo
            assert b.kl == pytest.approx(float(kl_ref), rel=1e-5)
        by_k[k] = np.mean([b.iwae for b in runs])
    assert by_k[1] <= by_k[5] + 1e-6 <= by_k[50] + 2e-6


def test_fast_bernoulli_path_equals_model_nll():
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))).eval()
    x = torch.rand(4, 1, 8, 8)  # grey values too: BCE is the same formula
    z = torch.randn(3, 4, 2)
    ref = torch.stack([-model.nll(x, z[s]) for s in range(3)])  # (3, 4)
    torch.testing.assert_close(_log_px_given_z(model, x, z), ref, rtol=1e-5, atol=1e-4)


def test_iwae_chunking_does_not_change_the_samples_used():
    model = _planted()
    model.set_input_shape((1, 8, 8))
    x = _binary_data(6).x
    mu, logvar = model.encode(x)
    a = _bounds_core(model, x, mu, logvar, 7, generator=_gen(0), max_rows=6)  # 1 sample per call
    b = _bounds_core(model, x, mu, logvar, 7, generator=_gen(0), max_rows=1000)  # all at once
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)


# ----------------------------------------------------------------------------- MIG
def _factors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, [3, 6, 40], size=(n, 3))


def test_mig_high_for_codes_equal_to_factors():
    f = _factors(2000, 0)
    r = mig_core(f.astype(float), f)
    assert r.mig > 0.7
    assert r.mi_matrix.shape == (3, 3)
    # factor entropies of near-uniform factors are near log(size)
    np.testing.assert_allclose(r.entropies, np.log([3, 6, 40]), atol=0.05)


def test_mig_near_zero_for_random_codes_and_low_for_rotated():
    f = _factors(2000, 1)
    rng = np.random.default_rng(2)
    assert mig_core(rng.standard_normal((2000, 3)), f).mig < 0.05
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    z = (f - f.mean(0)) / f.std(0)
    assert mig_core(z @ q, f).mig < mig_core(z, f).mig - 0.3


def test_mig_skips_constant_factors_and_needs_factors():
    f = np.stack([np.zeros(100, int), np.arange(100) % 4], 1)
    r = mig_core(np.random.default_rng(0).standard_normal((100, 2)), f)
    assert r.gaps[0] is None and r.gaps[1] is not None
    model = _planted()
    with pytest.raises(ValueError, match="factors"):
        mig(model, _binary_data(10, factors=False))


# ----------------------------------------------------------------------------- blur
def _box_blur(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    k = torch.full((c, 1, 3, 3), 1 / 9)
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=c)


@pytest.mark.parametrize("channels", [1, 3])
def test_blur_against_itself_and_a_blurred_copy(channels):
    x = torch.rand(20, channels, 8, 8, generator=_gen(0))
    b = _blur_core(x, x, _box_blur(x))
    assert b.reconstructions == {"laplacian_ratio": 1.0, "variance_loss": 0.0, "spectrum_ratio": 1.0}
    assert b.samples["laplacian_ratio"] < 1 and b.samples["spectrum_ratio"] < 1
    assert b.samples["variance_loss"] > 0  # blurring averages pixels: less variance across the set
    assert b.frequencies.tolist() == [0.0, 0.125, 0.25, 0.375, 0.5]


def test_pixel_variance_and_laplacian_against_numpy():
    x = np.random.default_rng(0).random((5, 2, 6, 7))
    assert pixel_variance(x) == pytest.approx(x.var(0).mean())
    lap = (x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4 * x[..., 1:-1, 1:-1])
    assert laplacian_sharpness(x) == pytest.approx(lap.reshape(5, 2, -1).var(-1).mean())


def test_radial_spectrum_puts_a_cosine_in_its_bin():
    xs = np.arange(8)
    cos = np.tile(np.cos(2 * np.pi * 2 * xs / 8), (8, 1))[None, None]  # 2 cycles across 8 pixels
    freqs, power = radial_spectrum(cos)
    assert freqs[np.argmax(power)] == 0.25
    const_f, const_p = radial_spectrum(np.ones((1, 1, 8, 8)))
    assert const_p[0] > 0 and np.allclose(const_p[1:], 0)


def test_blur_rejects_bad_shapes():
    with pytest.raises(ValueError, match="x must"):
        pixel_variance(np.zeros((4, 8, 8)))


# ----------------------------------------------------------------------------- report
def test_diagnose_report_contract_and_json_round_trip():
    model = _planted()
    data = _binary_data(60)
    rep = diagnose(model, data, n_points=None, iwae_k=10, batch_size=7)
    assert model.input_shape == (1, 8, 8)  # learnt from the data
    d = rep.to_dict()
    assert CONTRACT_KEYS <= set(d)
    back = json.loads(json.dumps(d, allow_nan=False))
    assert back == d
    assert d["n_points"] == 12  # 20% of 60
    assert sum(d["kl_per_dim"]) == pytest.approx(d["kl"], abs=1e-12)
    assert len(d["kl_per_dim"]) == len(d["variance_law"]) == 4
    assert d["iwae"] >= d["elbo"] and d["iwae_k"] == 10
    assert d["collapsed_dims"] == [1, 3] and d["active_units"] == 2
    assert isinstance(d["active_units"], int) and isinstance(d["mig"], float)
    assert d["mutual_info"] <= d["mutual_info_max"] == pytest.approx(math.log(7))
    assert BLUR_KEYS <= set(d["blur"]) and BLUR_KEYS == set(d["blur"]["reconstructions"]) \
        == set(d["blur"]["samples"])
    assert d["blur"]["laplacian_ratio"] == d["blur"]["reconstructions"]["laplacian_ratio"]
    assert len(d["mig_matrix"]) == 2 and len(d["mig_matrix"][0]) == 4
    # InfoMEC and DCI beside MIG (tests/test_infomec_dci.py checks their values)
    for k in ("infom", "infoc", "infoe", "dci_d", "dci_c", "dci_i"):
        assert d[k] is None or -1e-9 <= d[k] <= 1 + 1e-9, (k, d[k])
        assert f"{k}_se" in d
    assert len(d["disentanglement_detail"]["nmi"]) == 2 and d["points"]["disentanglement"] == 12
    assert not any("grey" in n for n in d["notes"])  # binary data: no Bernoulli warning
    assert "2 of 4 dimensions carry no information" in rep.summary
    table = rep.format_table()
    assert "ELBO" in table and "IWAE" in table and len(table.splitlines()) > 15


def test_diagnose_subsets_notes_grey_data_and_no_factors():
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))).eval()
    data = Dataset(x=torch.rand(100, 1, 8, 8, generator=_gen(0)), name="grey")
    rep = diagnose(model, data, n_points=15, iwae_k=5)
    d = rep.to_dict()
    assert d["n_points"] == 15 and d["mig"] is None and d["infom"] is None and d["dci_d_se"] is None
    assert any("grey" in n for n in d["notes"])
    json.dumps(d, allow_nan=False)


def test_diagnose_refuses_data_of_the_wrong_shape():
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,)))
    bad = Dataset(x=torch.rand(20, 1, 6, 6), name="small")
    with pytest.raises(DataError, match="does not fit"):
        diagnose(model, bad)
    with pytest.raises(ValueError, match="iwae_k"):
        diagnose(model, _binary_data(20), iwae_k=0)


def test_diagnose_progress_can_cancel():
    seen = []

    def progress(event):
        seen.append(event.what)
        return event.what == "iwae"

    with pytest.raises(DiagnoseCancelled):
        diagnose(_planted(), _binary_data(30), iwae_k=3, progress=progress)
    assert seen[:2] == ["encode", "collapse"] and seen[-1] == "iwae" and "blur" not in seen


def test_public_functions_agree_with_diagnose_pieces():
    model = _planted()
    data = _binary_data(40)
    model.set_input_shape(data.shape)
    assert mutual_information(model, data).log_b == pytest.approx(math.log(40))
    assert len(aggregate_posterior(model, data).variance_law) == 4
    assert set(blurriness(model, data).samples) == BLUR_KEYS
    assert mig(model, data).mi_matrix.shape == (2, 4)
