"""Issue 20, item 2: the Explore page's code-tool tabs jumped back to the first (Neighbours) whenever a
point or a selection was made or cleared; the tab the user chose stays chosen."""
from __future__ import annotations

import pytest

from benchmarks.browser import REPO, wait_app_ready

pytestmark = pytest.mark.browser


def _selected_tab(page) -> str:
    return page.locator('[role="tab"][aria-selected="true"]').first.inner_text().strip()


def _wait_rerun_done(page, text: str) -> None:
    page.get_by_text(text).first.wait_for(timeout=120_000)
    wait_app_ready(page, 120_000)


def test_the_chosen_tab_stays_when_a_point_is_picked_and_cleared(page, streamlit_server):
    srv = streamlit_server(REPO / "streamlit_app.py")
    page.goto(f"{srv.url}/Explore")
    wait_app_ready(page, 180_000)
    page.get_by_role("tab", name="Prior samples").click()
    page.get_by_text("Draw codes from the prior").first.wait_for(timeout=60_000)
    assert _selected_tab(page) == "Prior samples"
    box = page.get_by_label("Point", exact=True)
    box.fill("5")
    box.press("Enter")
    _wait_rerun_done(page, "original #5")  # the page above the tabs grew: the point's panel
    assert _selected_tab(page) == "Prior samples", "picking a point kept the tab"
    page.get_by_role("button", name="Clear", exact=True).click()
    _wait_rerun_done(page, "Click a point on the map (or type its number)")
    assert _selected_tab(page) == "Prior samples", "clearing the point kept the tab"
