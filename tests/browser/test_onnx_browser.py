"""Every decoder in the browser: a convolutional run's decoder runs as ONNX under onnxruntime-web on the
real app's Explore page (headless Chromium).

One server for the module, on a temporary runs folder whose `default` run is a small untrained conv VAE
for MNIST's shape, and a temporary ONNX cache. Each test opens a fresh browser context.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch

from benchmarks.browser import REPO, wait_app_ready
from harness import collect_console, describe_page, wait_until

pytestmark = pytest.mark.browser

APP = REPO / "streamlit_app.py"

CANVAS_PIXELS = "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]"


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    """runs/default of a temporary runs folder: a conv VAE (1x28x28, two stride-2 convs, latent 4), untrained."""
    from vae_core.runs.checkpoints import save_run
    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.models import VAE

    runs = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 28, 28), arch="conv", conv_channels=(8, 16), hidden=(32,), latent_dim=4))
    with torch.no_grad():  # untrained, but with pictures that change visibly with z (the checks need contrast)
        model.decoder[-1].weight.mul_(20)
    path = save_run(runs / "default", model, TrainConfig(epochs=1), [{"epoch": 1}], dataset="mnist")
    return runs, path


@pytest.fixture(scope="module")
def app_url(streamlit_server, conv_run, tmp_path_factory, browser) -> str:
    runs, _ = conv_run
    env = {"VAE_EXPLORER_RUNS": str(runs), "VAE_EXPLORER_UPLOADS": str(tmp_path_factory.mktemp("uploads")),
           "VAE_EXPLORER_ONNX_CACHE": str(tmp_path_factory.mktemp("onnx"))}
    server = streamlit_server(APP, env=env)
    url = server.url
    # The module's cold start, once: the run's first encoding and ONNX export on a fresh server, and
    # onnxruntime-web's 14 MB WebAssembly compiled by a fresh browser (over 60 s once in a full suite run
    # on 2 loaded cores). The tests then time their own steps on a warm server, each in a new context.
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        collect_console(page)
        page.goto(f"{url}/Explore")
        panel = page.get_by_test_id("latent-sliders")
        try:
            panel.wait_for(timeout=240_000)
            wait_until(lambda: panel.get_attribute("data-mode") == "browser", 240, "the first ONNX session")
        except Exception as e:  # a setup failure is not dumped by the report hook: say what the page showed
            raise AssertionError(f"{e}\n{describe_page(page)}\nthe server's log (end):\n{server.log()[-6000:]}") from None
    finally:
        ctx.close()
    return url


@pytest.fixture(scope="module")
def model(conv_run):
    from vae_core.runs.run_load import load_run

    return load_run(conv_run[1]).model.eval()


def open_explore(page, url: str, mode: str | None = "browser"):
    """Load /Explore; wait for the sliders to draw (in `mode`, when given); returns the slider panel."""
    page.goto(f"{url}/Explore")
    panel = page.get_by_test_id("latent-sliders")
    panel.wait_for(timeout=180_000)
    wait_app_ready(page, 180_000)
    if mode is not None:
        wait_until(lambda: panel.get_attribute("data-mode") == mode, 60, f"the sliders in {mode!r} mode")
    return panel


def slider_z(panel) -> np.ndarray:
    pairs = panel.locator("input[type=range]").evaluate_all("xs => xs.map(x => [Number(x.dataset.dim), Number(x.value)])")
    z = np.zeros(len(pairs))
    for j, v in pairs:
        z[j] = v
    return z


def canvas_image(canvas) -> np.ndarray:
    w, h, rgba = canvas.evaluate(CANVAS_PIXELS)
    return np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)


def test_slider_step_decodes_conv_model_in_browser_as_torch(page, app_url, model):
    panel = open_explore(page, app_url)
    loader = page.get_by_test_id("onnx-runtime")
    wait_until(lambda: loader.get_attribute("data-state") == "ready", 60, "the loader to report its session ready")
    assert loader.get_attribute("data-loads") == "1"
    canvas = page.get_by_test_id("latent-sliders-canvas")
    wait_until(lambda: int(canvas.get_attribute("data-decodes") or 0) > 0, 30, "the first browser decode")
    img = page.get_by_test_id("latent-sliders-image")
    src_before = img.get_attribute("src")
    sends0 = int(panel.get_attribute("data-sends") or 0)
    ranges = panel.locator("input[type=range]")
    z_before = slider_z(panel)
    for k, presses, key in [(0, 14, "ArrowRight"), (1, 9, "ArrowLeft")]:
        ranges.nth(k).focus()
        for _ in range(presses):
            before = int(canvas.get_attribute("data-decodes"))
            page.keyboard.press(key)
            # every step is painted by the browser's own decode (the canvas's count), not by an image
            wait_until(lambda: int(canvas.get_attribute("data-decodes")) > before, 10, "the canvas to repaint")
    z = slider_z(panel)
    assert np.abs(z - z_before).max() > 0.4, (z_before.tolist(), z.tolist())
    # the last step's picture: wait until the queued decodes have settled on the final z
    page.wait_for_function("c => c.dataset.busy === '0'", arg=canvas.element_handle())
    wait_until(lambda: panel.get_attribute("data-mode") == "browser", 5, "the browser path to stay on")
    assert img.get_attribute("src") == src_before, "the server sent a picture: the step went through a rerun"
    assert int(panel.get_attribute("data-sends") or 0) >= sends0  # Python hears the values on release only
    got = canvas_image(canvas)
    with torch.inference_mode():
        want = model.decode(torch.as_tensor(z[None], dtype=torch.float32))[0, 0].double().numpy()
    assert got.shape[:2] == want.shape
    assert np.ptp(want) > 0.2, "a decoder whose picture varies, so equality means something"
    for ch in range(3):
        err = np.abs(got[..., ch] / 255.0 - want).max()
        assert err <= 2 / 255 + 1e-9, f"channel {ch}: max abs diff {err * 255:.3f}/255 at z={z.tolist()}"


def test_pad_decodes_conv_model_in_browser_as_torch(page, app_url, model):
    from vae_core import data as vdata
    from vae_core.maps.projection import Projection

    data = vdata.load_dataset("mnist", n=None, seed=0)
    with torch.inference_mode():  # the PCA map the app builds, from torch's own codes
        mu = torch.cat([model.encode(data.x[i:i + 1000])[0] for i in range(0, len(data), 1000)]).float().numpy()
    proj = Projection("pca", 2).fit(mu)
    open_explore(page, app_url)
    plane = page.get_by_test_id("latent-pad")
    wait_until(lambda: plane.get_attribute("data-mode") == "browser", 30, "the pad's browser path")
    canvas = page.get_by_test_id("latent-pad-canvas")
    plane.scroll_into_view_if_needed()
    box = plane.bounding_box()
    before = int(canvas.get_attribute("data-decodes") or 0)
    page.mouse.click(box["x"] + 0.2 * box["width"], box["y"] + 0.3 * box["height"])
    wait_until(lambda: int(canvas.get_attribute("data-decodes") or 0) > before, 10, "the pad's canvas to repaint")
    page.wait_for_function("c => c.dataset.busy === '0'", arg=canvas.element_handle())
    x, y = float(plane.get_attribute("data-x")), float(plane.get_attribute("data-y"))
    got = canvas_image(canvas)
    z, _ = proj.inverse(np.array([[x, y]]))  # the exact PCA inverse, as the app's pad uses
    with torch.inference_mode():
        want = model.decode(torch.as_tensor(z, dtype=torch.float32))[0, 0].double().numpy()
    assert got.shape[:2] == want.shape and np.ptp(want) > 0.2
    for ch in range(3):
        err = np.abs(got[..., ch] / 255.0 - want).max()
        assert err <= 2 / 255 + 1e-9, f"channel {ch}: max abs diff {err * 255:.3f}/255 at pad ({x}, {y})"


def test_webassembly_failure_falls_back_to_server_with_reason(page, app_url):
    """The WebAssembly file cannot be fetched: the loader says so, and the server decodes with the reason."""
    page.route("**/ort-wasm-simd-threaded.wasm", lambda route: route.abort())
    panel = open_explore(page, app_url, mode=None)
    loader = page.get_by_test_id("onnx-runtime")
    wait_until(lambda: loader.get_attribute("data-state") == "error", 60, "the loader to fail")
    wait_app_ready(page, 60_000)
    page.get_by_text("Decoding on the server: your browser could not run the decoder").wait_for(timeout=30_000)
    assert panel.get_attribute("data-mode") == "python"
    img = page.get_by_test_id("latent-sliders-image")
    before = img.get_attribute("src")
    assert before and before.startswith("data:image/png")
    panel.locator("input[type=range]").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("([i, old]) => i.getAttribute('src') !== old", arg=[img.element_handle(), before],
                           timeout=30_000)
