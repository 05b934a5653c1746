"""A class on one server: N simulated sessions (default 10 and 30) doing a teacher's script at once.

Each session, in its own browser context (its own Streamlit session; one Chromium holds them all, driven
by Playwright's async API), on the shipped run and mnist:
1. opens Explore (a page load: from `goto` to the script's end, the page interactive);
2. steps its first latent slider `--steps` times with the server decoding (the heaviest path; with
   in-browser decoding a step never reaches the server), each step waiting for its new image;
3. opens Diagnose (a page load; the report is one job on the server's queue, shared by everyone);
4. opens Explore again and picks t-SNE (one shared t-SNE job), and waits for the map.
One session alone runs the same script first, on a fresh server, as the baseline beside them.

Prints, for each N: the share of actions served (a page load within 120 s, a step's image within
20 s, a t-SNE map within 600 s), p50/p90 of slider steps and of page loads, the longest wait of a job
in the server's queue (from the job log the server writes, VAE_EXPLORER_JOB_LOG), and the server's
peak memory (VmHWM of its process). Asserts nothing.

Run from the repo root: `python -m benchmarks.class_load [--sessions 10 30] [--steps 10]`.
Chromium renders every session on the same 2 cores as the server: the figures are an upper bound
on what N people on N machines would see.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from benchmarks.browser import CHROMIUM_ARGS, REPO, find_chromium, streamlit_server
from benchmarks.common import load, load_line, percentile, print_figures
from benchmarks.load import STEP_LOOP

PAGE_S, STEP_S, MAP_S = 120, 20, 600


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


READY_JS = """() => { const a = document.querySelector('[data-testid="stApp"]');
                       return a && a.getAttribute('data-test-script-state') === 'notRunning'; }"""


async def timed_load(page, url: str) -> float | None:
    """Seconds from goto to the page's script having ended (interactive), None past PAGE_S."""
    t0 = time.perf_counter()
    try:
        await page.goto(url, timeout=PAGE_S * 1000)
        await page.wait_for_function(READY_JS, timeout=PAGE_S * 1000)
    except Exception:
        return None
    return time.perf_counter() - t0


async def script(browser, url: str, steps: int, pause_ms: int) -> dict:
    """One session's script, in its own browser context (its own Streamlit session)."""
    out = {"loads": [], "steps": [], "step_timeouts": 0, "map_s": None}
    ctx = await browser.new_context(viewport={"width": 1300, "height": 1000})
    page = await ctx.new_page()
    try:
        out["loads"].append(await timed_load(page, f"{url}/Explore?decode=server"))
        host = page.get_by_test_id("latent-sliders")
        try:
            await host.wait_for(timeout=PAGE_S * 1000)
            await host.scroll_into_view_if_needed()
            lat = await host.evaluate(f"(host, a) => ({STEP_LOOP})(host, a)", [steps, pause_ms])
            out["steps"] = [x for x in lat if x is not None]
            out["step_timeouts"] = sum(x is None for x in lat)
        except Exception:
            out["step_timeouts"] = steps
        out["loads"].append(await timed_load(page, f"{url}/Diagnose"))
        out["loads"].append(await timed_load(page, f"{url}/Explore"))
        t0 = time.perf_counter()
        try:
            await page.get_by_role("radio", name="t-SNE").click(timeout=PAGE_S * 1000)
            await page.get_by_text("local inverse", exact=False).first.wait_for(timeout=MAP_S * 1000)
            out["map_s"] = time.perf_counter() - t0
        except Exception:
            pass
    finally:
        await ctx.close()
    return out


async def _sessions(url: str, n: int, steps: int, pause_ms: int) -> list[dict]:
    from playwright.async_api import async_playwright

    path = find_chromium()
    if path is None:
        raise RuntimeError("chromium not found on PATH (apt-get install chromium)")
    async with async_playwright() as pw:
        # one Chromium for every session (a context each, as separate people's browsers would be): a
        # Chromium per session spent the 2 cores on 30 browser processes before the server had any
        browser = await pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            return list(await asyncio.gather(*(script(browser, url, steps, pause_ms) for _ in range(n))))
        finally:
            await browser.close()


def run_class(n: int, steps: int, pause_ms: int) -> tuple[list[dict], float, list[dict]]:
    """A fresh server, n sessions at once; (per-session results, server peak MB, job log rows)."""
    log = Path(tempfile.mkdtemp(prefix="class-load-")) / "jobs.jsonl"
    with streamlit_server(REPO / "streamlit_app.py", env={"VAE_EXPLORER_JOB_LOG": str(log)}) as srv:
        results = asyncio.run(_sessions(srv.url, n, steps, pause_ms))
        peak = peak_rss_mb(srv.proc.pid)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return results, peak, rows


def summary(n: int, results: list[dict], peak: float, jobs: list[dict], steps: int) -> list[tuple[str, str]]:
    loads = [x for r in results for x in r["loads"]]
    served_loads = [x for x in loads if x is not None]
    lat = [x for r in results for x in r["steps"]]
    maps = [r["map_s"] for r in results]
    actions = len(loads) + n * steps + n
    served = len(served_loads) + len(lat) + sum(m is not None for m in maps)
    waits = [j["waited_s"] for j in jobs]
    done_maps = [m for m in maps if m is not None]
    return [
        (f"{n} session(s): actions served", f"{served} / {actions} ({100 * served / actions:.0f} %)"),
        (f"{n} session(s): slider step p50 / p90", f"{percentile(lat, 50):.0f} / {percentile(lat, 90):.0f} ms"),
        (f"{n} session(s): page load p50 / p90", f"{percentile(served_loads, 50):.1f} / {percentile(served_loads, 90):.1f} s"),
        (f"{n} session(s): t-SNE map, slowest", f"{max(done_maps):.0f} s" if done_maps else "none"),
        (f"{n} session(s): jobs run, longest queue wait",
         f"{len(jobs)}, {max(waits):.1f} s" if waits else "0, -"),
        (f"{n} session(s): server peak memory", f"{peak:.0f} MB"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--steps", type=int, default=10, help="slider steps per session")
    ap.add_argument("--pause-ms", type=int, default=150, help="mean pause between a session's steps")
    a = ap.parse_args()
    print(load_line(), flush=True)
    rows = []
    for n in [1, *a.sessions]:
        t = time.perf_counter()
        res, peak, jobs = run_class(n, a.steps, a.pause_ms)
        rows += summary(n, res, peak, jobs, a.steps)
        rows.append((f"{n} session(s): wall time", f"{time.perf_counter() - t:.0f} s (load {load(1)})"))
        print(f"  ... {n} session(s) done", flush=True)
    print_figures(rows, indent="  ")


if __name__ == "__main__":
    main()
