"""`streamlit run streamlit_app.py` to an interactive Home page, in headless Chromium (issue 11, item 5).

Each start is a fresh server process (fresh Python; the disk's page cache is warm after the first).
Per start: launch -> /_stcore/health ok, -> the page's first element drawn, -> the Home page's
rebuilt image shown, -> the script run finished (interactive); then a second session on the same
server. "cold" is the first start of this run, "warm" the second; then a fresh start whose first
visitor arrives `--late` seconds after the server answers (the server warms itself meanwhile). `--repo DIR` measures another
checkout (e.g. `git worktree add /tmp/base <older commit>`) for a before/after in one run.

Run from the repo root: python -m benchmarks.scale_start [--quick] [--repo DIR] [--starts 2]
Prints figures with the 1-minute load average beside each start; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.browser import REPO, StreamlitServer, launch_chromium, wait_app_ready
from benchmarks.common import load, print_figures

TIMEOUT_MS = 180_000
REBUILT = '[data-testid="stImage"] img'  # the Home page's images: the data image and the rebuilt one


def open_home(page, url: str) -> dict[str, float]:
    """Seconds from goto to: the first element (the title), both Home images, the script finished."""
    t0 = time.perf_counter()
    page.goto(url)
    page.locator('[data-testid="stTitle"], h1').first.wait_for(timeout=TIMEOUT_MS)
    out = {"title": time.perf_counter() - t0}
    page.locator(REBUILT).nth(1).wait_for(timeout=TIMEOUT_MS)
    out["image"] = time.perf_counter() - t0
    wait_app_ready(page, TIMEOUT_MS)
    out["interactive"] = time.perf_counter() - t0
    return out


def one_start(browser, repo: Path, late: float = 0.0) -> dict[str, float]:
    """A fresh `streamlit run` of repo's app: figures from launch, and a second session's. With
    `late`, the first visitor arrives that many seconds after the server answers (a class that
    opens the app after the teacher started it): the figures are then from that visitor's goto."""
    tmp = Path(tempfile.mkdtemp(prefix="vae-start-"))
    server = StreamlitServer(repo / "streamlit_app.py", repo=repo, env={"VAE_EXPLORER_UPLOADS": str(tmp)})
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        t0 = time.perf_counter()
        server.start()
        health = time.perf_counter() - t0
        if late:
            time.sleep(late)
            health = 0.0
        first = open_home(page, server.url)
        out = {"health": health, **{k: health + v for k, v in first.items()}}
        out["second session"] = open_home(page, server.url)["interactive"]
        return out
    finally:
        page.close()
        server.stop()


def measure(repo: Path, starts: int, label: str, late: float = 10.0) -> list[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)  # up first: the figures are the server's and the page's
        try:
            for i in range(starts):
                load_now = load()
                f = one_start(browser, repo)
                kind = "cold" if i == 0 else "warm"
                rows.append((f"{label}{kind}: launch -> health / title / images / interactive",
                             f"{f['health']:.2f} / {f['title']:.2f} / {f['image']:.2f} / "
                             f"**{f['interactive']:.2f} s** (load {load_now})"))
                rows.append((f"{label}{kind}: a second session on that server, interactive",
                             f"{f['second session']:.2f} s"))
            if late:
                load_now = load()
                f = one_start(browser, repo, late)
                rows.append((f"{label}first visitor {late:g} s after the start: title / images / interactive",
                             f"{f['title']:.2f} / {f['image']:.2f} / **{f['interactive']:.2f} s** (load {load_now})"))
        finally:
            browser.close()
    return rows


def run(quick: bool, repo: Path | None = None, before: Path | None = None, starts: int = 2,
        late: float = 10.0) -> list[tuple[str, str]]:
    """Cold and warm start of this checkout (and of `before`, a checkout of an older commit), and a
    first visitor `late` seconds after a start (0: not measured)."""
    rows = []
    if before is not None:
        rows += measure(before, 1 if quick else starts, "before, ", late)
    rows += measure(repo or REPO, 1 if quick else starts, "after, " if before is not None else "", late)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one start only")
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout to measure (default: this one)")
    ap.add_argument("--before", type=Path, help="also measure this checkout first (an older commit's worktree)")
    ap.add_argument("--starts", type=int, default=2, help="fresh server starts per checkout (first is cold)")
    ap.add_argument("--late", type=float, default=10.0,
                    help="also time a first visitor this many seconds after a start (0: skip)")
    args = ap.parse_args()
    print(f"# {os.cpu_count()} CPUs, load {load()}, {time.strftime('%Y-%m-%d %H:%M')}")
    print_figures(run(args.quick, args.repo.resolve(), args.before and args.before.resolve(), args.starts,
                      args.late), 62)
    print(f"# load after: {load()}")


if __name__ == "__main__":
    main()
