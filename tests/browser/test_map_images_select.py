"""The latent map's images and selections in a real browser, on a hand-made map whose positions and
images are known (`map_select_app.hand_made`): hovering a point shows exactly that point's image
(pixels read back from the shown canvas), the thumbnails view draws each image where its point
is and only once few enough points are in view, and a lasso or a box selects exactly the points
inside it (against matplotlib's point-in-polygon), greying the rest."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.path import Path as Polygon

from benchmarks.browser import wait_app_ready
from map_select_app import hand_made

APP = Path(__file__).with_name("map_select_app.py")
MAP = '[data-testid="latent-map"]'
GD = f'document.querySelector(\'{MAP} .js-plotly-plot\')'


def _open(page, server, query: str = "") -> None:
    page.goto(f"{server.url}/{query}")
    wait_app_ready(page, timeout_ms=120_000)
    page.wait_for_selector(f"{MAP}[data-points][data-thumbs]", timeout=120_000)


def _pixel(page, x: float, y: float) -> tuple[float, float]:
    """Page pixel of map point (x, y), from plotly's own axes of the drawn figure."""
    return tuple(page.evaluate(
        f"""([x, y]) => {{ const gd = {GD}; const fl = gd._fullLayout, r = gd.getBoundingClientRect();
             return [r.left + fl._size.l + fl.xaxis.l2p(x), r.top + fl._size.t + fl.yaxis.l2p(y)]; }}""",
        [float(x), float(y)]))


def test_hovering_a_point_shows_that_points_image(page, streamlit_server):
    coords, _, images = hand_made()
    _open(page, streamlit_server(APP))
    for i in (0, 14, 35, 21):
        page.mouse.move(*_pixel(page, *coords[i]))
        page.wait_for_function(f"() => document.querySelector('[data-testid=\"latent-map-hover\"]')"
                               f".dataset.index === '{i}'", timeout=30_000)
        shown = page.evaluate("""() => { const c = document.querySelector('.vmap-hover-img');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
            return [c.width, c.height, Array.from(d.data)]; }""")
        w, h, rgba = shown
        assert (h, w) == images[i].shape
        px = np.array(rgba, dtype=np.uint8).reshape(h, w, 4)
        np.testing.assert_array_equal(px[..., 0], images[i])  # grey: R = G = B = the image
        np.testing.assert_array_equal(px[..., 1], images[i])
        assert (px[..., 3] == 255).all()
        assert page.locator('[data-testid="latent-map-hover"]').is_visible()


def test_thumbnails_view_draws_each_image_at_its_point(page, streamlit_server):
    coords, _, images = hand_made()
    _open(page, streamlit_server(APP), "?thumbs=1")
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.thumbsDrawn === '36'", timeout=30_000)
    for i in (0, 8, 35):
        # the canvas sits on the plot area; thumbnail pixel (r, c) covers k x k canvas pixels
        got = page.evaluate(f"""(i) => {{ const gd = {GD}, fl = gd._fullLayout;
            const c = document.querySelector('[data-testid="latent-map-thumbs"]');
            const k = Math.ceil(28 / 12), side = 12 * k;
            const px = Math.round(fl.xaxis.l2p({float(coords[i, 0])}) - side / 2);
            const py = Math.round(fl.yaxis.l2p({float(coords[i, 1])}) - side / 2);
            const dpr = window.devicePixelRatio || 1;
            const d = c.getContext('2d').getImageData(Math.round(px * dpr), Math.round(py * dpr),
                                                       Math.round(side * dpr), Math.round(side * dpr));
            const out = [];
            for (let r = 0; r < 12; r++) for (let q = 0; q < 12; q++) {{
              const y = Math.floor((r * k + k / 2) * dpr), x = Math.floor((q * k + k / 2) * dpr);
              out.push(d.data[(y * d.width + x) * 4]); }}
            return out; }}""", i)
        np.testing.assert_array_equal(np.array(got, np.uint8).reshape(12, 12), images[i])


def test_thumbnails_wait_until_few_enough_points_are_in_view(page, streamlit_server):
    coords, _, _ = hand_made(3000)
    _open(page, streamlit_server(APP), "?n=3000&thumbs=1")
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.thumbsDrawn === '0'", timeout=30_000)
    assert "more than 2,000 points in view" in page.locator(MAP).inner_text()
    x0, x1, y0, y1 = 0.5, 2.5, 0.5, 2.5  # zoom in: about 3000 * (2/7)^2 = 245 points in view
    page.evaluate(f"() => Plotly.relayout({GD}, {{'xaxis.range': [{x0}, {x1}], 'yaxis.range': [{y0}, {y1}]}})")
    inside = int(((coords[:, 0] >= x0) & (coords[:, 0] <= x1) & (coords[:, 1] >= y0) & (coords[:, 1] <= y1)).sum())
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.thumbsDrawn === '{inside}'",
                           timeout=30_000)


def _choose_tool(page, title: str) -> None:
    page.locator(f'{MAP} .modebar-btn[data-title="{title}"]').click()


def _expect_selection(page, expected: np.ndarray) -> None:
    want = ",".join(map(str, expected.tolist()))
    page.wait_for_function(f"() => document.body.innerText.includes('selection={want}\\n') || "
                           f"document.body.innerText.trim().endsWith('selection={want}')", timeout=60_000)
    # plotly greys the rest: exactly the expected rows are marked selected on the drawn traces
    marked = page.evaluate(f"""() => {{ const gd = {GD}; const out = [];
        for (const t of gd._fullData) if (t.customdata && t.selectedpoints)
          for (const k of t.selectedpoints) out.push(t.customdata[k]);
        return out.sort((a, b) => a - b); }}""")
    assert marked == expected.tolist()


def test_a_lasso_selects_exactly_the_points_inside_it(page, streamlit_server):
    coords, _, _ = hand_made()
    _open(page, streamlit_server(APP))
    _choose_tool(page, "Lasso Select")
    # a pentagon in map coordinates, its edges well away from every grid point
    poly = np.array([[0.5, 0.5], [3.5, 0.3], [4.6, 2.5], [2.5, 4.5], [0.3, 3.4]])
    expected = np.flatnonzero(Polygon(poly).contains_points(coords))
    assert 5 < len(expected) < 36
    pts = [_pixel(page, *p) for p in np.vstack([poly, poly[:1]])]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for a, b in zip(pts[:-1], pts[1:]):
        for t in np.linspace(0, 1, 8)[1:]:
            page.mouse.move(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
    page.mouse.up()
    _expect_selection(page, expected)


def test_a_box_selects_exactly_the_points_inside_it_and_a_double_click_clears_it(page, streamlit_server):
    coords, _, _ = hand_made()
    _open(page, streamlit_server(APP))
    _choose_tool(page, "Box Select")
    (ax, ay), (bx, by) = _pixel(page, 1.5, 3.5), _pixel(page, 4.5, 1.5)
    expected = np.flatnonzero((coords[:, 0] > 1.5) & (coords[:, 0] < 4.5) & (coords[:, 1] > 1.5) & (coords[:, 1] < 3.5))
    assert len(expected) == 6
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move((ax + bx) / 2, (ay + by) / 2, steps=5)
    page.mouse.move(bx, by, steps=5)
    page.mouse.up()
    _expect_selection(page, expected)
    # a double-click on empty plot area clears it
    page.mouse.dblclick(*_pixel(page, 0.5, 4.5))
    page.wait_for_function("() => document.body.innerText.includes('selection=none')", timeout=60_000)


ISOLATED_POINT = """gd => { // the screen position and row of the most isolated marker well inside the plot area
    const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis, r = gd.getBoundingClientRect(), pts = [];
    for (const t of gd._fullData) {
      if (!t.customdata || !t.x || t.visible !== true) continue;
      for (let i = 0; i < t.x.length; i++) {
        const px = xa._offset + xa.l2p(t.x[i]), py = ya._offset + ya.l2p(t.y[i]);
        if (px > xa._offset + 120 && px < xa._offset + xa._length - 120 && py > ya._offset + 40 &&
            py < ya._offset + ya._length - 120) pts.push([px, py, Number(t.customdata[i])]);
      }
    }
    let best = null, bestD = 0;
    for (const a of pts) {
      let d = Infinity;
      for (const b of pts) if (b !== a) d = Math.min(d, Math.hypot(a[0] - b[0], a[1] - b[1]));
      if (d > bestD) { bestD = d; best = a; }
    }
    return {x: r.left + best[0], y: r.top + best[1], idx: best[2], gap: bestD}; }"""


def test_hover_on_the_explore_page_shows_the_digit(page, streamlit_server, tmp_path):
    from vae_core.data import load_dataset

    server = streamlit_server(APP.parents[2] / "streamlit_app.py", env={"VAE_EXPLORER_UPLOADS": str(tmp_path)})
    page.goto(f"{server.url}/Explore")
    wait_app_ready(page, timeout_ms=180_000)
    page.wait_for_selector(f"{MAP}[data-thumbs='5000']", timeout=180_000)
    target = page.locator(f"{MAP} .js-plotly-plot").evaluate(ISOLATED_POINT)
    assert target["gap"] >= 8, target
    n = int(target["idx"])
    page.mouse.move(target["x"], target["y"])
    page.wait_for_function(f"() => document.querySelector('[data-testid=\"latent-map-hover\"]')"
                           f".dataset.index === '{n}'", timeout=30_000)
    w, h, rgba = page.evaluate("""() => { const c = document.querySelector('.vmap-hover-img');
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""")
    digit = (np.clip(load_dataset("mnist").x[n, 0].numpy(), 0, 1) * 255).round().astype(np.uint8)
    assert (h, w) == digit.shape
    np.testing.assert_array_equal(np.array(rgba, np.uint8).reshape(h, w, 4)[..., 0], digit)


# --- issue 20, item 1: the map and the Selection panel (Python's rows) stay in step ---------------

MARKED = f"""() => {{ const gd = {GD}; let any = false; const out = [];
    for (const t of gd._fullData) if (t.customdata && t.selectedpoints) {{
      any = true; for (const k of t.selectedpoints) out.push(t.customdata[k]); }}
    return any ? out.sort((a, b) => a - b).join(",") : "none"; }}"""


def _python_rows(page) -> str:
    txt = page.locator("text=/selection=/").first.inner_text()
    return txt.split("selection=", 1)[1].strip()


def _in_step(page) -> str:
    """Wait until the app is idle and the map's greying (the rows marked selected on the drawn traces;
    'none' when no trace greys anything) equals the rows Python holds; return them."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    wait_app_ready(page, 60_000)
    try:
        page.wait_for_function(f"""() => {{ const m = document.body.innerText.match(/selection=([0-9,]+|none)/);
            return m && m[1] === ({MARKED})(); }}""", timeout=30_000)
    except PlaywrightTimeout:
        reported = page.evaluate(f"() => document.querySelector('{MAP}').dataset.selected")
        raise AssertionError(f"out of step: Python holds {_python_rows(page)}, the map greys all but "
                             f"{page.evaluate(MARKED)} (the map reported {reported} rows last)") from None
    return _python_rows(page)


def _box(page, a: tuple[float, float], b: tuple[float, float]) -> None:
    (ax, ay), (bx, by) = _pixel(page, *a), _pixel(page, *b)
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move((ax + bx) / 2, (ay + by) / 2, steps=5)
    page.mouse.move(bx, by, steps=5)
    page.mouse.up()


def test_the_map_and_the_rows_stay_in_step_through_clicks_clears_and_toggles(page, streamlit_server):
    _open(page, streamlit_server(APP))
    _choose_tool(page, "Box Select")
    _box(page, (1.5, 3.5), (4.5, 1.5))
    page.wait_for_function("() => document.body.innerText.includes('selection=14,15,16,20,21,22')", timeout=60_000)
    assert _in_step(page) == "14,15,16,20,21,22"
    # a click on a point while the box selection stands (it cleared the rows, the map stayed grey)
    page.mouse.click(*_pixel(page, 0, 0))
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.clicked === '0'", timeout=30_000)
    rows = _in_step(page)
    # a double-click clears; a toggle redraws the map (which then drew every point grey)
    if rows != "none":
        page.mouse.dblclick(*_pixel(page, 0.5, 4.5))
        page.wait_for_function("() => document.body.innerText.includes('selection=none')", timeout=60_000)
    assert _in_step(page) == "none"
    page.get_by_text("Thumbnails", exact=True).click()
    page.wait_for_function(f"() => document.querySelector('{MAP}').dataset.draws > 2", timeout=60_000)
    assert _in_step(page) == "none"
    # select again, clear again, toggle back: still in step
    _box(page, (1.5, 3.5), (4.5, 1.5))
    page.wait_for_function("() => document.body.innerText.includes('selection=14,15,16,20,21,22')", timeout=60_000)
    assert _in_step(page) == "14,15,16,20,21,22"
    page.get_by_text("Thumbnails", exact=True).click()
    wait_app_ready(page, 60_000)
    assert _in_step(page) == "14,15,16,20,21,22", "a toggle keeps the selection on both"
