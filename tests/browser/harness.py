"""The browser tests' own helpers. Starting servers and Chromium and waiting for a page live in
benchmarks/browser.py, shared with the benchmarks (which never import from tests/)."""
from __future__ import annotations

from benchmarks import browser


def wait_until(fn, timeout: float, what: str, every: float = 0.05):
    """Call `fn` until it returns something truthy and return that; the test fails after `timeout` s."""
    try:
        return browser.wait_until(fn, timeout, what, every)
    except TimeoutError as e:
        raise AssertionError(str(e)) from None
