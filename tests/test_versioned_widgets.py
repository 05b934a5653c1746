"""The versioned widgets (`explorer/state.py`: `renew`, `_live`): a widget whose value the app sets is
given a new key holding the value, and keeps its key only while the browser is known to hold it: drawn
by the previous full run of the same page, which ended rather than being cut short by a rerun.

The fault these guard against: a run cut short by a rerun (the browser's reports come fast while a page
loads) could stop before the "Point" box was sent; the next run kept the key without writing its value,
so the browser drew the box at its default, empty, beside the old one (two "Point" boxes in 2 fresh-clone
runs of tests/browser/test_share_browser.py). The entry script marks a run that ended
(`state.page_run_ended`); these tests play its part by hand."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page():
    import streamlit as st

    from explorer import state

    state.init()
    state.count_page_run("Explore")
    st.session_state[state.SELECTED] = 123
    key = state.point_box_for(st.session_state[state.SELECTED])
    st.number_input("Point", value=None, key=key)
    if not st.session_state.get("cut short"):
        state.page_run_ended()


def _box(at: AppTest):
    (box,) = [b for b in at.number_input if b.label == "Point"]
    return box


def test_the_key_is_kept_while_the_previous_run_ended_and_renewed_after_one_cut_short():
    at = AppTest.from_function(_page).run()
    first = _box(at).key
    assert _box(at).value == 123
    at.run()
    assert _box(at).key == first, "drawn by the previous run, which ended: the browser holds it"
    at.session_state["cut short"] = True
    at.run()  # this run draws the box but is cut short: the browser may never have seen it
    cut = _box(at).key
    at.session_state["cut short"] = False
    at.run()
    renewed = _box(at)
    assert renewed.key not in (first, cut), "after a run cut short the box is drawn anew"
    assert renewed.value == 123, "holding the selected point, written by the run that draws it"
    at.run()
    assert _box(at).key == renewed.key


def test_a_box_the_previous_run_did_not_draw_is_renewed():
    at = AppTest.from_function(_page).run()
    first = _box(at).key
    at.session_state["versioned_drawn"] = {}  # as after a run of another page, which drew no box
    at.run()
    assert _box(at).key != first and _box(at).value == 123


def test_the_box_is_sent_again_by_the_two_runs_after_the_one_that_made_its_key():
    """A run's elements can be dropped before they reach the browser (the next run's start clears what
    was not yet sent), and a value written into the session state travels only with the run that wrote
    it: the browser would meet the box in a later run's copy and draw it empty. The two runs after the
    one that made the key write it again; later runs leave the box to the browser (what the user is
    typing is never overwritten)."""
    at = AppTest.from_function(_page).run()
    first = _box(at)
    assert first.proto.set_value and first.proto.value == 123
    for _ in range(2):
        at.run()
        assert _box(at).key == first.key and _box(at).proto.set_value and _box(at).proto.value == 123
    at.run()
    assert _box(at).key == first.key and not _box(at).proto.set_value
    assert _box(at).value == 123
