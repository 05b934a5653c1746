"""A class on one server: N simulated sessions (default 10 and 30) doing a teacher's script at once.

Each session, on the shipped run and mnist:
1. opens Explore (a page load: from the request to the script's end, the page interactive);
2. steps its first latent slider `--steps` times with the server decoding (the heaviest path; with
   in-browser decoding a step never reaches the server), each step waiting for its new image;
3. opens Diagnose (a page load; the report is one job on the server's queue, shared by everyone);
4. opens Explore again and picks t-SNE (one shared t-SNE job), and waits for the map.

Who the sessions are: one is a real Chromium tab (Playwright), timed as a person would see it; the
other N - 1 speak Streamlit's websocket protocol from Python (`benchmarks/st_client.py`): the same
messages a browser sends, the same runs on the server, and nothing drawn. Rendering is what a
student's own machine does: on this 2-core machine one session's Chromium tab costs ~19 s of CPU
against ~2 s for the server, so N tabs here would measure Chromium, not the server. One session
alone (the Chromium tab) runs the same script first, on a fresh server, as the baseline beside them.
Each server gets a fresh result cache (VAE_EXPLORER_CACHE), so the class's t-SNE map and diagnose
report are computed, once, while it waits.

Prints, for each N: the share of actions served (a page load within 120 s, a step's image within
20 s, a t-SNE map within 600 s), for all sessions and for the Chromium tab alone, p50/p90 of slider
steps and of page loads, the longest wait of a job in the server's queue (from the job log the
server writes, VAE_EXPLORER_JOB_LOG), and the server's peak memory (VmHWM of its process). Asserts
nothing.

Run from the repo root: `python -m benchmarks.class_load [--sessions 10 30] [--steps 10]`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
from collections import Counter
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs

from benchmarks.browser import CHROMIUM_ARGS, REPO, find_chromium, streamlit_server
from benchmarks.common import load, load_line, percentile, print_figures
from benchmarks.load import STEP_LOOP
from benchmarks.st_client import Session
from explorer.state import MAP_METHOD_PICK

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
    out = {"loads": [], "steps": [], "step_timeouts": 0, "map_s": None, "browser": True}
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
        except Exception as e:
            out["step_timeouts"] = steps
            out["why"] = f"the step loop failed: {str(e).splitlines()[0][:120]}"
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


async def protocol_script(url: str, steps: int, pause_ms: int) -> dict:
    """One session's script over Streamlit's protocol (no browser): the same actions as `script`."""
    out = {"loads": [], "steps": [], "step_timeouts": 0, "map_s": None, "browser": False}
    async with Session(url) as s:
        out["loads"].append(await s.load("Explore", "decode=server", timeout=PAGE_S))
        if not await s.wait_for("latent_sliders", PAGE_S):
            out["step_timeouts"] = steps
            out["why"] = "the slider panel was never drawn"
            steps = 0
        z = [float(x) for x in parse_qs(s.query).get("z", ["0"])[0].split(",")]
        v = z[0]
        for k in range(steps):  # as STEP_LOOP: four slider steps (0.05) up, wrapping at 3
            v = v + 0.2 if v + 0.2 <= 3 else -3 + 0.05
            z[0] = v
            value = json.dumps({"z": {"values": z, "version": 1, "final": False, "seq": k + 1}})
            dt = await s.set("latent_sliders", STEP_S, json_value=value)
            if dt is None:
                out["step_timeouts"] += 1
            else:
                out["steps"].append(dt * 1000)
            await asyncio.sleep(pause_ms / 1000 * (0.5 + random.random()))
        out["loads"].append(await s.load("Diagnose", timeout=PAGE_S))
        out["loads"].append(await s.load("Explore", timeout=PAGE_S))
        control = s.versioned(MAP_METHOD_PICK)
        if control is None:
            out["why"] = "the map's method control was never drawn"
        else:
            out["map_s"] = await s.set(control, MAP_S, until=b"local inverse", string_array_value=["t-SNE"])
    return out


async def _sessions(url: str, n: int, steps: int, pause_ms: int) -> list[dict]:
    """One Chromium tab and n - 1 protocol sessions, all at once."""
    from playwright.async_api import async_playwright

    path = find_chromium()
    if path is None:
        raise RuntimeError("chromium not found on PATH (apt-get install chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            tab = script(browser, url, steps, pause_ms)
            rest = (protocol_script(url, steps, pause_ms) for _ in range(n - 1))
            return list(await asyncio.gather(tab, *rest))
        finally:
            await browser.close()


def run_class(n: int, steps: int, pause_ms: int) -> tuple[list[dict], float, list[dict]]:
    """A fresh server, n sessions at once; (per-session results, server peak MB, job log rows)."""
    tmp = Path(tempfile.mkdtemp(prefix="class-load-"))
    log = tmp / "jobs.jsonl"
    env = {"VAE_EXPLORER_JOB_LOG": str(log), "VAE_EXPLORER_CACHE": str(tmp / "cache")}
    with streamlit_server(REPO / "streamlit_app.py", env=env) as srv:
        results = asyncio.run(_sessions(srv.url, n, steps, pause_ms))
        peak = peak_rss_mb(srv.proc.pid)
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return results, peak, rows


def _served(results: list[dict], steps: int) -> tuple[int, int]:
    """(actions served, actions) over `results`: 3 page loads, `steps` slider steps and a map each."""
    actions = sum(len(r["loads"]) + steps + 1 for r in results)
    served = sum(sum(x is not None for x in r["loads"]) + len(r["steps"]) + (r["map_s"] is not None)
                 for r in results)
    return served, actions


def summary(n: int, results: list[dict], peak: float, jobs: list[dict], steps: int) -> list[tuple[str, str]]:
    served_loads = [x for r in results for x in r["loads"] if x is not None]
    lat = [x for r in results for x in r["steps"]]
    waits = [j["waited_s"] for j in jobs]
    done_maps = [r["map_s"] for r in results if r["map_s"] is not None]
    served, actions = _served(results, steps)
    tab = next(r for r in results if r["browser"])
    tab_served, tab_actions = _served([tab], steps)
    whys = Counter(r["why"] for r in results if r.get("why"))
    tab_loads = [x for x in tab["loads"] if x is not None]
    return [
        (f"{n} session(s): actions served", f"{served} / {actions} ({100 * served / actions:.0f} %)"),
        (f"{n} session(s): slider step p50 / p90", f"{percentile(lat, 50):.0f} / {percentile(lat, 90):.0f} ms"),
        (f"{n} session(s): page load p50 / p90", f"{percentile(served_loads, 50):.1f} / {percentile(served_loads, 90):.1f} s"),
        (f"{n} session(s): t-SNE map, slowest", f"{max(done_maps):.0f} s" if done_maps else "none"),
        (f"{n} session(s): the Chromium tab: served, step p50, page loads",
         f"{tab_served} / {tab_actions}, {percentile(tab['steps'], 50):.0f} ms, "
         + ", ".join(f"{x:.1f}" for x in tab_loads) + " s"),
        (f"{n} session(s): sessions with an action that could not start",
         "; ".join(f"{c} x {w}" for w, c in sorted(whys.items())) or "none"),
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
