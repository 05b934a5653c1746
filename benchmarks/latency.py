"""Input-to-image latency in real headless Chromium (docs/live-decoding.md): prints a table, asserts nothing.

Run from the repo root: `python -m benchmarks.latency [--steps 30] [--script tests/browser/pad_app.py]`
for the pad demo, or `python -m benchmarks.latency --app` (same as `--script streamlit_app.py`) for the
real app's Explore page. Times are taken inside the page (performance.now), from the input event to
the new image's `load` (or the canvas draw for the browser path).

The app's Python decoding path is measured twice: with a TorchScript upload of `runs/default` (PCA map,
no in-browser decoder for TorchScript), and on the t-SNE map of the 5,000 digits (local inverse; the
background t-SNE takes 1-2 minutes on 2 loaded cores; `--python-path torchscript` skips it).
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks.browser import REPO, StreamlitServer, launch_chromium, wait_app_ready
from benchmarks.common import percentile, print_table

DEFAULT_SCRIPT = REPO / "tests" / "browser" / "pad_app.py"
APP_SCRIPT = REPO / "streamlit_app.py"

# The first <img> of an st.image: the demo's slider image.
FIRST_IMG = """() => document.querySelector('[data-testid="stImage"] img')"""


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


def slider_steps(page, steps: int, img_js: str = FIRST_IMG) -> list[float]:
    """ArrowRight on the (first) slider -> the image `img_js()` has loaded a new src, ms per step."""
    page.evaluate("""() => {
        document.addEventListener('keydown', () => { window.__kd = performance.now(); }, true);
        // load does not bubble; a capturing listener on document still sees every <img> load
        document.addEventListener('load', e => { if (e.target.tagName === 'IMG') window.__ld = performance.now(); }, true);
    }""")
    page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
    out = []
    for _ in range(steps):
        old = page.evaluate(f"() => {{ const i = ({img_js})(); return i && i.getAttribute('src'); }}")
        page.evaluate("() => { window.__ld = null; }")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            f"""old => {{ const i = ({img_js})();
                        return i && i.getAttribute('src') !== old && i.complete && window.__ld !== null; }}""",
            arg=old, timeout=20_000)
        out.append(page.evaluate("() => window.__ld - window.__kd"))
        page.wait_for_timeout(50)
    return out


def panel_steps(page, steps: int) -> list[float]:
    """The app's latent slider panel (a component): ArrowRight on its first range input -> the new image,
    ms per step. Browser path: the next animation frame after the canvas was repainted. Python path:
    the `load` of the new PNG data URI in the panel's <img>."""
    panel = page.get_by_test_id("latent-sliders")
    panel.scroll_into_view_if_needed()
    mode = panel.get_attribute("data-mode")
    page.evaluate("""() => { window.__ld = null;
        document.addEventListener('keydown', () => { window.__kd = performance.now(); }, true); }""")
    if mode == "browser":
        page.get_by_test_id("latent-sliders-canvas").evaluate("""c => new MutationObserver(() =>
            requestAnimationFrame(() => { window.__ld = performance.now(); })
          ).observe(c, {attributes: true, attributeFilter: ['data-decodes']})""")
    else:
        page.get_by_test_id("latent-sliders-image").evaluate(
            "i => i.addEventListener('load', () => { window.__ld = performance.now(); })")
    panel.locator("input[type=range]").first.focus()
    out = []
    for k in range(steps):
        page.evaluate("() => { window.__ld = null; }")
        page.keyboard.press("ArrowRight" if k < 50 else "ArrowLeft")  # the range ends at 3.0 = 60 steps
        page.wait_for_function("() => window.__ld !== null && window.__ld > window.__kd", timeout=20_000)
        out.append(page.evaluate("() => window.__ld - window.__kd"))
        page.wait_for_timeout(50)
    return out


def pad_python(page, steps: int) -> tuple[list[float], float, float]:
    """Python path: click-to-jump one step latencies (ms), image updates/s during a drag, and the drag's
    pointer moves/s."""
    plane = page.get_by_test_id("latent-pad")
    img = page.get_by_test_id("latent-pad-image")
    plane.evaluate("p => p.addEventListener('pointerdown', () => { window.__pd = performance.now(); }, true)")
    img.evaluate("""i => { window.__loads = [];
        i.addEventListener('load', () => { window.__ld = performance.now(); window.__loads.push(window.__ld); }); }""")
    plane.scroll_into_view_if_needed()  # mouse coordinates are the viewport's
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
    # A 3 s drag at 60 pointer moves per second, dispatched inside the page: Playwright's own mouse.move
    # round trips take 30-70 ms each on 2 loaded cores, so driven from here the input rate (not the app)
    # would cap the figure at ~15 moves/s.
    t0, t1, moves = plane.evaluate("""p => new Promise(done => {
        window.__loads = [];
        const r = p.getBoundingClientRect(), n = 180;
        const at = k => ({clientX: r.left + r.width * (0.1 + 0.8 * k / (n - 1)),
                          clientY: r.top + r.height * (0.5 + 0.35 * Math.sin(6.28 * k / (n - 1)))});
        const ev = (type, k) => new PointerEvent(type, {bubbles: true, pointerId: 9, button: 0, ...at(k)});
        p.dispatchEvent(ev('pointerdown', 0));
        const t0 = performance.now();
        let k = 1;
        const id = setInterval(() => {
          p.dispatchEvent(ev('pointermove', k));
          if (++k >= n) {
            clearInterval(id);
            const t1 = performance.now();
            p.dispatchEvent(ev('pointerup', n - 1));
            done([t0, t1, n - 1]);
          }
        }, 1000 / 60);
    })""")
    loads = page.evaluate(f"() => window.__loads.filter(t => t >= {t0} && t <= {t1}).length")
    return one, loads / ((t1 - t0) / 1000), moves / ((t1 - t0) / 1000)


def pad_browser(page) -> tuple[float, float]:
    """Browser path: canvas draws per pointer move during a real drag, and ms per synthetic move."""
    plane = page.get_by_test_id("latent-pad")
    canvas = page.get_by_test_id("latent-pad-canvas")
    plane.scroll_into_view_if_needed()  # mouse coordinates are the viewport's
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


# --- the real app -----------------------------------------------------------------------------------

def open_explore(page, url: str, timeout_ms: int = 180_000) -> dict[str, float]:
    """Load /Explore; seconds from goto to: the HTML loaded, the first element, the slider panel drawn,
    the pad drawn, and the script done (interactive)."""
    t0 = time.perf_counter()
    out = {}
    page.goto(f"{url}/Explore")
    out["html"] = time.perf_counter() - t0
    page.locator('[data-testid="stTitle"], h1').first.wait_for(timeout=timeout_ms)
    out["title"] = time.perf_counter() - t0
    for key, testid in (("slider_image", "latent-sliders"), ("pad", "latent-pad")):
        el = page.get_by_test_id(testid)
        el.wait_for(timeout=timeout_ms)
        deadline = time.monotonic() + 60
        while not el.get_attribute("data-mode") and time.monotonic() < deadline:  # set once it has drawn
            time.sleep(0.02)
        out[key] = time.perf_counter() - t0
    wait_app_ready(page, timeout_ms)
    out["interactive"] = time.perf_counter() - t0
    return out


def wait_pad_mode(page, mode: str, timeout: float = 60.0) -> None:
    plane = page.get_by_test_id("latent-pad")
    deadline = time.monotonic() + timeout
    while plane.get_attribute("data-mode") != mode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the pad never reached mode {mode!r}")
        time.sleep(0.05)


def torchscript_of_default(tmp: Path) -> Path:
    from vae_core.runs.model_files import export_torchscript
    from vae_core.runs.run_load import load_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.* deprecation notices
        return export_torchscript(load_run(REPO / "runs" / "default").model, tmp / "default_vae.ts")


def bench_app(args, rows: list[tuple[str, str]]) -> None:
    """The real app's Explore page (`streamlit_app.py`, runs/default on mnist)."""
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="vae-latency-"))
    server = StreamlitServer(args.script, env={"VAE_EXPLORER_UPLOADS": str(tmp / "uploads")},
                             extra_args=args.server_arg)
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            t0 = time.perf_counter()
            server.start()
            health = time.perf_counter() - t0
            cold = open_explore(page, server.url)
            rows.append(("`streamlit run` -> /_stcore/health ok", f"{health:.2f} s"))
            for k, name in [("html", "page HTML loaded"), ("title", "first element drawn (script started)"),
                            ("slider_image", "slider panel's decoded image shown"), ("pad", "drag pad drawn"),
                            ("interactive", "script run finished: interactive")]:
                rows.append((f"`streamlit run` -> {name} (cold)", f"{health + cold[k]:.2f} s"))
            warm = open_explore(page, server.url)
            rows.append(("new session, warm server: goto -> interactive", f"{warm['interactive']:.2f} s"))

            s = panel_steps(page, args.steps)
            rows.append((f"slider step -> new decode(z) image, browser path (MLP), p50 / p90 ({len(s)} steps)",
                         f"{percentile(s, 50):.0f} / {percentile(s, 90):.0f} ms"))

            wait_pad_mode(page, "browser")
            per_move, ms = pad_browser(page)
            rows.append(("pad drag, browser path (PCA, MLP), canvas updates per pointer move", f"{per_move:.2f}"))
            rows.append(("pad move, browser path, decode + draw", f"{ms:.2f} ms"))

            if args.python_path in ("torchscript", "both"):
                ts = torchscript_of_default(tmp)
                open_explore(page, server.url)
                page.locator('[data-testid="stSidebar"]').get_by_text("Upload a model or data").click()
                box = page.locator('[data-testid="stFileUploader"]').filter(has_text="TorchScript")
                box.locator('input[type="file"]').set_input_files(str(ts))
                wait_pad_mode(page, "python")
                wait_app_ready(page)
                s = panel_steps(page, args.steps)
                rows.append((f"slider step -> new decode(z) image, Python path (TorchScript), p50 / p90 ({len(s)})",
                             f"{percentile(s, 50):.0f} / {percentile(s, 90):.0f} ms"))
                one, rate, moves = pad_python(page, args.steps)
                rows.append((f"pad click -> new image, Python path (TorchScript, PCA), p50 / p90 ({len(one)})",
                             f"{percentile(one, 50):.0f} / {percentile(one, 90):.0f} ms"))
                rows.append((f"pad drag, Python path (TorchScript, PCA), image updates per second "
                             f"({moves:.0f} moves/s)", f"{rate:.1f} /s"))

            if args.python_path in ("tsne", "both"):
                open_explore(page, server.url)
                t1 = time.perf_counter()
                page.get_by_role("radio", name="t-SNE").click()
                page.get_by_text("local inverse", exact=False).first.wait_for(timeout=args.tsne_timeout * 1000)
                wait_pad_mode(page, "python")
                wait_app_ready(page)
                rows.append(("t-SNE map of 5,000 codes in the background: click -> pad on it",
                             f"{time.perf_counter() - t1:.1f} s"))
                one, rate, moves = pad_python(page, args.steps)
                rows.append((f"pad click -> new image, Python path (t-SNE, MLP), p50 / p90 ({len(one)})",
                             f"{percentile(one, 50):.0f} / {percentile(one, 90):.0f} ms"))
                rows.append((f"pad drag, Python path (t-SNE, MLP), image updates per second ({moves:.0f} moves/s)",
                             f"{rate:.1f} /s"))
            browser.close()
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--script", default=str(DEFAULT_SCRIPT), help="Streamlit script with the pad demo")
    ap.add_argument("--app", action="store_true", help="measure the real app (same as --script streamlit_app.py)")
    ap.add_argument("--steps", type=int, default=30, help="steps per latency measurement")
    ap.add_argument("--python-path", choices=["both", "torchscript", "tsne", "none"], default="both",
                    help="app only: how to reach the pad's Python decoding path")
    ap.add_argument("--tsne-timeout", type=float, default=400, help="app only: seconds to wait for the t-SNE map")
    ap.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                    help="extra `streamlit run` argument, repeatable (e.g. --server-arg=--server.fileWatcherType=none)")
    args = ap.parse_args()
    if args.app:
        args.script = str(APP_SCRIPT)

    rows: list[tuple[str, str]] = []
    if Path(args.script).resolve() == APP_SCRIPT:
        bench_app(args, rows)
        print_table(rows)
        return

    from playwright.sync_api import sync_playwright

    server = StreamlitServer(args.script, extra_args=args.server_arg)
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
                         f"{percentile(s, 50):.0f} / {percentile(s, 90):.0f} ms"))

            open_page(page, server.url, "python")
            one, rate, moves = pad_python(page, args.steps)
            rows.append((f"pad click -> new image, Python path, p50 / p90 ({len(one)})",
                         f"{percentile(one, 50):.0f} / {percentile(one, 90):.0f} ms"))
            rows.append((f"pad drag, Python path, image updates per second ({moves:.0f} moves/s)", f"{rate:.1f} /s"))

            open_page(page, server.url, "browser")
            per_move, ms = pad_browser(page)
            rows.append(("pad drag, browser path, canvas updates per pointer move", f"{per_move:.2f}"))
            rows.append(("pad move, browser path, decode + draw", f"{ms:.2f} ms"))
            browser.close()
    finally:
        server.stop()
    print_table(rows)


if __name__ == "__main__":
    main()
