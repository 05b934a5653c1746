"""Input-to-image latency in real headless Chromium (REALTIME.md): prints a table, asserts nothing.

Run from the repo root: `python -m benchmarks.latency [--steps 30] [--script tests/browser/pad_app.py]`.
Times are taken inside the page (performance.now), from the input event to the new image's `load`
(or the canvas draw for the browser path).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: make the repo root importable so the shared harness is found.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser.harness import REPO, StreamlitServer, launch_chromium, wait_app_ready  # noqa: E402

DEFAULT_SCRIPT = REPO / "tests" / "browser" / "pad_app.py"


def pct(xs: list[float], q: float) -> float:
    """q-th percentile (0-100), linear interpolation."""
    s = sorted(xs)
    k = (len(s) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def open_page(page, url: str, mode: str) -> float:
    """Load the app; seconds until the pad has drawn in its mode."""
    t0 = time.perf_counter()
    page.goto(f"{url}/?mode={mode}")
    wait_app_ready(page)
    page.get_by_test_id("latent-pad").wait_for()
    plane = page.get_by_test_id("latent-pad")
    deadline = time.monotonic() + 30
    while plane.get_attribute("data-mode") != mode and time.monotonic() < deadline:
        time.sleep(0.02)
    return time.perf_counter() - t0


def slider_steps(page, steps: int) -> list[float]:
    """ArrowRight on the slider -> the st.image's new src has loaded, ms per step."""
    page.evaluate("""() => {
        document.addEventListener('keydown', () => { window.__kd = performance.now(); }, true);
        // load does not bubble; a capturing listener on document still sees every <img> load
        document.addEventListener('load', e => { if (e.target.tagName === 'IMG') window.__ld = performance.now(); }, true);
    }""")
    page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
    out = []
    for _ in range(steps):
        old = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
        page.evaluate("() => { window.__ld = null; }")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            """old => { const i = document.querySelector('[data-testid="stImage"] img');
                        return i && i.getAttribute('src') !== old && i.complete && window.__ld !== null; }""",
            arg=old, timeout=20_000)
        out.append(page.evaluate("() => window.__ld - window.__kd"))
        page.wait_for_timeout(50)
    return out


def pad_python(page, steps: int) -> tuple[list[float], float]:
    """Python path: click-to-jump one step latencies (ms), and image updates/s during a drag."""
    plane = page.get_by_test_id("latent-pad")
    img = page.get_by_test_id("latent-pad-image")
    plane.evaluate("p => p.addEventListener('pointerdown', () => { window.__pd = performance.now(); }, true)")
    img.evaluate("""i => { window.__loads = [];
        i.addEventListener('load', () => { window.__ld = performance.now(); window.__loads.push(window.__ld); }); }""")
    box = plane.bounding_box()
    one = []
    for k in range(steps):
        fx, fy = 0.1 + 0.8 * ((k * 0.37) % 1), 0.1 + 0.8 * ((k * 0.61) % 1)
        n = page.evaluate("() => window.__loads.length")
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        page.wait_for_function(f"() => window.__loads.length > {n} && window.__ld > window.__pd", timeout=20_000)
        # A click sends down then up: wait for both answers so the next step starts idle.
        page.wait_for_timeout(150)
        one.append(page.evaluate("() => { const t = window.__loads.find(t => t > window.__pd); return t - window.__pd; }"))
    # A 3 s drag at ~60 pointer moves per second.
    page.evaluate("() => { window.__loads = []; }")
    page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.5 * box["height"])
    page.mouse.down()
    t0 = page.evaluate("() => performance.now()")
    n_moves = 180
    for i in range(n_moves):
        t = i / (n_moves - 1)
        page.mouse.move(box["x"] + (0.1 + 0.8 * t) * box["width"],
                        box["y"] + (0.5 + 0.35 * math.sin(6.28 * t)) * box["height"])
        page.wait_for_timeout(16)
    t1 = page.evaluate("() => performance.now()")
    loads = page.evaluate(f"() => window.__loads.filter(t => t >= {t0} && t <= {t1}).length")
    page.mouse.up()
    return one, loads / ((t1 - t0) / 1000)


def pad_browser(page) -> tuple[float, float]:
    """Browser path: canvas draws per pointer move during a real drag, and ms per synthetic move."""
    plane = page.get_by_test_id("latent-pad")
    canvas = page.get_by_test_id("latent-pad-canvas")
    box = plane.bounding_box()
    moves0 = int(plane.get_attribute("data-moves") or 0)
    dec0 = int(canvas.get_attribute("data-decodes") or 0)
    page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    for i in range(60):
        page.mouse.move(box["x"] + (0.2 + 0.01 * i) * box["width"], box["y"] + (0.2 + 0.01 * i) * box["height"])
        page.wait_for_timeout(16)
    page.mouse.up()
    moves = int(plane.get_attribute("data-moves")) - moves0
    decodes = int(canvas.get_attribute("data-decodes")) - dec0
    # Synchronous cost of one move (decode + draw), free of Playwright's round trips.
    ms = plane.evaluate("""p => {
        const r = p.getBoundingClientRect(), n = 200;
        const ev = (type, k) => new PointerEvent(type, {bubbles: true, pointerId: 7, button: 0,
            clientX: r.left + r.width * (0.1 + 0.8 * k / n), clientY: r.top + r.height * 0.5});
        p.dispatchEvent(ev('pointerdown', 0));
        const t0 = performance.now();
        for (let k = 1; k <= n; k++) p.dispatchEvent(ev('pointermove', k));
        const t1 = performance.now();
        p.dispatchEvent(ev('pointerup', n));
        return (t1 - t0) / n;
    }""")
    return decodes / max(moves, 1), ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--script", default=str(DEFAULT_SCRIPT), help="Streamlit script with the pad demo")
    ap.add_argument("--steps", type=int, default=30, help="steps per latency measurement")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str]] = []
    server = StreamlitServer(args.script)
    try:
        with sync_playwright() as pw:
            # The browser is up first so the cold figure is the server's and the page's alone.
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            t0 = time.perf_counter()
            server.start()
            open_page(page, server.url, "python")
            cold = time.perf_counter() - t0
            rows.append(("`streamlit run` -> health ok", f"{server.startup_s:.2f} s"))
            rows.append(("`streamlit run` -> interactive page (first session)", f"{cold:.2f} s"))

            s = slider_steps(page, args.steps)
            rows.append((f"slider step -> new st.image loaded, p50 / p90 ({len(s)} steps)",
                         f"{pct(s, 50):.0f} / {pct(s, 90):.0f} ms"))

            open_page(page, server.url, "python")
            one, rate = pad_python(page, args.steps)
            rows.append((f"pad click -> new image, Python path, p50 / p90 ({len(one)})",
                         f"{pct(one, 50):.0f} / {pct(one, 90):.0f} ms"))
            rows.append(("pad drag, Python path, image updates per second", f"{rate:.1f} /s"))

            open_page(page, server.url, "browser")
            per_move, ms = pad_browser(page)
            rows.append(("pad drag, browser path, canvas updates per pointer move", f"{per_move:.2f}"))
            rows.append(("pad move, browser path, decode + draw", f"{ms:.2f} ms"))
            browser.close()
    finally:
        server.stop()

    w = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(w)} | value |")
    print(f"|{'-' * (w + 2)}|-------|")
    for name, val in rows:
        print(f"| {name.ljust(w)} | {val} |")


if __name__ == "__main__":
    main()
