"""Issue 20, item 8: the app fetches nothing from outside the server (an offline lab server shows
everything), and the console stays free of Streamlit's "Multiple different fragmentIds" warning.

Every page is opened in Chromium; every request the page makes is recorded (and anything not for the
app's own server is refused, as offline), the favicon's address is read from the document, and the
console is captured."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

from benchmarks.browser import REPO, wait_app_ready

pytestmark = pytest.mark.browser

PAGES = ("", "Explore", "Train", "Diagnose", "Blurriness", "Compare")
LOCAL = {"127.0.0.1", "localhost"}


def _outside(url: str) -> bool:
    p = urlparse(url)
    return p.scheme in ("http", "https", "ws", "wss") and p.hostname not in LOCAL


def test_every_page_fetches_nothing_from_outside_and_the_console_is_quiet(page, streamlit_server):
    srv = streamlit_server(REPO / "streamlit_app.py")
    outside: list[str] = []
    console: list[str] = []

    def route(r):
        if _outside(r.request.url):
            outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.context.route("**/*", route)
    page.on("request", lambda req: outside.append(req.url) if _outside(req.url) else None)
    page.on("console", lambda msg: console.append(msg.text))
    for name in PAGES:
        page.goto(f"{srv.url}/{name}")
        wait_app_ready(page, 180_000)
        page.get_by_role("heading").first.wait_for(timeout=60_000)
        icon = page.evaluate("() => { const l = document.querySelector(\"link[rel='shortcut icon']\"); "
                             "return l ? l.href : ''; }")
        assert not _outside(icon), f"{name or 'Home'}: the favicon comes from {icon}"
    # the map page once more, its map drawn (its fragments and components all run)
    page.goto(f"{srv.url}/Explore")
    wait_app_ready(page, 180_000)
    page.locator('[data-testid="latent-map"], .js-plotly-plot').first.wait_for(timeout=120_000)
    assert not outside, sorted(set(outside))
    warned = [m for m in console if "fragmentId" in m]
    assert not warned, f"{len(warned)} console warnings, e.g. {warned[0]}"
