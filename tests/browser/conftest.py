"""Real-browser fixtures: system Chromium via Playwright, and `streamlit run` servers on demand."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.browser import StreamlitServer, find_chromium, launch_chromium
from harness import collect_console, describe_page

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        report.sections.append(("page when the test failed", describe_page(page)))
        if os.environ.get("BROWSER_TEST_SHOTS"):  # a folder: the failed page's screenshot goes there too
            page.screenshot(path=os.path.join(os.environ["BROWSER_TEST_SHOTS"], item.name + ".png"), full_page=True)
    return report


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system chromium; CI must have it (fail), a laptop may not (skip)."""
    path = find_chromium()
    if path is None:
        msg = "chromium not found on PATH (apt-get install chromium); never `playwright install`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator:
    """One headless Chromium for the session."""
    try:
        from playwright import sync_api
    except ImportError:
        msg = "the playwright package is missing (pip install -r requirements.txt)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw, chromium_path)
        yield b
        b.close()


@pytest.fixture(scope="module")
def streamlit_server(chromium_path: str) -> Iterator[Callable[..., StreamlitServer]]:
    """Factory: `streamlit_server(script, env=None)` -> a running server, one per (script, env): reused
    by every test of the module asking for the same pair, stopped when the module ends (a server's
    queued jobs go on after its test: a report or map left running by one module took the cores from
    the next module's pages). A test that needs its own environment
    (a temporary runs folder, say) gets its own server, never one started with another's."""
    servers: dict[tuple, StreamlitServer] = {}

    def start(script: str | Path, env: dict[str, str] | None = None) -> StreamlitServer:
        key = (Path(script).resolve(), tuple(sorted((env or {}).items())))
        if key not in servers:
            server = StreamlitServer(key[0], env=env)
            server.start()
            servers[key] = server
        return servers[key]

    yield start
    for server in servers.values():
        server.stop()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh browser context and page per test (no shared session state)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    p = context.new_page()
    # the browser's own errors, printed with a failure (a frontend that could not process a message
    # shows only "Error" in its status otherwise)
    collect_console(p)
    yield p
    context.close()
