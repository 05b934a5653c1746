"""Warm the server when it starts, not when its first visitor arrives (issue 11, item 5).

`streamlit run streamlit_app.py` finds the `st.App` the entry script defines when imported as a
module and serves it; the App's lifespan (`warm`) starts one background thread as soon as the
server is up. While the first browser loads the page and connects, that thread imports torch and
the app's modules (about 2.7 s on a 2-core machine, the bulk of a cold start) and fills the caches
the Home page reads for the default pair (the shipped run on its data: loading, the fit check,
encoding every image), so the first visitor finds them ready and nobody encodes them again.

This module imports only the standard library and Streamlit; a failure in the thread (no default
run, say) is logged and changes nothing: the pages then do the same work themselves.
"""
from __future__ import annotations

import importlib
import logging
import threading
from contextlib import asynccontextmanager

log = logging.getLogger("explorer")


def warm_default_pair() -> None:
    """Import the app's heavy modules and encode the default pair into the shared caches."""
    try:
        for name in ("sidebar", "figures", "explore_ui"):  # torch, plotly and what the pages import
            importlib.import_module(f"{__package__}.{name}")
        from . import cache, state

        cache.encoded(cache.source(str(state.DEFAULT_RUN)), cache.source(state.DEFAULT_DATA))
    except Exception:  # the pages report whatever is wrong with the default pair, in a sentence
        log.warning("warming the default run at start-up failed", exc_info=True)


class _QuietWarmThread(logging.Filter):
    """Drops Streamlit's "missing ScriptRunContext" warnings of this thread (caches work without one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != "vae-warm"


@asynccontextmanager
async def warm(app):
    """The App's lifespan: start warming in a daemon thread and serve at once."""
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_QuietWarmThread())
    threading.Thread(target=warm_default_pair, name="vae-warm", daemon=True).start()
    yield
