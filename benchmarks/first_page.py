"""Launch to an interactive Home page for a visitor who opens it at once (issue 21, item 6).

Each start is a fresh `streamlit run streamlit_app.py` on a free 127.0.0.1 port; headless Chromium
opens the page the moment /_stcore/health answers. Per start, seconds from launch to: health, the
title, the sidebar's model picker, both Home images, and the script run finished (interactive).
Each checkout gets its own empty cache folder (VAE_EXPLORER_CACHE) and uploads folder: its first
start ("empty cache") fills what it keeps on disk (the encodings; after issue 21 also Home's picture),
and the starts after it ("cache on disk") are a server restarted on the same machine.

`--before REV` also measures an older commit, checked out with `git worktree add` into a temporary
folder (removed afterwards), in the same run, alternating before / after start by start.

Run from the repo root: python -m benchmarks.first_page [--before 405ee4a] [--starts 3]
Prints figures with the 1-minute load average beside each start; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.browser import REPO, StreamlitServer, launch_chromium, wait_app_ready

TIMEOUT_MS = 180_000
STEPS = ("health", "title", "sidebar", "images", "interactive")


def load() -> float:
    return os.getloadavg()[0]


def one_start(browser, repo: Path, cache: Path) -> dict[str, float]:
    """A fresh server of `repo`'s app, and a visitor who opens Home as soon as it answers."""
    uploads = Path(tempfile.mkdtemp(prefix="vae-fp-uploads-"))
    server = StreamlitServer(repo / "streamlit_app.py", repo=repo,
                             env={"VAE_EXPLORER_UPLOADS": str(uploads), "VAE_EXPLORER_CACHE": str(cache)})
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        t0 = time.perf_counter()
        server.start(timeout=120)
        out = {"health": time.perf_counter() - t0}
        page.goto(server.url)
        page.locator('[data-testid="stTitle"], h1').first.wait_for(timeout=TIMEOUT_MS)
        out["title"] = time.perf_counter() - t0
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.wait_for(timeout=TIMEOUT_MS)
        out["sidebar"] = time.perf_counter() - t0
        page.locator('[data-testid="stImage"] img').nth(1).wait_for(timeout=TIMEOUT_MS)
        out["images"] = time.perf_counter() - t0
        wait_app_ready(page, TIMEOUT_MS)
        out["interactive"] = time.perf_counter() - t0
        return out
    finally:
        page.close()
        server.stop()
        shutil.rmtree(uploads, ignore_errors=True)


def _row(label: str, f: dict[str, float], ld: float) -> str:
    steps = " / ".join(f"{f[k]:.2f}" for k in STEPS[:-1])
    return f"{label:34} {steps} / {f['interactive']:.2f} s   (load {ld:.2f})"


def run(checkouts: dict[str, Path], starts: int) -> None:
    from playwright.sync_api import sync_playwright

    caches = {name: Path(tempfile.mkdtemp(prefix=f"vae-fp-cache-{name}-")) for name in checkouts}
    warm: dict[str, list[float]] = {name: [] for name in checkouts}
    print(f"{'':34} {' / '.join(STEPS)} (seconds from launch)")
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)  # up first: the figures are the server's and the page's
            try:
                for i in range(starts + 1):
                    for name, repo in checkouts.items():
                        ld = load()
                        f = one_start(browser, repo, caches[name])
                        kind = "empty cache" if i == 0 else f"cache on disk, start {i}"
                        print(_row(f"{name}, {kind}", f, ld), flush=True)
                        if i:
                            warm[name].append(f["interactive"])
            finally:
                browser.close()
    finally:
        for c in caches.values():
            shutil.rmtree(c, ignore_errors=True)
    for name, xs in warm.items():
        if xs:
            print(f"{name}: launch to interactive, cache on disk: median {statistics.median(xs):.2f} s "
                  f"(min {min(xs):.2f}, max {max(xs):.2f}, {len(xs)} starts)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", metavar="REV", help="also measure this commit (a temporary git worktree)")
    ap.add_argument("--starts", type=int, default=3, help="starts per checkout after the one that fills the cache")
    args = ap.parse_args()
    print(f"# {os.cpu_count()} CPUs, load {load():.2f}, {time.strftime('%Y-%m-%d %H:%M')}")
    checkouts = {"after": REPO}
    tmp = None
    if args.before:
        tmp = Path(tempfile.mkdtemp(prefix="fp-before-")) / "repo"
        subprocess.run(["git", "worktree", "add", "--detach", str(tmp), args.before], cwd=REPO, check=True,
                       capture_output=True)
        checkouts = {f"before ({args.before})": tmp, "after": REPO}
    try:
        run(checkouts, args.starts)
    finally:
        if tmp is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp)], cwd=REPO, check=False,
                           capture_output=True)
            shutil.rmtree(tmp.parent, ignore_errors=True)
    print(f"# load after: {load():.2f}")


if __name__ == "__main__":
    main()
