"""Compare's β-sweep view in a real browser: a sweep of three linear Gaussian runs on the planted data
(β = 1, 4, 16), the view drawn with its KL-against-β plot, the active-units plot and the order table,
and a screenshot of it (under pytest's tmp_path, to look at)."""
from __future__ import annotations

import shutil

import pytest
import torch

from harness import REPO, wait_app_ready

pytestmark = pytest.mark.browser

BETAS = (1.0, 4.0, 16.0)


@pytest.fixture(scope="module")
def app(streamlit_server, tmp_path_factory):
    """The app on a runs folder holding runs/sweep-planted (one run per β, sweep.json) and a default run."""
    from vae_core import VAE, ModelConfig, TrainConfig
    from vae_core.runs.checkpoints import save_run
    from vae_core.data import load_dataset
    from vae_core.sweep import beta_dirname, write_sweep_json
    from vae_core.train import fit

    runs = tmp_path_factory.mktemp("runs")
    out = runs / "sweep-planted"
    out.mkdir()
    data = load_dataset("planted", n=1000, seed=0)
    train, ev = data.split(0.2, 0)
    for b in BETAS:
        torch.manual_seed(0)
        model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=5, hidden=(), likelihood="gaussian",
                                gaussian_scale=0.1))
        cfg = TrainConfig(epochs=40, lr=1e-2, seed=0, beta=b, record_codes=0)
        hist = fit(model, train, ev, cfg)
        save_run(out / beta_dirname(b), model, cfg, hist.rows, dataset="planted", extra={"n": 1000})
    write_sweep_json(out, BETAS, {b: "done" for b in BETAS}, dataset="planted")
    shutil.copytree(out / beta_dirname(1.0), runs / "default")
    env = {"VAE_EXPLORER_RUNS": str(runs), "VAE_EXPLORER_UPLOADS": str(tmp_path_factory.mktemp("uploads")),
           "VAE_EXPLORER_CACHE": str(tmp_path_factory.mktemp("cache"))}
    return streamlit_server(REPO / "streamlit_app.py", env=env).url


def test_compare_sweep_view_in_the_browser(page, app, tmp_path):
    page.goto(f"{app}/Compare")
    wait_app_ready(page, 180_000)
    page.get_by_text("β sweep: how the latents collapse as β rises").click()
    page.get_by_text("Order of collapse beside the spectrum's order").wait_for(timeout=240_000)
    view = page.locator('[data-testid="stExpander"]', has_text="β sweep: how the latents collapse")
    page.screenshot(path=str(tmp_path / "compare-page.png"), full_page=True)
    view.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)
    assert view.locator(".js-plotly-plot").count() == 2  # KL against beta, active units
    text = view.inner_text()
    assert "β = 1, 4, 16" in text and "Decoder variance σ² = 0.01" in text, text
    view.scroll_into_view_if_needed()
    shot = tmp_path / "compare-sweep.png"
    view.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
