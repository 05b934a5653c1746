"""The attribute vector's strength slider in a real browser (the app's Explore page, Attribute vectors tab):
a step changes the decoded image on both paths, and the browser path paints torch's
decode(point + strength * vector) (issue 12, item 4).

With no point selected the vector starts from group A's mean code; the default groups are label 0
(A) and label 1 (B) of mnist on the shipped run, an MLP model: the browser decodes. Switching
"Decode in the browser" off puts the same panel on the server path.
"""
from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.browser import REPO, wait_app_ready

pytestmark = pytest.mark.browser

APP = REPO / "streamlit_app.py"
PANEL = "strength-sliders"
CANVAS_PIXELS = "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]"


def _wait(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (v := fn()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.05)
    return v


@pytest.fixture(scope="module")
def reference():
    """decode(start + s * (mean(label 1) - mean(label 0))) of the shipped run, in torch: start is
    mean(label 0), or the code mu of point `point` when given."""
    from vae_core import data as vdata
    from vae_core.runs import run_load

    model = run_load.load_run(REPO / "runs" / "default").model.eval()
    data = vdata.load_dataset("mnist", n=None, seed=0)
    with torch.inference_mode():
        mu = torch.cat([model.encode(data.x[i:i + 1000])[0] for i in range(0, len(data), 1000)]).double()
    y = torch.as_tensor(np.asarray(data.y))
    a, b = mu[y == 0].mean(0), mu[y == 1].mean(0)

    def decode(s: float, point: int | None = None) -> np.ndarray:
        start = a if point is None else mu[point]
        with torch.inference_mode():
            return model.decode((start + s * (b - a)).float()[None])[0, 0].double().numpy()

    return decode


def _open_tab(page, url: str):
    page.goto(f"{url}/Explore")
    page.get_by_test_id("latent-sliders").wait_for(timeout=180_000)
    wait_app_ready(page, 180_000)
    page.get_by_role("tab", name="Attribute vectors").click()
    panel = page.get_by_test_id(PANEL)
    panel.wait_for(timeout=30_000)
    _wait(lambda: panel.get_attribute("data-mode"), 30, "the strength panel to draw")
    return panel


def test_strength_step_changes_the_decoded_image_on_both_paths(page, streamlit_server, reference):
    url = streamlit_server(APP).url
    panel = _open_tab(page, url)
    assert panel.get_attribute("data-mode") == "browser"
    assert panel.locator(".vsl-name").all_inner_texts() == ["strength"]
    canvas = page.get_by_test_id(f"{PANEL}-canvas")
    slider = panel.locator("input[type=range]")
    before = canvas.evaluate(CANVAS_PIXELS)
    slider.focus()
    page.keyboard.press("ArrowRight")  # one step: 1.00 -> 1.05
    _wait(lambda: canvas.evaluate(CANVAS_PIXELS) != before, 5, "the strength canvas to change")
    s = float(slider.input_value())
    assert abs(s - 1.05) < 1e-9
    w, h, rgba = canvas.evaluate(CANVAS_PIXELS)
    got = np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)[..., 0] / 255
    err = np.abs(got - reference(s)).max()
    assert err <= 1 / 255 + 1e-9, f"the browser's image is decode(point + {s} x vector) within one grey level: {err}"

    # The server path: the same panel, each step answered with a PNG.
    page.get_by_text("Decode in the browser").first.click()
    _wait(lambda: panel.get_attribute("data-mode") == "python", 60, "the strength panel's server path")
    img = page.get_by_test_id(f"{PANEL}-image")
    _wait(lambda: (img.get_attribute("src") or "").startswith("data:image/png"), 30, "the server's image")
    src0 = img.get_attribute("src")
    slider.focus()
    page.keyboard.press("ArrowRight")
    src1 = _wait(lambda: (v := img.get_attribute("src")) != src0 and v, 60, "the server's image to change")
    png0, png1 = (base64.b64decode(src.split(",", 1)[1]) for src in (src0, src1))
    assert png0 != png1, "moving the slider changes the image's bytes"
    s = float(slider.input_value())
    got = np.asarray(Image.open(io.BytesIO(png1)), dtype=np.float64) / 255
    assert np.abs(got - reference(s)).max() <= 1 / 255 + 1e-9



def _decoded(canvas) -> np.ndarray:
    w, h, rgba = canvas.evaluate(CANVAS_PIXELS)
    return np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)[..., 0] / 255


def test_another_point_swaps_only_the_first_layer(page, streamlit_server, reference):
    """Moving the selected point after a draw: the browser, holding the model's deeper layers, gets
    the new folded first layer alone (data-layer-swaps counts it; data-decoder-loads, the whole
    decoders loaded, stays as it was) and paints decode(mu[point] + s * vector)."""
    url = streamlit_server(APP).url
    panel = _open_tab(page, url)
    canvas = page.get_by_test_id(f"{PANEL}-canvas")
    slider = panel.locator("input[type=range]")
    pick = page.get_by_label("Point", exact=True)
    # The first selection reshapes the page above the tabs, so the panel is drawn anew: whole decoder.
    pick.fill("3")
    pick.press("Enter")
    page.get_by_text("point #3 + strength").first.wait_for(state="attached", timeout=60_000)
    _wait(lambda: panel.get_attribute("data-mode") == "browser", 60, "the panel to draw from point 3")
    s = float(slider.input_value())
    _wait(lambda: np.abs(_decoded(canvas) - reference(s, 3)).max() <= 1 / 255 + 1e-9, 10, "decode of point 3")
    # Whether this first selection drew the panel anew (a whole decoder) or swapped the first layer of the
    # one it held depends on how the page above it reflowed; what follows counts from here.
    loads = panel.get_attribute("data-decoder-loads")
    swaps = int(panel.get_attribute("data-layer-swaps") or 0)
    assert loads

    before = _decoded(canvas)
    pick.fill("11")
    pick.press("Enter")
    _wait(lambda: int(panel.get_attribute("data-layer-swaps") or 0) == swaps + 1, 60, "the first layer of point 11")
    _wait(lambda: not np.array_equal(_decoded(canvas), before), 10, "the strength canvas to repaint")
    assert panel.get_attribute("data-decoder-loads") == loads, "the deeper layers never travel again"
    assert panel.get_attribute("data-mode") == "browser"
    s = float(slider.input_value())
    err = np.abs(_decoded(canvas) - reference(s, 11)).max()
    assert err <= 1 / 255 + 1e-9, f"the canvas is decode(mu[11] + {s} x vector) within one grey level: {err}"

    # A step still decodes in the browser, from the swapped decoder.
    before = _decoded(canvas)
    page.get_by_role("tab", name="Attribute vectors").click()  # the first selection reshaped the page
    slider.focus()
    page.keyboard.press("ArrowLeft")  # one step: 1.00 -> 0.95
    _wait(lambda: not np.array_equal(_decoded(canvas), before), 5, "the strength canvas to change")
    s = float(slider.input_value())
    assert np.abs(_decoded(canvas) - reference(s, 11)).max() <= 1 / 255 + 1e-9
    assert panel.get_attribute("data-decoder-loads") == loads
