"""A page switch is never undone by a rerun the browser asked for on the page it left (issue 19, item 0:
the page went blank after a switch, "Bad delta path index 5 (should be between [0, 0])", once in about
fifteen runs of the test command).

A page with a polling fragment (a job's progress bar) has the browser ask for a rerun of that
fragment every second, naming the page. A timer the browser set up just after the click can fire
before the new page arrives, so that request reaches the server after the switch. The test sends
exactly that request itself, through the page's own connection, once the new page is drawn: without
the server's guard (`explorer/stale_reruns.py`) the browser emptied the new page and threw that error."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg

from benchmarks.browser import wait_app_ready

pytestmark = pytest.mark.browser

APP = Path(__file__).with_name("page_switch_app.py")


def test_a_late_fragment_rerun_from_the_page_left_leaves_the_new_page_drawn(page, streamlit_server):
    url = streamlit_server(APP).url
    asked: list[BackMsg] = []  # the fragment reruns the browser asked for
    connection = {}

    def route(ws) -> None:
        server = ws.connect_to_server()
        connection["server"] = server

        def to_server(message) -> None:
            server.send(message)
            msg = BackMsg()
            msg.ParseFromString(message if isinstance(message, bytes) else message.encode())
            if msg.WhichOneof("type") == "rerun_script" and msg.rerun_script.fragment_id:
                asked.append(msg)
        ws.on_message(to_server)

    page.route_web_socket("**/_stcore/stream", route)
    page.goto(url)  # page A, the default
    page.get_by_text("A done").wait_for(timeout=120_000)
    deadline = time.monotonic() + 30
    while not asked and time.monotonic() < deadline:  # page A's progress bar asks once a second
        page.wait_for_timeout(200)
    assert asked, "page A's polling fragment never asked for a rerun"
    late = asked[-1]
    assert late.rerun_script.page_script_hash  # it names page A

    page.locator('[data-testid="stSidebarNav"] a', has_text="B").first.click()
    page.get_by_text("B done").wait_for(timeout=60_000)
    wait_app_ready(page, 60_000)
    connection["server"].send(late.SerializeToString())  # page A's timer, firing after the switch
    page.wait_for_timeout(3000)  # the fragment's run (were it run) ends in milliseconds

    errors = [e for e in page._console_errors if "delta path" in e]
    assert not errors, errors
    assert page.locator('[data-testid="stApp"]').count() == 1, "the app crashed"
    body = page.locator("body").inner_text()
    assert "Page B" in body and "B done" in body, body[:300]
    assert page.url.rstrip("/").endswith("/B")
