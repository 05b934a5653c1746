"""Issue 22, item 1 on the Explore page (AppTest): a link's view is applied once the data is encoded, and a
link that names an uploaded model keeps the rest of its view and says, in one sentence, what it needs."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from paths import ROOT

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
    ss = at.session_state
    assert ss["selected_point"] == 17 and ss["map_dims"] == 3 and ss["tool_tabs"] == "Traversals"
    # the address bar now holds the view as it is (the shipped run, which is active)
    assert at.query_params["run"] == "default" and at.query_params["point"] == "17"


def test_a_stale_point_and_a_bad_method_fall_back_with_a_sentence_each():
    at = _open(run="default", data="mnist", point="5000", method="lda", color="KL")
    warning = " ".join(w.value for w in at.warning)
    assert "The link's point '5000' is not a row of this data (0 to 4,999), so no point is selected." in warning
    assert "The link's method 'lda'" in warning
    ss = at.session_state
    assert ss["selected_point"] is None and ss["map_method"] == "pca" and ss["map_color"] == "KL"
