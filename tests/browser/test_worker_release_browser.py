"""An uploaded model's worker process is stopped when the browser tab that used it closes (Streamlit
ends the session on disconnect), in a real server and Chromium."""
from __future__ import annotations

import os
import time

import pytest
import torch

from benchmarks.browser import REPO, wait_app_ready

pytestmark = pytest.mark.browser


def _workers_of(server_pid: int) -> set[int]:
    """Model worker processes (vae_core.sandbox.child) whose parent is the server."""
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"vae_core.sandbox.child" in cmd and int(fields[1]) == server_pid and fields[0] not in ("Z", "X"):
            out.add(int(name))
    return out


# The sidebar's model picker shows the upload once the page's script has finished with it active.
MODEL_ACTIVE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    const box = document.querySelector('[data-testid="stSidebar"] [data-testid="stSelectbox"] input[role="combobox"]');
    return !!(app && app.getAttribute('data-test-script-state') === 'notRunning' && box
              && box.value.includes('tab.ts'));
}"""


def _wait_for(cond, within: float) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_closing_the_tab_stops_the_uploaded_models_worker(browser, streamlit_server, tmp_path):
    from vae_core import VAE, ModelConfig
    from vae_core.runs.model_files import export_torchscript

    torch.manual_seed(0)
    ts = export_torchscript(VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))).eval(),
                            tmp_path / "tab.ts")
    server = streamlit_server(REPO / "streamlit_app.py", env={"VAE_EXPLORER_UPLOADS": str(tmp_path / "uploads")})
    before = _workers_of(server.proc.pid)
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        page = context.new_page()
        page.goto(server.url)
        wait_app_ready(page, 120_000)
        page.get_by_text("Upload a model or data").click()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(0).set_input_files(str(ts))
        page.wait_for_function(MODEL_ACTIVE, timeout=180_000)
        mine = _workers_of(server.proc.pid) - before  # the active model's worker (a check's may have ended)
        assert mine, server.log()[-2000:]
        page.close()  # the websocket closes: Streamlit ends the session
        assert _wait_for(lambda: not (mine & _workers_of(server.proc.pid)), within=120), "the worker outlived its tab"
    finally:
        context.close()
