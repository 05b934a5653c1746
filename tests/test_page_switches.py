"""The server's record of a session's page switches (`explorer/stale_reruns.PageSwitches`), on hand-made
timelines: which reruns the browser asked for are run, and which are dropped as sent on a page left.
`current` is the page the latest run drew. The same guard on the real server: tests/test_st_client.py.
And a script's own rerun (st.rerun()) folded into a switch the browser asked for, on Streamlit's own
request queue (`ScriptRequests`)."""
from __future__ import annotations

import threading
from types import SimpleNamespace

from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests
from streamlit.runtime.scriptrunner_utils.script_run_context import SCRIPT_RUN_CONTEXT_ATTR_NAME

from explorer.stale_reruns import GRACE_S, PENDING_S, PageSwitches, keeping_switches


def test_a_report_from_the_page_left_just_after_a_click_is_dropped_before_and_after_the_new_page_starts():
    s = PageSwitches()
    assert s.asked("", "", now=0.0)  # the first request names no page (the address does)
    s.started("app", "", now=0.1)  # it starts as the entry script, which draws Explore
    assert s.asked("explore", "explore", now=10.0), "a rerun of the page shown runs"
    assert s.asked("diagnose", "explore", now=20.0)  # the click
    assert not s.asked("explore", "explore", now=20.01), "sent by the page left before the switch began"
    s.started("diagnose", "explore", now=20.5)
    assert not s.asked("explore", "diagnose", now=20.5 + GRACE_S / 2), "sent before the browser saw the new page"
    assert s.asked("diagnose", "diagnose", now=21.0), "the new page's own reruns run"
    assert s.asked("explore", "diagnose", now=20.5 + GRACE_S + 0.01), "a later click back runs"


def _on(page: str) -> PageSwitches:
    s = PageSwitches()
    s.asked(page, "", now=0.0)
    s.started(page, "", now=0.1)
    return s


def test_a_switch_whose_run_never_starts_stops_guarding_after_its_time():
    s = _on("explore")
    assert s.asked("diagnose", "explore", now=5.0)
    assert not s.asked("explore", "explore", now=5.0 + PENDING_S - 0.1)
    assert s.asked("explore", "explore", now=5.0 + PENDING_S + 0.1)


def test_history_navigation_and_first_requests_are_never_dropped():
    s = _on("explore")
    assert s.asked("diagnose", "explore", now=1.0)
    assert s.asked("explore", "explore", history=True, now=1.01), "the browser's back button"
    assert s.asked("", "explore", now=1.02)


def test_a_switch_the_server_made_guards_the_same_way():
    s = _on("train")
    s.started("explore", "train", now=3.0)  # st.switch_page: no request named Explore
    assert not s.asked("train", "explore", now=3.0 + GRACE_S / 2)
    assert s.asked("train", "explore", now=3.0 + GRACE_S + 0.01)


def test_the_same_click_twice_keeps_the_first_switch():
    s = _on("explore")
    assert s.asked("diagnose", "explore", now=1.0)
    assert s.asked("diagnose", "explore", now=1.2)  # clicked again before the page came
    assert not s.asked("explore", "explore", now=1.3)
    s.started("diagnose", "explore", now=1.4)
    assert s.switch.origin == "explore" and s.switch.asked == 1.0
    assert not s.asked("explore", "diagnose", now=1.4 + GRACE_S / 2)


class _Run(threading.Thread):
    """A thread that Streamlit takes for a script's run of `page` (its ScriptRunContext: only the page)."""

    def __init__(self, page: str, fn) -> None:
        super().__init__(target=fn)
        setattr(self, SCRIPT_RUN_CONTEXT_ATTR_NAME, SimpleNamespace(page_script_hash=page))

    def go(self) -> None:
        self.start()
        self.join()


def _requests(guarded: bool) -> ScriptRequests:
    if not guarded:
        return ScriptRequests()
    cls = type("Guarded", (ScriptRequests,), {"_request_rerun_locked": keeping_switches(
        ScriptRequests._request_rerun_locked)})
    return cls()


def _click_then_script_rerun(guarded: bool, waiting: RerunData) -> RerunData:
    """Explore's run is going; the browser asks for `waiting`, and then Explore's script calls st.rerun()
    (a job's polling fragment whose job is done): the request the next run starts with."""
    r = _requests(guarded)
    assert r.request_rerun(waiting)  # from the server's event loop: no script context
    _Run("explore", lambda: r.request_rerun(RerunData(page_script_hash="explore", query_string="x=1"))).go()
    return r.on_scriptrunner_yield().rerun_data


def test_a_scripts_own_rerun_does_not_take_back_a_switch_the_browser_asked_for():
    click = RerunData(page_script_hash="diagnose", page_name="Diagnose")
    assert _click_then_script_rerun(False, click).page_script_hash == "explore"  # Streamlit's own folding
    assert _click_then_script_rerun(True, click).page_script_hash == "diagnose"
    address = RerunData(page_name="Train")  # a page asked for by its address: a name, no hash yet
    assert _click_then_script_rerun(True, address).page_name == "Train"


def test_a_scripts_rerun_still_folds_with_its_own_pages_requests_and_switch_page_still_switches():
    same = RerunData(page_script_hash="explore", query_string="x=0")  # a widget change on the page itself
    assert _click_then_script_rerun(True, same).query_string == "x=1"  # folded as Streamlit does
    fragment = RerunData(page_script_hash="diagnose", fragment_id="f")  # not a full run: never guarded
    assert _click_then_script_rerun(True, fragment).page_script_hash == "explore"
    r = _requests(True)
    r.request_rerun(RerunData(page_script_hash="diagnose"))
    _Run("explore", lambda: r.request_rerun(RerunData(page_script_hash="train"))).go()  # st.switch_page
    assert r.on_scriptrunner_yield().rerun_data.page_script_hash == "train"
    r = _requests(True)  # nothing waiting: st.rerun() runs its page
    _Run("explore", lambda: r.request_rerun(RerunData(page_script_hash="explore"))).go()
    assert r.on_scriptrunner_yield().rerun_data.page_script_hash == "explore"


def test_a_page_opened_by_its_address_is_no_switch():
    """Such a run starts as the entry script and finds its page later; the server may see its start
    after the page was drawn, or before, with the previous page still current. Neither is a switch
    away from that page: a click on it at once is run (it was dropped as a report from a page left)."""
    for current in ("diagnose", "explore", "app"):
        s = _on("diagnose")
        s.started("app", current, entry="app", now=5.0)  # Explore, opened by its address
        assert s.asked("diagnose", "explore", now=5.2), current
        assert not s.asked("explore", "explore", now=5.21)  # and the switch it makes is guarded
