"""The pages' encoding of a data set (explorer/cache.py `encode_all`, `encoded_job`): the Gaussian
scale Diagnose uses (one scale everywhere), and the encodings kept on disk by content, so a second
visit or a restarted server draws at once."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer import cache, jobs
from vae_core.runs.checkpoints import save_run
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import Dataset
from vae_core.models import VAE


class _Undeclared:
    """A Gaussian decoder that declares no scale (most MSE-trained models): decode gives a fixed image."""

    likelihood = "gaussian"
    declared_scale = None
    latent_dim = 2

    def __init__(self, mean_image: torch.Tensor):
        self.mean_image = mean_image  # (C, H, W)

    def encode(self, x):
        mu = x.flatten(1)[:, :2] * 2 - 1
        return mu, torch.full_like(mu, -1.0)

    def decode(self, z):
        return self.mean_image.expand(z.shape[0], *self.mean_image.shape).clone()

    def parameters(self):
        return iter(())


def test_a_gaussian_decoder_without_a_scale_is_scored_at_the_calibrated_scale():
    rng = np.random.default_rng(0)
    x = rng.random((7, 1, 3, 3)).astype(np.float32)
    mean = np.full((1, 3, 3), 0.4, np.float32)
    enc = cache.encode_all(_Undeclared(torch.from_numpy(mean)), Dataset(torch.from_numpy(x), "planted"))
    sse = ((x.astype(np.float64) - mean) ** 2).reshape(7, -1).sum(1)  # float64, by hand
    s2 = sse.sum() / (7 * 9)  # Rybkin et al.: s^2 = mean squared error over points and pixels
    want = 0.5 * (sse / s2 + 9 * math.log(2 * math.pi * s2))
    assert enc.scale_source == "calibrated" and enc.scale == pytest.approx(math.sqrt(s2), rel=1e-6)
    np.testing.assert_allclose(enc.recon_err, want, rtol=1e-5)
    # the mean recon term at the calibrated scale has the closed form 0.5 P (1 + log(2 pi s^2))
    assert enc.recon_err.mean() == pytest.approx(0.5 * 9 * (1 + math.log(2 * math.pi * s2)), rel=1e-5)
    assert "calibrated scale s = " in enc.scale_words()


def test_a_declared_scale_is_used_as_declared(tmp_path):
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 4, 4), latent_dim=2, hidden=(8,), likelihood="gaussian",
                            gaussian_scale=0.3)).eval()
    x = torch.rand(5, 1, 4, 4)
    enc = cache.encode_all(model, Dataset(x, "planted"))
    with torch.no_grad():
        mu, _ = model.encode(x)
        f = model.decode(mu).double()
    want = (0.5 * ((x.double() - f) ** 2 / 0.09 + math.log(2 * math.pi * 0.09))).flatten(1).sum(1).numpy()
    assert enc.scale_source == "declared" and enc.scale == pytest.approx(0.3)
    np.testing.assert_allclose(enc.recon_err, want, rtol=1e-5)


def test_encodings_are_kept_on_disk_and_read_back_without_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    run = save_run(tmp_path / "r8", VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=3, hidden=(16,))),
                   TrainConfig(epochs=1), [{"epoch": 1}], dataset="digits")
    m, d = cache.source(str(run)), cache.source("digits")
    monkeypatch.setattr(jobs, "_queues", {})  # a fresh server: nothing in memory
    first = cache.encoded_job(m, d)
    assert first.done.wait(120) and first.error is None
    files = list((tmp_path / "cache" / "encoded").glob("*.npz"))
    assert len(files) == 1 and not list((tmp_path / "cache" / "encoded").glob(".*.tmp"))

    monkeypatch.setattr(jobs, "_queues", {})  # "restart the server"
    real_model_for = cache.model_for

    def no_model(*args):
        raise AssertionError("the model was asked for although its encodings are on disk")
    monkeypatch.setattr(cache, "model_for", no_model)
    again = cache.encoded_job(m, d)
    assert again.done.is_set(), "read from disk at once, not queued"
    for key in ("mu", "logvar", "kl", "recon_err", "kl_per_dim"):
        np.testing.assert_array_equal(getattr(again.result, key), getattr(first.result, key))
    # the model's own numbers, recomputed here: the file holds this model's encodings, not another's
    from vae_core.runs.run_load import load_model
    with torch.no_grad():
        mu, _ = load_model(run).eval().encode(cache.dataset(d).x)
    np.testing.assert_allclose(again.result.mu, mu.numpy(), atol=1e-5)

    # an unreadable file is computed again, not trusted
    files[0].write_bytes(b"garbage")
    monkeypatch.setattr(jobs, "_queues", {})
    monkeypatch.setattr(cache, "model_for", real_model_for)
    third = cache.encoded_job(m, d)
    assert third.done.wait(120) and third.error is None
    np.testing.assert_array_equal(third.result.mu, first.result.mu)
