"""Step latency under load: N concurrent browser sessions on the Explore page (default 10).

Every session opens `/Explore?decode=server`, so each slider step is a round trip to the server
(the server decodes: the heaviest path; with in-browser decoding a step never reaches the server).
Then all sessions step their first latent slider at once, each waiting for its new image before
the next step, with a short random pause between steps (a person dragging). Latency is measured
inside each page, from the input event to the new image's `load`. One session alone runs first,
in the same server, as the baseline. Prints a table; asserts nothing.

Run from the repo root: `python -m benchmarks.load [--sessions 10] [--steps 20]`.
Chromium renders all sessions on the same 2 cores as the server, so the figures include the
browser's own load: they are an upper bound on what 10 people on 10 machines would see.
"""
from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.browser import REPO, launch_chromium, streamlit_server, wait_app_ready
from benchmarks.common import load, load_line, percentile, print_figures

# In-page loop: step the panel's first slider `steps` times, waiting for each new image; returns ms.
STEP_LOOP = """async (host, [steps, pauseMs]) => {
  const input = host.querySelector('input[type=range]');
  const img = host.querySelector('[data-testid="latent-sliders-image"]');
  const out = [];
  const lo = Number(input.min), hi = Number(input.max), step = Number(input.step) || 0.05;
  let v = Number(input.value);
  for (let k = 0; k < steps; k++) {
    v = v + step * 4 > hi ? lo + step : v + step * 4;
    const loaded = new Promise(res => img.addEventListener('load', () => res(performance.now()), {once: true}));
    const t0 = performance.now();
    input.value = String(v);
    input.dispatchEvent(new Event('input', {bubbles: true}));
    input.dispatchEvent(new Event('change', {bubbles: true}));
    const t1 = await Promise.race([loaded, new Promise(res => setTimeout(() => res(null), 20000))]);
    out.push(t1 === null ? null : t1 - t0);
    await new Promise(res => setTimeout(res, pauseMs * (0.5 + Math.random())));
  }
  return out;
}"""


def open_session(browser, url: str):
    """A new browser context (its own Streamlit session) on the server-decoded Explore page."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{url}/Explore?decode=server")
    host = page.get_by_test_id("latent-sliders")
    host.wait_for(timeout=180_000)
    wait_app_ready(page, 180_000)
    deadline = time.monotonic() + 60
    while host.get_attribute("data-mode") != "python":
        if time.monotonic() > deadline:
            raise TimeoutError("the slider panel never reached the server-decoding mode")
        time.sleep(0.05)
    host.scroll_into_view_if_needed()
    return ctx, page


def run_steps(pages, steps: int, pause_ms: int) -> tuple[list[float], int, float]:
    """Start the in-page loop in every page at once; (latencies ms, timeouts, wall seconds)."""
    t0 = time.perf_counter()
    for p in pages:  # start every loop without waiting for it: the pages run them at the same time
        # (a locator, because the panel lives in a shadow root that document.querySelector can't see)
        p.get_by_test_id("latent-sliders").evaluate(
            f"(host, a) => {{ window.__load = null; ({STEP_LOOP})(host, a).then(r => {{ window.__load = r; }}); }}",
            [steps, pause_ms])
    results = []
    for p in pages:
        p.wait_for_function("() => window.__load !== null", timeout=steps * 25_000)
        results.append(p.evaluate("() => window.__load"))
    wall = time.perf_counter() - t0
    flat = [x for r in results for x in r]
    return [x for x in flat if x is not None], sum(x is None for x in flat), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--steps", type=int, default=20, help="slider steps per session")
    ap.add_argument("--pause-ms", type=int, default=150, help="mean pause between a session's steps")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(load_line())
    rows = []
    with streamlit_server(REPO / "streamlit_app.py") as srv, sync_playwright() as pw:
        browser = launch_chromium(pw)
        t = time.perf_counter()
        sessions = [open_session(browser, srv.url)]
        rows.append(("first session open (cold server)", f"{time.perf_counter() - t:.1f} s"))
        lat, to, wall = run_steps([sessions[0][1]], a.steps, a.pause_ms)
        rows.append(("1 session: step p50 / p90 / max", f"{percentile(lat, 50):.0f} / {percentile(lat, 90):.0f} / {max(lat):.0f} ms"))
        t = time.perf_counter()
        sessions += [open_session(browser, srv.url) for _ in range(a.sessions - 1)]
        rows.append((f"{a.sessions - 1} more sessions open (one after another)",
                     f"{time.perf_counter() - t:.1f} s"))
        lat, to, wall = run_steps([p for _, p in sessions], a.steps, a.pause_ms)
        rows.append((f"{a.sessions} sessions at once: step p50 / p90 / max",
                     f"{percentile(lat, 50):.0f} / {percentile(lat, 90):.0f} / {max(lat):.0f} ms"))
        rows.append((f"{a.sessions} sessions: steps served, timeouts (20 s)", f"{len(lat)}, {to}"))
        rows.append((f"{a.sessions} sessions: server throughput", f"{len(lat) / wall:.1f} steps/s "
                     f"(mean {statistics.mean(lat):.0f} ms)"))
        for ctx, _ in sessions:
            ctx.close()
        browser.close()
    rows.append(("load average after", load(1)))
    print_figures(rows, indent="  ")


if __name__ == "__main__":
    main()
