"""The sidebar shows the active (model, data) pair on every page, after every page switch, in a real
browser (the bug: every second switch showed a pair other than the one the page used)."""
from __future__ import annotations


import pytest
import torch

from benchmarks.browser import REPO, wait_app_ready
from zips import run_zip

pytestmark = pytest.mark.browser

PAGES = ["Explore", "Diagnose", "Train", "Blurriness", "Compare", "Home"]


@pytest.fixture(scope="module")
def app_url(streamlit_server, tmp_path_factory) -> str:
    uploads = tmp_path_factory.mktemp("uploads")
    return streamlit_server(REPO / "streamlit_app.py", env={"VAE_EXPLORER_UPLOADS": str(uploads)}).url


@pytest.fixture(scope="module")
def run_zip_8x8(tmp_path_factory):
    """A zipped run of a small 8x8 MLP VAE (random weights): uploading it switches the data to digits."""
    from vae_core.runs.checkpoints import save_run
    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.models import VAE

    tmp = tmp_path_factory.mktemp("run8")
    torch.manual_seed(0)
    run = save_run(tmp / "r8", VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))),
                   TrainConfig(epochs=1), [{"epoch": 1}], dataset="digits")
    path = tmp / "r8.zip"
    path.write_bytes(run_zip(run, "r8"))
    return path


# The two sidebar pickers' shown values, once the page's script has finished and both are drawn
# (right after a click the previous page's state can still read "not running").
SIDEBAR_PAIR = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const boxes = document.querySelectorAll('[data-testid="stSidebar"] [data-testid="stSelectbox"] input[role="combobox"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning' || boxes.length < 2) return null;
    return [boxes[0].value, boxes[1].value];
}"""


def _sidebar_pair(page) -> tuple[str, str]:
    return tuple(page.wait_for_function(SIDEBAR_PAIR, timeout=180_000).json_value())


def test_sidebar_shows_the_active_pair_over_12_page_switches(page, app_url, run_zip_8x8, tmp_path):
    page.goto(app_url)
    wait_app_ready(page, 120_000)
    page.get_by_text("Upload a model or data").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(0).set_input_files(str(run_zip_8x8))
    page.wait_for_selector("text=Switched the data to digits", timeout=120_000)
    model_label, data_label = _sidebar_pair(page)
    assert "(upload)" in model_label and "digits" in data_label, (model_label, data_label)
    for i in range(12):
        name = PAGES[i % len(PAGES)]
        page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
        page.wait_for_function(f"() => document.title.startsWith({name + ' '!r})", timeout=60_000)
        try:
            shown = _sidebar_pair(page)
        except Exception:
            page.screenshot(path=str(tmp_path / f"switch-{i}-{name}.png"), full_page=True)  # for whoever reads the failure
            raise
        assert shown == (model_label, data_label), (i, name)
        if name == "Home":  # the page itself uses that pair
            assert "Data: digits" in page.locator('[data-testid="stMarkdown"]', has_text="Data:").first.inner_text()
