"""The latent map element in a real browser: every point of a 1,000,000-point map arrives, a
page rerun does not send the points again, and a click selects the clicked point's index."""
from __future__ import annotations

from pathlib import Path

from benchmarks.browser import wait_app_ready

APP = Path(__file__).with_name("map_app.py")
MAP = '[data-testid="latent-map"]'


def _open(page, server, query: str) -> None:
    page.goto(f"{server.url}/{query}")
    wait_app_ready(page, timeout_ms=180_000)
    page.wait_for_selector(f"{MAP}[data-points]", timeout=180_000)


def test_a_million_points_arrive_and_a_rerun_does_not_resend_them(page, streamlit_server):
    server = streamlit_server(APP)
    frames: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(len(f))))
    _open(page, server, "?n=1000000")
    # Every point plotly holds, counted in the browser from the drawn traces' typed arrays.
    assert page.locator(MAP).get_attribute("data-points") == "1000000"
    first = sum(frames)
    assert first > 12_000_000  # the points did travel: 12 bytes each before base64
    frames.clear()
    page.get_by_role("button", name="rerun the page").click()
    page.wait_for_function("() => document.body.innerText.includes('rerun button pressed: True')",
                           timeout=120_000)
    wait_app_ready(page, timeout_ms=120_000)
    assert page.locator(MAP).get_attribute("data-points") == "1000000"
    assert sum(frames) < 500_000, f"a rerun received {sum(frames):,} bytes"


def test_click_selects_the_clicked_points_index(page, streamlit_server):
    server = streamlit_server(APP)
    _open(page, server, "")
    assert page.locator(MAP).get_attribute("data-points") == "5"
    for index, (x, y) in [(3, (4.0, 4.0)), (4, (2.0, 2.0)), (1, (4.0, 0.0))]:
        # Page pixel of data point (x, y) from plotly's own axes of the drawn figure.
        px, py = page.evaluate(
            """([x, y]) => { const gd = document.querySelector('[data-testid="latent-map"] .js-plotly-plot');
                 const fl = gd._fullLayout, r = gd.getBoundingClientRect();
                 return [r.left + fl._size.l + fl.xaxis.l2p(x), r.top + fl._size.t + fl.yaxis.l2p(y)]; }""",
            [x, y])
        page.mouse.move(px, py)
        # plotly clicks the point it hovers: wait for its hover label to name this point
        page.wait_for_function(f"() => [...document.querySelectorAll('{MAP} .hovertext')]"
                               f".some((h) => h.textContent.includes('point {index}'))", timeout=30_000)
        page.mouse.click(px, py)
        page.wait_for_function(f"() => document.body.innerText.includes('selected={index} ')", timeout=60_000)
