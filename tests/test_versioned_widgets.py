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
    st.number_input("Point", **state.point_box_for(st.session_state[state.SELECTED]))
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
    assert renewed.value == 123, "holding the selected point, as its default"
    at.run()
    assert _box(at).key == renewed.key


def test_a_box_the_previous_run_did_not_draw_is_renewed():
    at = AppTest.from_function(_page).run()
    first = _box(at).key
    at.session_state["versioned_drawn"] = {}  # as after a run of another page, which drew no box
    at.run()
    assert _box(at).key != first and _box(at).value == 123


def test_every_run_sends_the_point_with_the_box_and_never_writes_it():
    """A run's elements can be dropped before they reach the browser (the next run's start clears what
    was not yet sent), and a value written into the session state travels only with the run that wrote
    it: the browser met the box in a later run's copy, drew it empty and sent "empty" back, which took
    the selection away. The point is the box's default instead, in every run's copy, and is never written
    (a written value would also overwrite what the user is typing)."""
    at = AppTest.from_function(_page).run()
    key = _box(at).key
    for _ in range(4):
        box = _box(at)
        assert box.key == key and box.proto.default == 123 and not box.proto.set_value
        at.run()

