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


def test_a_running_encoding_gives_its_first_rows_as_they_come(monkeypatch):
    """Pages may draw from the first chunks of a slow model's encoding: each partial result holds the
    model's own codes of the first rows (recomputed here), and says how many rows there are in all."""
    torch.manual_seed(2)
    model = VAE(ModelConfig(input_shape=(1, 4, 4), latent_dim=3, hidden=(8,), likelihood="gaussian",
                            gaussian_scale=0.5)).eval()
    x = torch.rand(23, 1, 4, 4)
    monkeypatch.setattr(cache, "batch_rows", lambda shape: 5)  # 5 chunks: 5, 5, 5, 5, 3 rows
    monkeypatch.setattr(cache, "PARTIAL_EVERY_S", 0.0)  # every chunk but the last gives a partial result
    seen = []
    enc = cache.encode_all(model, Dataset(x, "planted"), partial=seen.append)
    assert [len(p.mu) for p in seen] == [5, 10, 15, 20] and all(p.total == 23 for p in seen)
    assert enc.total is None and len(enc.mu) == 23
    with torch.no_grad():
        mu, lv = model.encode(x)
        f = model.decode(mu).double()
    kl = (0.5 * (mu.double() ** 2 + lv.double().exp() - lv.double() - 1)).sum(1).numpy()
    err = (0.5 * ((x.double() - f) ** 2 / 0.25 + math.log(2 * math.pi * 0.25))).flatten(1).sum(1).numpy()
    for p in seen:
        k = len(p.mu)
        np.testing.assert_allclose(p.mu, mu[:k].numpy(), atol=1e-6)
        np.testing.assert_allclose(p.kl, kl[:k], rtol=1e-5)
        np.testing.assert_allclose(p.recon_err, err[:k], rtol=1e-5)


def test_home_draws_from_the_first_codes_while_a_slow_model_encodes(monkeypatch):
    """Old code: Home showed only a progress bar until every image had its code. Now the picture and
    the means draw from the first rows, saying so, and the page is drawn whole when the encoding ends."""
    import threading

    from settle import settle, unsettled
    from streamlit.testing.v1 import AppTest
    from paths import ROOT

    real = cache.encode_all
    first_rows, release = threading.Event(), threading.Event()

    def slow(mdl, data, progress=None, partial=None):
        def gated_partial(enc):
            partial(enc)
            first_rows.set()
            assert release.wait(120), "the test never opened the gate"
        return real(mdl, data, progress=progress, partial=gated_partial)

    monkeypatch.setattr(cache, "encode_all", slow)
    monkeypatch.setattr(cache, "_load_encoded", lambda path: None)  # as if never encoded on this server
    monkeypatch.setattr(cache, "_save_encoded", lambda path, enc: None)
    from explorer import home_ui

    monkeypatch.setattr(home_ui, "load_picture", lambda path: None)  # nor Home's picture drawn before
    monkeypatch.setattr(home_ui, "save_picture", lambda path, pic: None)
    monkeypatch.setattr(jobs, "_queues", {})
    try:
        with unsettled():
            at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
            assert not at.exception, [e.value for e in at.exception]
            assert first_rows.wait(120)
            at.run()
            assert not at.exception, [e.value for e in at.exception]
            text = " ".join(m.value for m in at.markdown)
            assert "so far over the first 1,000 of 5,000 images" in text, text
            caps = [c for el in at.get("image") for c in el.captions]
            assert "image x" in caps and "rebuilt image" in caps, f"the picture draws from the first codes: {caps}"
            assert [p.proto.text for p in at.get("progress")], "with the encoding's progress above it"
    finally:
        release.set()
    settle(at)
    assert not at.exception and not at.get("progress")
    assert "so far over the first" not in " ".join(m.value for m in at.markdown)


def test_a_page_waiting_for_first_codes_is_drawn_again_when_they_come(monkeypatch):
    """Old code: Home's progress fragment redrew the page only when the whole encoding had ended, so a page
    that ran before the first chunk showed a bar until every image was encoded (upload -> Home took the
    whole encoding). Now the fragment redraws the page as soon as a first result comes, once: a page
    already drawn from partial codes is not redrawn every second, only at the end."""
    from explorer import widgets

    class Rerun(Exception):
        pass

    def rerun():
        raise Rerun

    monkeypatch.setattr(widgets.st, "rerun", rerun)
    monkeypatch.setattr(widgets.st, "progress", lambda *a, **k: None)
    monkeypatch.setattr(jobs, "status_text", lambda job, words=None: "")
    poll = widgets._job_progress.__wrapped__  # one tick of the fragment, without Streamlit's scheduling

    def reruns(job, await_partial) -> bool:
        try:
            poll(job, "", {}, await_partial=await_partial)
        except Rerun:
            return True
        return False

    job = jobs.Job(key=("encode", "m", "d"), what="the encoding of the data")
    assert not reruns(job, await_partial=True)  # nothing yet: the bar only
    job.partial = object()
    assert reruns(job, await_partial=True)  # the first chunk came: the page is drawn from it
    assert not reruns(job, await_partial=False)  # drawn from it already: no redraw each tick
    job.done.set()
    assert reruns(job, await_partial=False)  # the end: drawn whole
