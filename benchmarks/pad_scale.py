"""The drag pad with a map of 100k+ points (issue 11, item 4): the bytes and build time of the pad's
background scatter, and the latent slider / pad step on the real Explore page with a 100,000-image
data set against the 5,000 shipped digits.

Payload: `explorer.components.pad._scatter_fields` for a synthetic n-point map with 10 labels, the
first draw (the browser holds nothing) and a rerun (it holds the map); the bytes are the JSON the
element carries. App: `streamlit_app.py` with the 100,000 digits (`benchmarks.scale_maps`'s
make_digits_npz) in the server's data folder; /Explore on mnist, then the data picker switched to
the 100k file; per data set the slider panel's step (keypress -> decoded image, browser path) p50 /
p90, the pad's decode + draw per synthetic pointer move, and the seconds until the pad drew.
`--before DIR` measures another checkout's server too (e.g. `git worktree add /tmp/base <commit>`).

Run from the repo root: python -m benchmarks.pad_scale [--steps 30] [--n 100000] [--before DIR] [--payload-only]
Prints figures with the 1-minute load average; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.browser import REPO, StreamlitServer, launch_chromium, wait_app_ready
from benchmarks.common import load, percentile, print_figures
from benchmarks.latency import open_explore, pad_browser, panel_steps, wait_pad_mode
from benchmarks.scale_maps import make_digits_npz


def payload_rows(n: int) -> list[tuple[str, str]]:
    """Bytes and build time of the pad's scatter fields for an n-point map: first draw and a rerun."""
    from explorer.components.pad import _scatter_fields

    rng = np.random.default_rng(0)
    pts, labels = rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, 10, n)
    t0 = time.perf_counter()
    first = _scatter_fields(pts, labels, "map-id", {})
    build = time.perf_counter() - t0
    rerun = _scatter_fields(pts, labels, "map-id", {"scatter": "map-id"})
    b_first, b_rerun = len(json.dumps(first).encode()), len(json.dumps(rerun).encode())
    drawn = first.get("n_drawn", n)
    return [(f"pad scatter payload, {n:,} points",
             f"first draw {b_first / 1e6:.2f} MB ({b_first / n:.1f} B/point of the map; {drawn:,} drawn), "
             f"built in {build:.2f} s; a rerun {b_rerun} B (load {load()})")]


def _pick_data(page, name: str) -> None:
    """Switch the sidebar's data picker (its second selectbox) to the file `name`."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option", name=name).click()


def app_rows(repo: Path, data_dir: Path, name: str, steps: int, tag: str) -> list[tuple[str, str]]:
    """Slider and pad steps on /Explore with mnist, then with the data file `name` of `data_dir`."""
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="vae-padscale-"))
    server = StreamlitServer(REPO / "streamlit_app.py" if repo == REPO else repo / "streamlit_app.py", repo=repo,
                             env={"VAE_EXPLORER_UPLOADS": str(tmp / "uploads"),
                                  "VAE_EXPLORER_DATA_DIR": str(data_dir)})
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            server.start(timeout=180)
            open_explore(page, server.url)
            for data in ("mnist (5,000)", name):
                t0 = time.perf_counter()
                if data != "mnist (5,000)":
                    _pick_data(page, name)
                    page.get_by_test_id("latent-pad").wait_for(timeout=300_000)
                    wait_app_ready(page, 300_000)
                wait_pad_mode(page, "browser", timeout=300)
                drawn = time.perf_counter() - t0
                load_now = load()
                s = panel_steps(page, steps)
                per_move, ms = pad_browser(page)
                plane = page.get_by_test_id("latent-pad")
                rows.append((f"{tag}{data}: slider step p50 / p90 ({len(s)}), pad decode + draw per move",
                             f"{percentile(s, 50):.0f} / {percentile(s, 90):.0f} ms, {ms:.2f} ms ({per_move:.2f} draws/move); "
                             f"pad drawn {drawn:.1f} s after the pick, scatter "
                             f"{plane.get_attribute('data-scatter-drawn') or '?'} of "
                             f"{plane.get_attribute('data-scatter-total') or '?'} drawn (load {load_now})"))
            browser.close()
    finally:
        server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--n", type=int, default=100_000, help="images in the large data set")
    ap.add_argument("--before", type=Path, help="also measure the app of this checkout (an older commit's worktree)")
    ap.add_argument("--payload-only", action="store_true")
    args = ap.parse_args(argv)
    print(f"# {os.cpu_count()} CPUs, load {load()} at start")
    rows: list[tuple[str, str]] = []
    for n in (100_000, 1_000_000):
        rows += payload_rows(n)
    if not args.payload_only:
        with tempfile.TemporaryDirectory() as tmp:
            name = f"digits_{args.n}.npz"
            make_digits_npz(Path(tmp) / name, args.n)
            if args.before is not None:
                rows += app_rows(args.before.resolve(), Path(tmp), name, args.steps, "before, ")
            rows += app_rows(REPO, Path(tmp), name, args.steps, "after, " if args.before else "")
    print_figures(rows, 70)
    print(f"# load {load()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
