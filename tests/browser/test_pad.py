"""The latent pad and a slider in real headless Chromium.

How: docs/live-decoding.md, "Testing it in a real browser".
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pad_model import build_model

pytestmark = pytest.mark.browser

APP = Path(__file__).parent / "pad_app.py"
PAD_Z = re.compile(r"pad_z=(\S+),(\S+) down=(\w+)")


@pytest.fixture(scope="module")
def app_url(streamlit_server) -> str:
    return streamlit_server(APP).url


def open_app(page, url: str, mode: str = "python"):
    """Load the demo and return the pad's plane locator once the pad has drawn."""
    from benchmarks.browser import wait_app_ready

    page.goto(f"{url}/?mode={mode}")
    wait_app_ready(page)
    plane = page.get_by_test_id("latent-pad")
    plane.wait_for(timeout=30_000)
    expect_mode(plane, mode)
    return plane


def expect_mode(plane, mode: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while plane.get_attribute("data-mode") != mode:
        assert time.monotonic() < deadline, f"pad never reached mode {mode!r}"
        time.sleep(0.05)


def python_z(page) -> tuple[float, float, bool]:
    """The position the script last saw, from its st.text outside the component."""
    m = PAD_Z.search(page.get_by_text("pad_z=").inner_text())
    assert m, "pad_z text missing"
    return float(m.group(1)), float(m.group(2)), m.group(3) == "True"


def wait_python_z(page, x: float, y: float, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        px, py, down = python_z(page)
        if abs(px - x) < 1e-9 and abs(py - y) < 1e-9 and not down:
            return
        assert time.monotonic() < deadline, f"Python shows {(px, py, down)}, browser is at {(x, y)}"
        time.sleep(0.05)


def plane_xy(plane) -> tuple[float, float]:
    return float(plane.get_attribute("data-x")), float(plane.get_attribute("data-y"))


def drag(page, plane, frac_from, frac_to, steps: int = 20, pause_ms: int = 50, before_up=None):
    """Press at one point of the plane, move in `steps`, optionally look, then release."""
    box = plane.bounding_box()
    at = lambda f: (box["x"] + f[0] * box["width"], box["y"] + f[1] * box["height"])  # noqa: E731
    page.mouse.move(*at(frac_from))
    page.mouse.down()
    for i in range(1, steps + 1):
        t = i / steps
        page.mouse.move(*at((frac_from[0] + t * (frac_to[0] - frac_from[0]),
                             frac_from[1] + t * (frac_to[1] - frac_from[1]))))
        page.wait_for_timeout(pause_ms)
    seen = before_up() if before_up else None
    page.mouse.up()
    return seen


def test_slider_step_changes_image(page, app_url):
    open_app(page, app_url)
    img = page.locator('[data-testid="stImage"] img').first
    before = img.get_attribute("src")
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    thumb.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "old => { const i = document.querySelector('[data-testid=\"stImage\"] img'); return i && i.src && i.getAttribute('src') !== old; }",
        arg=before, timeout=15_000,
    )


def test_drag_updates_image_during_drag_python_path(page, app_url):
    plane = open_app(page, app_url, "python")
    img = page.get_by_test_id("latent-pad-image")
    img.wait_for(state="visible")
    # Count src changes from inside the shadow root (the observer lives on the element itself).
    img.evaluate("""i => { window.__srcChanges = 0;
        new MutationObserver(() => window.__srcChanges++).observe(i, {attributes: true, attributeFilter: ['src']}); }""")
    changes = drag(page, plane, (0.2, 0.8), (0.8, 0.2), before_up=lambda: page.evaluate("window.__srcChanges"))
    assert changes >= 2, f"only {changes} image updates before release"
    x, y = plane_xy(plane)
    wait_python_z(page, x, y)
    # The background map traveled once, not with every image.
    assert plane.get_attribute("data-scatter-loads") == "1"


def test_browser_decoder_matches_torch(page, app_url):
    plane = open_app(page, app_url, "browser")
    canvas = page.get_by_test_id("latent-pad-canvas")
    box = plane.bounding_box()
    page.mouse.click(box["x"] + 0.31 * box["width"], box["y"] + 0.67 * box["height"])
    x, y = plane_xy(plane)
    assert (x, y) != (0.0, 0.0)
    w, h, rgba = canvas.evaluate(
        "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]")
    got = np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)
    with torch.inference_mode():
        want = build_model().decode(torch.tensor([[x, y]], dtype=torch.float32))[0, 0].double().numpy()
    assert (h, w) == want.shape
    assert np.all(got[..., 3] == 255)
    for ch in range(3):
        # The canvas holds round(255 p): within half a level of torch, well inside 1/255.
        err = np.abs(got[..., ch] / 255.0 - want).max()
        assert err <= 1 / 255 + 1e-9, f"channel {ch}: max abs diff {err * 255:.3f}/255"


@pytest.mark.parametrize("mode", ["browser", "python"])
def test_release_position_reaches_python(page, app_url, mode):
    plane = open_app(page, app_url, mode)
    sends_before = int(plane.get_attribute("data-sends") or 0)
    drag(page, plane, (0.5, 0.5), (0.15, 0.35), steps=12, pause_ms=30)
    x, y = plane_xy(plane)
    wait_python_z(page, x, y)
    if mode == "browser":
        # Every move decoded here; Python told once, on release; weights sent once.
        assert int(plane.get_attribute("data-sends")) - sends_before == 1
        decodes = int(page.get_by_test_id("latent-pad-canvas").get_attribute("data-decodes"))
        assert decodes >= 12
        assert plane.get_attribute("data-decoder-loads") == "1"
