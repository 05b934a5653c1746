"""Start a training in the real app, watch its progress, and find the new run in the model picker."""
from __future__ import annotations

import shutil

import pytest

from benchmarks.browser import REPO, wait_app_ready

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(streamlit_server, tmp_path_factory):
    """The app on a temporary runs folder (a copy of the shipped run), so nothing lands in runs/."""
    runs = tmp_path_factory.mktemp("runs")
    shutil.copytree(REPO / "runs" / "default", runs / "default")
    uploads = tmp_path_factory.mktemp("uploads")
    srv = streamlit_server(REPO / "streamlit_app.py",
                           env={"VAE_EXPLORER_RUNS": str(runs), "VAE_EXPLORER_UPLOADS": str(uploads)})
    return srv.url, runs


def test_train_shows_progress_and_the_run_appears_in_the_picker(page, app):
    url, runs = app
    page.goto(f"{url}/Train")
    page.get_by_role("button", name="Train").wait_for(timeout=120_000)
    wait_app_ready(page, 120_000)
    for label, value in (("Hidden sizes", "32"), ("Latent size D", "2"), ("Epochs", "80"),
                         ("Run name", "browser_run")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Tab")
    page.get_by_role("button", name="Train").click()
    # progress while it trains: the bar's text counts epochs
    page.locator('[data-testid="stProgress"]').filter(has_text="done, step").first.wait_for(timeout=120_000)
    page.get_by_text("Saved runs/browser_run").first.wait_for(timeout=300_000)
    assert (runs / "browser_run" / "model.safetensors").is_file()
    # every page's picker lists it now: open the sidebar's model selectbox
    page.goto(f"{url}/Explore")
    wait_app_ready(page, 120_000)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').first.click()
    options = page.locator('[role="option"]')
    options.first.wait_for(timeout=30_000)
    assert "runs/browser_run" in [t.strip() for t in options.all_inner_texts()]
