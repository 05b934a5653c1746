"""Issue 22, item 3, in a real browser: on Compare, a box drawn on one of the two linked maps selects
the same rows on the other, and the legends count them as numpy does.

The shipped runs (runs/default and runs/learning-demo, both on mnist) are the two maps. The box is
drawn with the mouse (plotly's Box Select tool); its corners in data units come from plotly's own
selection event, the points from the figure the browser drew; numpy then says which rows lie in the box
(plotly decides in pixels, so the points within a pixel of the box's edges may go either way). Both
maps' selected points (their traces' selectedpoints, through their rows as customdata) must be the
same rows, the page's count their number, and each legend entry count them per label as numpy does."""
from __future__ import annotations

import re

import numpy as np
import pytest

from harness import REPO, wait_app_ready

pytestmark = pytest.mark.browser

CHARTS = '[data-testid="stPlotlyChart"]'
LEFT, RIGHT = 2, 3  # Compare's charts: KL per dimension, training curves, then the two linked maps
N = 5000  # mnist as shipped

# the figure as the browser holds it: per trace its rows (customdata), x, y, selected points and legend name
READ = """(el) => {
    const gd = el.querySelector('.js-plotly-plot');
    return gd._fullData.map(t => ({type: t.type, rows: Array.from(t.customdata || []), x: Array.from(t.x), y: Array.from(t.y),
        sel: t.selectedpoints == null ? null : Array.from(t.selectedpoints), name: t.name}));
}"""
# plotly's own report of a box selection, in data units: {x: [x0, x1], y: [y0, y1]}
LISTEN = """(el) => {
    const gd = el.querySelector('.js-plotly-plot');
    window.__box = null;
    gd.on('plotly_selected', (e) => { if (e && e.range) window.__box = e.range; });
}"""


def _charts(page):
    return page.locator(CHARTS)


def _box(page, side: int, fx: tuple[float, float], fy: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Draw a box on map `side` over the fractions fx, fy of its plot area; returns its corners in data
    units as plotly reported them (its plotly_selected event)."""
    chart = _charts(page).nth(side)
    chart.scroll_into_view_if_needed()
    drag = chart.locator(".nsewdrag").first
    drag.hover()
    chart.locator('.modebar-btn[data-title="Box Select"]').click()
    page.evaluate(LISTEN, chart.element_handle())
    bb = drag.bounding_box()
    page.mouse.move(bb["x"] + fx[0] * bb["width"], bb["y"] + fy[0] * bb["height"])
    page.mouse.down()
    page.mouse.move(bb["x"] + fx[1] * bb["width"], bb["y"] + fy[1] * bb["height"], steps=12)
    page.mouse.up()
    page.wait_for_function("() => window.__box !== null", timeout=30_000)
    box = page.evaluate("() => window.__box")
    x, y = sorted(box["x"]), sorted(box["y"])
    return np.array([x[0], y[0]]), np.array([x[1], y[1]])


DRAWN = """(el) => { const gd = el.querySelector('.js-plotly-plot');
                    return !!(gd && gd._fullData && gd._fullData.length > 0); }"""


def _figure(page, side: int) -> list[dict]:
    loc = _charts(page).nth(side)
    loc.scroll_into_view_if_needed()  # a chart out of view may not be drawn yet
    chart = loc.element_handle()
    page.wait_for_function(DRAWN, arg=chart, timeout=60_000)  # plotly has drawn it
    return page.evaluate(READ, chart)


def _in_box(fig: list[dict], lo: np.ndarray, hi: np.ndarray) -> set[int]:
    """numpy: the rows whose drawn point lies in the box."""
    rows = np.concatenate([t["rows"] for t in fig]).astype(int)
    xy = np.stack([np.concatenate([t["x"] for t in fig]), np.concatenate([t["y"] for t in fig])], 1)
    inside = np.all((xy >= lo) & (xy <= hi), axis=1)
    return set(rows[inside].tolist())


def _pixel(page, side: int) -> np.ndarray:
    """One screen pixel of map `side` in data units (x, y): plotly tests a box in pixels."""
    return np.array(page.evaluate("""(el) => { const l = el.querySelector('.js-plotly-plot')._fullLayout;
        const w = (a) => Math.abs(a.range[1] - a.range[0]) / a._length; return [w(l.xaxis), w(l.yaxis)]; }""",
                                  _charts(page).nth(side).element_handle()))


def _check_box(got: set[int], fig: list[dict], lo: np.ndarray, hi: np.ndarray, px: np.ndarray) -> None:
    """got is numpy's box, up to the points within a pixel of its edges (plotly decides those in pixels)."""
    surely, maybe = _in_box(fig, lo + px, hi - px), _in_box(fig, lo - px, hi + px)
    assert surely <= got <= maybe, (len(surely - got), len(got - maybe))
    assert len(maybe) - len(surely) < 0.05 * len(surely)  # the edges decide little


def _selected(fig: list[dict]) -> set[int]:
    return {int(t["rows"][i]) for t in fig if t["sel"] is not None for i in t["sel"]}


def _check_other(page, other: int, want: set[int], labels: dict[int, int]) -> None:
    fig = _figure(page, other)
    assert _selected(fig) == want
    for t in fig:  # each legend entry: "label v: selected / all" as numpy counts them
        v = labels[int(t["rows"][0])]
        k = sum(1 for r in want if labels[r] == v)
        assert re.fullmatch(rf"label {v}: {k:,} / {len(t['rows']):,}", t["name"]), t["name"]


SAID = r"Selected ([0-9,]+) of [0-9,]+ points, on the {} map"


def _said(page, side: str) -> None:
    """Wait for the rerun the selection started: the page says which map it was made on."""
    page.get_by_text(re.compile(SAID.format(side))).wait_for(timeout=120_000)
    wait_app_ready(page, 120_000)


def _count(page) -> int:
    """The page's count of the selection."""
    text = page.get_by_text(re.compile(SAID.format("(left|right)"))).inner_text()
    return int(re.search(r"Selected ([0-9,]+)", text).group(1).replace(",", ""))


def test_a_box_on_either_map_selects_the_same_rows_on_the_other(page, streamlit_server):
    srv = streamlit_server(REPO / "streamlit_app.py")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{srv.url}/Compare")
    wait_app_ready(page, 300_000)
    # the reports, the encodings, then the maps and the sentence under them (the page's last element)
    page.get_by_text("Draw a lasso or a box on either map").wait_for(timeout=300_000)
    wait_app_ready(page, 300_000)
    left = _figure(page, LEFT)
    labels = {int(r): int(t["name"].split()[1].rstrip(":")) for t in left for r in t["rows"]}
    assert len(labels) == N and all(t["sel"] is None for t in left)

    lo, hi = _box(page, LEFT, (0.15, 0.5), (0.3, 0.7))
    _said(page, "left")
    got = _selected(_figure(page, RIGHT))
    _check_box(got, _figure(page, LEFT), lo, hi, _pixel(page, LEFT))
    assert 20 < len(got) < 4000
    _check_other(page, RIGHT, got, labels)
    assert _selected(_figure(page, LEFT)) == got  # the map it was drawn on shows the same rows
    assert _count(page) == len(got)

    lo, hi = _box(page, RIGHT, (0.5, 0.9), (0.2, 0.6))  # and back: a box on the right map
    _said(page, "right")
    got2 = _selected(_figure(page, LEFT))
    _check_box(got2, _figure(page, RIGHT), lo, hi, _pixel(page, RIGHT))
    assert 20 < len(got2) < 4000 and got2 != got
    _check_other(page, LEFT, got2, labels)
    assert _selected(_figure(page, RIGHT)) == got2
    assert _count(page) == len(got2)
    assert len(page.get_by_text(f"the decoded mean code of the {len(got2):,} selected points").all()) == 2


def test_at_100000_points_a_box_on_one_map_selects_the_same_rows_on_the_other(page, streamlit_server):
    """The same, on the section's maps alone (tests/browser/linked_scale_app.py) at 100,000 points."""
    srv = streamlit_server(REPO / "tests" / "browser" / "linked_scale_app.py")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{srv.url}/?n=100000", timeout=120_000)
    page.get_by_text("Draw a lasso or a box on either map").wait_for(timeout=300_000)
    wait_app_ready(page, 300_000)
    left = _figure(page, 0)
    labels = {int(r): int(t["name"].split()[1].rstrip(":")) for t in left for r in t["rows"]}
    assert len(labels) == 100_000 and all(t["type"] == "scattergl" for t in left)
    lo, hi = _box(page, 0, (0.4, 0.6), (0.3, 0.7))
    _said(page, "left")
    got = _selected(_figure(page, 1))
    _check_box(got, _figure(page, 0), lo, hi, _pixel(page, 0))
    assert 1000 < len(got) < 90_000
    _check_other(page, 1, got, labels)
    assert _count(page) == len(got)
