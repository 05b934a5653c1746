"""Warm the server when it starts, not when its first visitor arrives (issue 11, item 5).

`streamlit run streamlit_app.py` finds the `st.App` the entry script defines when imported as a
module and serves it; the App's lifespan (`warm`) starts one background thread as soon as the
server is up. That thread imports torch and the app's modules (about 2.7 s on a 2-core machine) and
fills the caches Explore and the other pages read for the default pair (the shipped run on its data:
loading, the fit check, encoding every image), so nobody encodes them again.

Home draws without torch (its picture is on disk, `explorer/home_ui.py`), and importing torch beside
it slowed it (GIL contention on 2 cores). So the thread waits until the first visitor's page run has
ended (`page_run`, which the entry script wraps around each run), or `WARM_AFTER_S` when nobody
comes, and steps aside if a visitor's script has begun importing torch by then (that page does the
work itself).

This module imports only the standard library and Streamlit; a failure in the thread (no default
run, say) is logged and changes nothing: the pages then do the same work themselves.
"""
from __future__ import annotations

import importlib
import logging
import sys
import threading
from contextlib import asynccontextmanager, contextmanager

log = logging.getLogger("explorer")

WARM_AFTER_S = 10.0  # at most this long after the server is up, waiting for the first page run to end

_pages = threading.Condition()
_running = 0  # page runs in progress in this server
_ended = 0  # page runs ended


@contextmanager
def page_run():
    """Around one script run of a session (the entry script's navigation): the warm-up waits for it."""
    global _running, _ended
    with _pages:
        _running += 1
    try:
        yield
    finally:
        with _pages:
            _running -= 1
            _ended += 1
            _pages.notify_all()


def wait_for_pages(timeout: float) -> bool:
    """Wait until a page run has ended and none is in progress (at most timeout seconds); True then."""
    with _pages:
        return _pages.wait_for(lambda: _ended > 0 and _running == 0, timeout=timeout)


def visitor_started() -> bool:
    """True once a session's script has begun importing torch (the entry script and Streamlit never do)."""
    return "torch" in sys.modules


def warm_default_pair(after: float = 0.0) -> None:
    """When the first page run has ended (at most `after` seconds), import the app's heavy modules and encode the default pair into the
    shared caches, unless a session's script is already importing torch (it does the work then)."""
    wait_for_pages(after)
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
