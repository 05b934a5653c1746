"""The browser tests' own helpers. Starting servers and Chromium and waiting for a page live in
benchmarks/browser.py, shared with the benchmarks (which never import from tests/); import them from
there. The names below are also importable from here, so that a browser test written against the
earlier harness (`from harness import REPO, wait_app_ready`) still runs."""
from __future__ import annotations

from benchmarks import browser
from benchmarks.browser import (CHROMIUM_ARGS, REPO, StreamlitServer, find_chromium, free_port,  # noqa: F401
                                launch_chromium, streamlit_server, wait_app_ready)


def wait_until(fn, timeout: float, what: str, every: float = 0.05):
    """Call `fn` until it returns something truthy and return that; the test fails after `timeout` s."""
    try:
        return browser.wait_until(fn, timeout, what, every)
    except TimeoutError as e:
        raise AssertionError(str(e)) from None
