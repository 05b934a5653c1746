"""The Diagnose page's theory panel in a real browser: a linear Gaussian run on the planted data, the
panel drawn with its plot, the predicted count the float64 count of eigenvalues above s^2, and a
screenshot of the panel (under pytest's tmp_path, to look at)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.browser import REPO, wait_app_ready

pytestmark = pytest.mark.browser

SCALE = 0.1  # the run's declared Gaussian scale s: sigma^2 = 0.01


@pytest.fixture(scope="module")
def app(streamlit_server, tmp_path_factory):
    """The app on a runs folder whose default run is a VAE with no hidden layer (linear encoder, a
    linear decoder under the sigmoid), Gaussian s = 0.1, trained on 2,000 planted points."""
    from vae_core import VAE, ModelConfig, TrainConfig
    from vae_core.runs.checkpoints import save_run
    from vae_core.data import load_dataset
    from vae_core.train import fit

    runs = tmp_path_factory.mktemp("runs")
    data = load_dataset("planted", n=2000, seed=0)
    train, ev = data.split(0.2, 0)
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=6, hidden=(), likelihood="gaussian",
                            gaussian_scale=SCALE))
    cfg = TrainConfig(epochs=200, lr=1e-2, seed=0, record_codes=0)
    hist = fit(model, train, ev, cfg)
    save_run(runs / "default", model, cfg, hist.rows, dataset="planted", extra={"n": 2000})
    env = {"VAE_EXPLORER_RUNS": str(runs), "VAE_EXPLORER_UPLOADS": str(tmp_path_factory.mktemp("uploads")),
           "VAE_EXPLORER_CACHE": str(tmp_path_factory.mktemp("cache"))}
    return streamlit_server(REPO / "streamlit_app.py", env=env).url


def test_theory_panel_in_the_browser(page, app, tmp_path):
    from vae_core.data import load_dataset

    data = load_dataset("planted")
    x = data.x.reshape(len(data), -1).numpy().astype(np.float64)
    want = int(np.sum(np.linalg.eigvalsh(np.cov(x, rowvar=False, ddof=0)) > SCALE ** 2))
    assert want == 4

    page.goto(f"{app}/Diagnose")
    wait_app_ready(page, 180_000)
    # the run takes 8x8 images: the sidebar paired it with digits; pick planted
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option", name="planted", exact=True).click()
    words = page.get_by_text("The linear theory predicts")
    words.wait_for(timeout=240_000)
    text = words.inner_text()
    assert f"predicts {want} active dimensions" in text, text
    panel = page.locator(".st-key-diag_theory")
    panel.locator(".js-plotly-plot").wait_for(timeout=60_000)
    panel.scroll_into_view_if_needed()
    page.locator('[data-testid="stHeading"]', has_text="Theory check").scroll_into_view_if_needed()
    shot = tmp_path / "diagnose-theory.png"
    page.screenshot(path=str(shot), full_page=False)
    print(f"screenshot: {shot}; panel: {text}")
