"""Start `streamlit run` and headless Chromium, and wait for a page: shared by the browser benchmarks
and the browser tests (tests/browser/harness.py adds the test-only helpers on top)."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import REPO  # the repository root: the servers' working directory and import root

# Debian's chromium in a container: no sandbox (no user namespaces), /dev/shm is small, no GPU,
# and nothing phoning home while we time things.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def find_chromium() -> str | None:
    """Path of the system chromium (never a Playwright download), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """One `streamlit run` subprocess in its own process group, on 127.0.0.1."""

    def __init__(self, script: str | Path, port: int | None = None, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None, repo: Path = REPO):
        self.script = Path(script).resolve()
        self.repo = Path(repo)  # cwd and import root (another checkout, e.g. a worktree of an older commit)
        self.env = dict(env or {})  # extra environment for the server (e.g. where uploads go)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None  # launch -> /_stcore/health ok
        self._log = tempfile.TemporaryFile()

    def start(self, timeout: float = 60.0) -> str:
        """Launch and wait until /_stcore/health answers ok; returns the base URL."""
        env = dict(os.environ)
        # The demo scripts import explorer/vae_core from the repo without installing it.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.repo), env.get("PYTHONPATH")]))
        env.update(self.env)
        cmd = [sys.executable, "-m", "streamlit", "run", str(self.script),
               "--server.port", str(self.port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               *self.extra_args]
        t0 = time.perf_counter()
        # cwd=REPO so .streamlit/config.toml (postScriptGC off) applies as it will for the app.
        self.proc = subprocess.Popen(cmd, cwd=self.repo, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        self.startup_s = time.perf_counter() - t0
                        return self.url
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"streamlit did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """Everything the server printed so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate by process id, then kill if it lingers."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@contextlib.contextmanager
def streamlit_server(script: str | Path, **kwargs) -> Iterator[StreamlitServer]:
    """Context manager: a started server, stopped on exit."""
    server = StreamlitServer(script, **kwargs)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def launch_chromium(playwright, chromium_path: str | None = None):
    """Headless system Chromium through Playwright's sync API."""
    path = chromium_path or find_chromium()
    if path is None:
        raise RuntimeError("chromium not found on PATH (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)


def wait_until(fn, timeout: float, what: str, every: float = 0.05):
    """Call `fn` until it returns something truthy and return that; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def wait_app_ready(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script finished its first run (the status widget says nothing is running)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => { const a = document.querySelector('[data-testid="stApp"]');
                   return a && a.getAttribute('data-test-script-state') === 'notRunning'; }""",
        timeout=timeout_ms,
    )
