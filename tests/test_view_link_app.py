"""Issue 22, item 1 on the Explore page (AppTest): a link's view is applied once the data is encoded, and a
link that names an uploaded model keeps the rest of its view and says, in one sentence, what it needs."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from paths import ROOT
from sidebar import point_box, selectbox

EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")


def _open(**params) -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_link_with_an_uploaded_model_keeps_the_rest_and_says_what_it_needs():
    at = _open(run="upload:my_vae.zip", data="mnist", point="17", dims="3", tab="Traversals")
    warning = " ".join(w.value for w in at.warning)
    assert "uploaded model (my_vae.zip)" in warning and "upload my_vae.zip in the sidebar" in warning
    from explorer import state

    ss = at.session_state
    assert ss[state.SELECTED] == 17 and ss[state.MAP_DIMS] == 3 and ss[state.TOOL_TAB] == "Traversals"
    # the address bar now holds the view as it is (the shipped run, which is active)
    assert at.query_params["run"] == "default" and at.query_params["point"] == "17"


def test_a_stale_point_and_a_bad_method_fall_back_with_a_sentence_each():
    at = _open(run="default", data="mnist", point="5000", method="lda", color="KL")
    warning = " ".join(w.value for w in at.warning)
    assert "The link's point '5000' is not a row of this data (0 to 4,999), so no point is selected." in warning
    assert "The link's method 'lda'" in warning
    from explorer import state

    ss = at.session_state
    assert ss[state.SELECTED] is None and ss[state.MAP_METHOD] == "pca" and ss[state.MAP_COLOR] == "KL"


def _control(at: AppTest, label: str):
    """A map control or the tool tabs, found by label: their keys carry a version (`state.setting_widget`)."""
    found = [w for w in list(at.button_group) + list(at.selectbox) if w.label == label]
    assert len(found) == 1, label
    return found[0]


def test_a_rerun_the_browser_sent_before_a_view_reached_it_leaves_the_view():
    """A link's or a loaded session's view sets the map's method, 2-D/3-D, colouring and the open tab. A
    rerun the browser sent before that view reached it carries the old controls' values: written into the
    controls' own keys, the view was taken back (a new browser opened a copied 3-D link, and its address
    bar wrote the 2-D view back: a CI failure). The settings are session values shown by versioned
    widgets, so the old values change nothing."""
    from explorer import state

    at = _open(run="default", data="mnist")
    color_options = [w for w in at.selectbox if w.label == "Colour by"][0].options
    ss = at.session_state
    assert (ss[state.MAP_METHOD], ss[state.MAP_DIMS], ss[state.MAP_COLOR]) == ("pca", 2, "label")
    sent = at._tree.get_widget_states()  # what the browser knows now: PCA, 2-D, by label, Neighbours
    ss[state.LINK_PARAMS] = {"dims": "3", "color": "KL", "tab": "Traversals", "point": "17"}  # a view applied
    at.run()
    assert (ss[state.MAP_DIMS], ss[state.MAP_COLOR], ss[state.TOOL_TAB]) == (3, "KL", "Traversals")
    at._run(sent)  # the rerun the browser sent before it saw that page
    assert not at.exception, [e.value for e in at.exception]
    assert (ss[state.MAP_DIMS], ss[state.MAP_COLOR], ss[state.TOOL_TAB]) == (3, "KL", "Traversals")
    assert _control(at, "View").value == 3 and _control(at, "Colour by").value == "KL"
    assert at.query_params["dims"] == "3" and at.query_params["tab"] == "Traversals"
    # Every run's copy of the controls carries the view as its default, not only the run that applied
    # it: a run's elements can be dropped before they reach the browser (the next run's start clears
    # what was not sent yet), and the browser, meeting a control first in a later run's copy, drew that
    # copy's default (2-D: the same CI failure)
    at.run()
    assert list(_control(at, "View").proto.default) == [1], "3-D, the second of [2, 3]"
    assert _control(at, "Colour by").proto.default == color_options.index("KL")
    assert point_box(at).value == 17
    # the controls themselves still change the settings
    _control(at, "View").set_value(2).run()
    _control(at, "Map").set_value("tsne").run()
    assert (ss[state.MAP_DIMS], ss[state.MAP_METHOD]) == (2, "tsne")


def test_the_open_tab_is_kept_when_explore_is_left_and_opened_again():
    """The tab was a widget key: Streamlit drops a widget's value when a page that does not draw it runs,
    so Explore came back on Neighbours after a visit to another page."""
    from explorer import state

    at = _open(run="default", data="mnist", tab="Traversals", dims="3")
    at.switch_page(str(ROOT / "app_pages" / "3_Diagnose.py")).run()
    at.switch_page(EXPLORE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[state.TOOL_TAB] == "Traversals" and at.query_params["tab"] == "Traversals"
    assert at.session_state[state.MAP_DIMS] == 3 and _control(at, "View").value == 3


def test_a_loaded_sessions_vector_groups_survive_a_rerun_the_browser_sent_before_they_reached_it():
    """A loaded session sets the attribute vector's groups. Written into the boxes' own keys, a rerun the
    browser sent before the session reached it took them back (the race of the test above); they are
    session values shown by versioned boxes, as the map's controls are."""
    from explorer import state

    at = _open(run="default", data="mnist", tab="Attribute vectors")
    ss = at.session_state
    assert (ss[state.VEC_GROUP_A], ss[state.VEC_GROUP_B]) == ("label 0", "label 1")  # the first two groups
    sent = at._tree.get_widget_states()
    ss[state.VEC_GROUP_A], ss[state.VEC_GROUP_B] = "label 3", "label 8"  # what share_ui's session load does
    at.run()
    at._run(sent)
    assert not at.exception, [e.value for e in at.exception]
    assert (ss[state.VEC_GROUP_A], ss[state.VEC_GROUP_B]) == ("label 3", "label 8")
    at.run()
    a, b = selectbox(at, "From group A"), selectbox(at, "To group B")
    assert (a.value, b.value) == ("label 3", "label 8")
    assert (a.proto.default, b.proto.default) == (a.options.index("label 3"), b.options.index("label 8"))
    a.set_value("label 5").run()  # the boxes themselves still choose
    assert ss[state.VEC_GROUP_A] == "label 5"
