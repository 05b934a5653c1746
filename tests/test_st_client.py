"""The class benchmark's browserless session (`benchmarks/st_client.py`) does what a browser's does on
the server: it opens pages, finds a widget by its key, and a slider step through it comes back as a
new decoded image for the code it sent. A client that silently measured nothing would pass any load.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest

from benchmarks.browser import REPO, streamlit_server
from benchmarks.st_client import Session
from explorer.stale_reruns import GRACE_S
from explorer.state import MAP_METHOD_PICK

IMAGE = re.compile(rb'"image": ?"(data:image/[a-z]+;base64,[A-Za-z0-9+/=]+)"')


def _images(s: Session) -> list[bytes]:
    """The images the run that answered the last request sent (not those of a polling fragment's runs)."""
    return [m.group(1) for t in s.answer for m in IMAGE.finditer(t)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"VAE_EXPLORER_CACHE": str(tmp_path_factory.mktemp("cache"))}
    with streamlit_server(REPO / "streamlit_app.py", env=env) as srv:
        yield srv


def test_a_protocol_session_opens_pages_and_steps_a_slider(server):
    async def script():
        async with Session(server.url) as s:
            assert await s.load("Explore", "decode=server") is not None
            assert await s.wait_for("latent_sliders", 120, settled=True)  # the data's encoding has ended
            explore = s.page_hash
            # the class benchmark picks t-SNE through the map's method control, a versioned widget (its
            # key changed from "map_method" to stem + version, and every session's map went unasked)
            control = s.versioned(MAP_METHOD_PICK)
            assert control and control.startswith(MAP_METHOD_PICK) and control in s.ids, control
            z = [float(x) for x in parse_qs(s.query)["z"][0].split(",")]
            assert len(z) == 16  # the shipped model's latent size, from the address the app set
            got = []
            for k, v in enumerate((2.5, -2.5, 2.5)):
                z[0] = v
                value = json.dumps({"z": {"values": z, "version": 1, "final": False, "seq": k + 1}})
                assert await s.set("latent_sliders", 60, json_value=value) is not None
                assert f'"ack": {k + 1}'.encode() in b"".join(s.answer)  # the run that took this step
                got.append(_images(s))
            assert await s.set("no_such_widget", 5, json_value="{}") is None
            assert await s.load("Diagnose") is not None
            return explore, s.page_hash, got

    # a thread of its own: Playwright's sync API (the browser tests, in this process) keeps an event
    # loop running on the main thread, where asyncio.run() refuses to start another
    with ThreadPoolExecutor(1) as pool:
        explore, diagnose, (first, second, third) = pool.submit(asyncio.run, script()).result()
    assert explore and diagnose and explore != diagnose  # two pages, each run as itself
    assert first and second and third  # each step's run sent a new image (the last is its answer)
    assert first[-1] != second[-1]  # for the code it was sent: z0 = 2.5 and -2.5 decode differently,
    assert third[-1] == first[-1]  # and 2.5 again gives 2.5's picture again


def test_a_fragment_rerun_named_for_a_page_left_is_not_run(server):
    """Issue 19, item 0: a polling fragment's rerun that the browser asked for on the page it left, but
    that reached the server after the switch, ran as a run of that page; the browser then emptied the
    page it showed (and crashed when the new page had a fragment of the same id). The app's server
    drops it (`explorer/stale_reruns.py`); the same rerun named for the page shown is run."""
    async def script():
        async with Session(server.url) as s:
            assert await s.load("Home") is not None
            home = s.page_hash
            assert await s.load("Explore", "decode=server") is not None
            assert await s.wait_for("latent_sliders", 120, settled=True)  # nothing polls any more
            explore, fragment = s.page_hash, s.fragment["latent_sliders"]
            assert fragment  # the sliders live in a fragment: its id is in this session's storage
            started = len(s.run_pages)
            s.page_hash = home  # what a timer the browser set on Home sends, arriving after the switch
            await s._send(fragment_id=fragment, auto=True)
            await asyncio.sleep(3)
            late = s.run_pages[started:]
            s.page_hash = explore
            answered = await s._run(60, fragment_id=fragment)  # the same rerun, named for Explore
            return home, explore, late, answered, s.run_pages[-1]

    with ThreadPoolExecutor(1) as pool:
        home, explore, late, answered, last = pool.submit(asyncio.run, script()).result()
    assert home and explore and home != explore
    assert late == [], "a run started for the page left"
    assert answered and last == explore


def test_a_full_rerun_from_the_page_left_does_not_undo_a_page_switch(server):
    """Issue 19, item 0: a click on another page, and at once a report from the page left (the map
    saying what it holds once drawn, a toggle clicked at that moment), named the old page. With fast
    reruns that report stopped the new page's run and ran the old page again: the click did nothing (a
    browser test waited 60 s for Diagnose). The app's server drops it (`explorer/stale_reruns.py`); a
    click back a moment later is run."""
    async def script():
        async with Session(server.url) as s:
            assert await s.load("Diagnose") is not None
            diagnose = s.page_hash
            assert await s.load("Explore", "decode=server") is not None
            assert await s.wait_for("latent_sliders", 120, settled=True)
            explore = s.page_hash
            started = len(s.run_pages)
            s.page, s.page_hash = "Diagnose", diagnose
            await s._send()  # the click on Diagnose
            s.page, s.page_hash = "Explore", explore
            await s._send()  # Explore's report, sent before Diagnose's page arrived
            deadline = time.monotonic() + 60
            while diagnose not in s.run_pages[started:] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)  # an Explore run, were it started, starts within this
            runs = s.run_pages[started:]
            await asyncio.sleep(GRACE_S)
            s.page, s.page_hash = "Explore", explore
            back = await s._run(60)  # the user clicks Explore again, a moment later
            return diagnose, explore, runs, back, s.run_pages[-1]

    with ThreadPoolExecutor(1) as pool:
        diagnose, explore, runs, back, last = pool.submit(asyncio.run, script()).result()
    assert diagnose and explore and diagnose != explore
    assert runs and set(runs) == {diagnose}, "the switch to Diagnose was undone by Explore's report"
    assert back and last == explore
