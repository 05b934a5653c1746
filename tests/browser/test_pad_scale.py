"""The drag pad behind a 1,000,000-point map in a real browser: it draws its bounded sample without a
page error, the points travel once and compactly, and dragging still reports positions."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.browser import wait_app_ready

pytestmark = pytest.mark.browser

APP = Path(__file__).with_name("pad_scale_app.py")
PLANE = '[data-testid="latent-pad"]'


def test_pad_draws_a_million_point_map_once_and_compactly(page, streamlit_server):
    server = streamlit_server(APP)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    frames: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(len(f))))
    page.goto(f"{server.url}/?n=1000000")
    wait_app_ready(page, timeout_ms=180_000)
    page.wait_for_selector(f"{PLANE}[data-scatter-drawn]", timeout=120_000)
    plane = page.locator(PLANE)
    assert plane.get_attribute("data-scatter-total") == "1000000"
    assert plane.get_attribute("data-scatter-drawn") == "20000"
    assert plane.get_attribute("data-scatter-loads") == "1"
    # 20,000 points of 9 bytes before base64, not 1,000,000 (the page's JS and CSS come on top)
    assert sum(frames) < 3_000_000, f"the first draw received {sum(frames):,} bytes"
    # The canvas shows the points: thousands of painted pixels in several of the palette's colours.
    painted, colours = plane.locator("canvas.vpad-bg").evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, seen = new Set();
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) { n++; seen.add(d[i] >> 5 << 6 | d[i + 1] >> 5 << 3 | d[i + 2] >> 5); }
        return [n, seen.size]; }""")
    assert painted > 5_000 and colours >= 5, (painted, colours)

    frames.clear()
    page.get_by_role("button", name="rerun the page").click()
    page.wait_for_function("() => document.body.innerText.includes('rerun button pressed: True')", timeout=60_000)
    wait_app_ready(page, timeout_ms=60_000)
    assert plane.get_attribute("data-scatter-loads") == "1"
    assert sum(frames) < 200_000, f"a rerun received {sum(frames):,} bytes"

    box = plane.bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 0.25 * box["height"])
    x, y = float(plane.get_attribute("data-x")), float(plane.get_attribute("data-y"))
    assert x > 0 and y > 0
    page.wait_for_function(f"() => document.body.innerText.includes('pad_z={x!r},{y!r}')", timeout=60_000)
    assert not errors, errors
