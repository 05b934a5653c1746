"""The server's record of a session's page switches (`explorer/stale_reruns.PageSwitches`), on hand-made
timelines: which reruns the browser asked for are run, and which are dropped as sent on a page left.
`current` is the page the latest run drew. The same guard on the real server: tests/test_st_client.py."""
from __future__ import annotations

from explorer.stale_reruns import GRACE_S, PENDING_S, PageSwitches


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
