"""Warm the server when it starts, not when its first visitor arrives (issue 11, item 5).

`streamlit run streamlit_app.py` finds the `st.App` the entry script defines when imported as a
module and serves it; the App's lifespan (`warm`) starts one background thread as soon as the
server is up. While the first browser loads the page and connects, that thread imports torch and
the app's modules (about 2.7 s on a 2-core machine, the bulk of a cold start) and fills the caches
the Home page reads for the default pair (the shipped run on its data: loading, the fit check,
encoding every image), so the first visitor finds them ready and nobody encodes them again.

The thread waits `WARM_AFTER_S` first, then for every page run in progress to finish (`page_run`,
which the entry script wraps around each run: Home draws without torch, from disk, and importing torch
beside it would slow it), and steps aside if a visitor's script has begun importing torch by then: on 2 cores, warming while the first browser loads the page and connects slowed that
first page by about 1.4 s (GIL contention; `python -m benchmarks.scale_start`), so a visitor who
comes at once is served exactly as without warming, and anyone later finds the work done.

This module imports only the standard library and Streamlit; a failure in the thread (no default
run, say) is logged and changes nothing: the pages then do the same work themselves.
"""
from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from contextlib import asynccontextmanager, contextmanager

log = logging.getLogger("explorer")

WARM_AFTER_S = 3.0  # seconds after the server is up: a browser opened with the server has connected by then
PAGES_WAIT_S = 30.0  # at most this long for page runs in progress before warming anyway

_pages = threading.Condition()
_running = 0  # page runs in progress in this server


@contextmanager
def page_run():
    """Around one script run of a session (the entry script's navigation): the warm-up waits for it."""
    global _running
    with _pages:
        _running += 1
    try:
        yield
    finally:
        with _pages:
            _running -= 1
            _pages.notify_all()


def wait_for_pages(timeout: float) -> bool:
    """Wait until no page run is in progress (at most timeout seconds); True when none is."""
    with _pages:
        return _pages.wait_for(lambda: _running == 0, timeout=timeout)


def visitor_started() -> bool:
    """True once a session's script has begun importing torch (the entry script and Streamlit never do)."""
    return "torch" in sys.modules


def warm_default_pair(after: float = 0.0) -> None:
    """After `after` seconds, import the app's heavy modules and encode the default pair into the
    shared caches, unless a session's script is already importing torch (it does the work then)."""
    time.sleep(after)
    wait_for_pages(PAGES_WAIT_S)
    if visitor_started():
        log.info("a visitor came first: the start-up warm-up is left to the page")
        return
    try:
        for name in ("sidebar", "figures", "explore_ui"):  # torch, plotly and what the pages import
            importlib.import_module(f"{__package__}.{name}")
        from . import cache, state

        cache.encoded(cache.source(str(state.DEFAULT_RUN)), cache.source(state.DEFAULT_DATA))
    except Exception:  # the pages report whatever is wrong with the default pair, in a sentence
        log.warning("warming the default run at start-up failed", exc_info=True)


def settings_error() -> str | None:
    """One sentence when a VAE_EXPLORER_* limit setting is bad (inf, nan, text, out of range), else None.

    The server refuses to start on it and every page shows it: a bad setting would otherwise fail
    later, inside whatever first reads it (a model call, an upload), for every visitor.
    """
    from vae_core.limits import LimitError, limits  # standard library only: no torch imported

    try:
        limits()
    except LimitError as e:
        return str(e)
    return None


class _QuietWarmThread(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warnings of this thread (caches work without one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != "vae-warm"


@asynccontextmanager
async def warm(app):
    """The App's lifespan: start warming in a daemon thread and serve at once."""
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_QuietWarmThread())
    threading.Thread(target=warm_default_pair, args=(WARM_AFTER_S,), name="vae-warm", daemon=True).start()
    yield
