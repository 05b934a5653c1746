"""Shared by every test module: the repository root, how a missing tool is reported, and AppTest runs
that wait for the server's job queue.

`ROOT` lives in `tests/paths.py` (test modules need it at import time: `from paths import ROOT`);
the `repo_root` fixture gives the same path to a test that prefers a fixture. `require_tool` is the
one rule for an external program a test needs (node, chromium): on a laptop without it the test
skips; under CI (`CI=true`) it fails, so a CI image that lost the tool cannot pass by skipping.
The browser fixtures apply the same rule to chromium (tests/browser/conftest.py).

Helpers the test modules import by name (`tests/` is on `sys.path`): `paths` (ROOT), `settle` (the
job queue), `sidebar` (AppTest pickers and uploads), `ts_models` (a TorchScript model of the contract,
the worker limits, waiting for a process to exit), `zips` (zip files from members or a run
directory); the browser tests add `harness` (wait_until) and start servers and Chromium with
`benchmarks.browser`, shared with the benchmarks. The order of the tests does not matter: an opt-in
shuffled run is `python -m pytest --random-order` (pytest-random-order; without the flag the order
is pytest's own).

Job queue (explorer/jobs.py): a page that needs a queued job's result (an encoding, a report, a
map) draws its progress and stops; in a browser its progress fragment reruns the page when the job
ends, but AppTest does not run fragments on a timer. So `AppTest._run` is wrapped: after each run,
while a job is pending, wait for the queue and run the page again (`settle.settle`). A test that
must see the page while a job is pending (tests/test_jobs.py) runs inside `settle.unsettled()`.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import app_test

import settle
from paths import ROOT


def in_ci() -> bool:
    """True when the CI environment variable says so (`CI=true`, as CI services set it)."""
    return os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, why: str = "") -> str:
    """The path of the program `name`; skip without it, or fail under CI=true."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found on PATH" + (f" ({why})" if why else "")
        if in_ci():
            pytest.fail(msg + "; CI=true, so this fails instead of skipping")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the same as `paths.ROOT`)."""
    return ROOT


@pytest.fixture(scope="session")
def node() -> str:
    """The path of `node` for the JS tests: skips without it, fails under CI=true."""
    return require_tool("node", "the JS tests run the assets under Node.js; apt-get install nodejs")


@pytest.fixture(autouse=True, scope="session")
def _apptest_waits_for_jobs():
    original = app_test.AppTest._run

    def run(self, widget_state=None, timeout=None):
        # Streamlit installs the page as sys.modules["__main__"] and leaves it there: a later test that
        # spawns processes (torch.multiprocessing) would have each child run that page on import
        main = sys.modules.get("__main__")
        try:
            t0 = time.monotonic()
            out = original(self, widget_state, timeout)
            if settle.active():
                return out
            with settle.unsettled():  # the reruns below must not settle again inside
                return settle.settle(out, since=t0)
        finally:
            sys.modules["__main__"] = main

    app_test.AppTest._run = run
    yield
    app_test.AppTest._run = original


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """An empty runs dir for the app. explorer.state reads the variable at import; the test process
    may have imported it already, so the attribute is pointed there too."""
    from explorer import state

    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(runs))
    monkeypatch.setattr(state, "RUNS_DIR", runs)
    return runs
