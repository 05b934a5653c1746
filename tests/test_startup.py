"""Start-up (issue 11, item 5): `streamlit run streamlit_app.py` serves an st.App whose lifespan
warms the default pair in a background thread; a session's run of the same file draws the pages.
The figures (cold, warm, a visitor after the warm-up) are in benchmarks/scale_start.py."""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading

import pytest
import streamlit as st
from streamlit.web.server.app_discovery import discover_asgi_app

from explorer import cache, startup, state
from paths import ROOT  # the repository root (tests/paths.py)


APP = ROOT / "streamlit_app.py"


def test_streamlit_run_finds_the_app_and_importing_it_draws_nothing(monkeypatch):
    found = discover_asgi_app(APP)
    assert found.is_asgi_app and found.app_name == "app"
    drawn = []
    monkeypatch.setattr(st, "navigation", lambda *a, **k: drawn.append(a))
    spec = importlib.util.spec_from_file_location("streamlit_app_under_test", APP)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # as uvicorn imports it: not __main__
    assert isinstance(mod.app, st.App)
    assert drawn == [] and not hasattr(mod, "PAGES")


def test_warming_encodes_the_default_pair(monkeypatch):
    calls = []
    monkeypatch.setattr(cache, "encoded", lambda m, d: calls.append((m.src, d.src)))
    monkeypatch.setattr(startup, "visitor_started", lambda: False)
    startup.warm_default_pair()
    assert calls == [(str(state.DEFAULT_RUN), state.DEFAULT_DATA)]


def test_a_visitor_who_came_first_does_the_work_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(cache, "encoded", lambda m, d: calls.append((m.src, d.src)))
    assert startup.visitor_started()  # this test process has imported torch, as a page's script does
    startup.warm_default_pair()
    assert calls == []


def test_a_failed_warm_up_is_logged_not_raised(monkeypatch, caplog):
    def broken(m, d):
        raise FileNotFoundError("no run")

    monkeypatch.setattr(cache, "encoded", broken)
    monkeypatch.setattr(startup, "visitor_started", lambda: False)
    with caplog.at_level(logging.WARNING, logger="explorer"):
        startup.warm_default_pair()
    assert "warming the default run" in caplog.text


def test_the_lifespan_serves_at_once_and_warms_in_a_thread(monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow_warm(after):
        assert after == startup.WARM_AFTER_S
        started.set()
        release.wait(10)

    monkeypatch.setattr(startup, "warm_default_pair", slow_warm)

    async def enter_and_leave():
        async with startup.warm(None):  # serving: the warm-up must still be running, in its own thread
            assert started.wait(10)
            return [t for t in threading.enumerate() if t.name == "vae-warm" and t.is_alive()]

    got = []  # asyncio.run in a thread of its own: Playwright's sync API may hold this thread's loop
    runner = threading.Thread(target=lambda: got.append(asyncio.run(enter_and_leave())))
    runner.start()
    runner.join(20)
    warm = got[0]
    assert len(warm) == 1 and warm[0].daemon
    release.set()
    warm[0].join(10)


def test_the_warm_up_waits_for_a_page_run_to_end(monkeypatch):
    """Home draws without torch; the warm-up (which imports torch) starts when a page run has ended."""
    monkeypatch.setattr(startup, "_ended", 0)
    assert not startup.wait_for_pages(0)  # no page has run yet
    with startup.page_run():
        with startup.page_run():  # two sessions at once
            assert not startup.wait_for_pages(0)
        assert not startup.wait_for_pages(0)  # one has ended, the other still runs
    assert startup.wait_for_pages(0)
    with pytest.raises(RuntimeError):  # a page that fails still ends its run
        with startup.page_run():
            assert not startup.wait_for_pages(0)
            raise RuntimeError("page failed")
    assert startup.wait_for_pages(0)

    waits, calls = [], []
    monkeypatch.setattr(cache, "encoded", lambda m, d: calls.append(m.src))
    monkeypatch.setattr(startup, "visitor_started", lambda: False)
    monkeypatch.setattr(startup, "wait_for_pages", lambda timeout: waits.append(timeout) or True)
    startup.warm_default_pair(startup.WARM_AFTER_S)
    assert waits == [startup.WARM_AFTER_S] and calls == [str(state.DEFAULT_RUN)]
