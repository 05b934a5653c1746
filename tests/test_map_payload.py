"""The map's payload: float32/int32 typed arrays (not JSON lists), fitted/placed traces, the N points
sent only while the browser lacks them, and the Explore page's click contract."""
from __future__ import annotations

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from explorer import figures
from explorer.components.latent_map import map_data, plotly_js
from paths import ROOT  # the repository root (tests/paths.py)
from sidebar import point_box

EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")


def _decode(arr: dict) -> np.ndarray:
    """plotly's {"dtype", "bdata"} typed-array spec -> numpy."""
    return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]).newbyteorder("<"))


def test_base_figure_carries_float32_coordinates_and_every_index_once():
    coords = np.array([[0.5, 1.0], [2.0, -1.0], [3.25, 0.0], [4.0, 4.0], [-1.0, 2.5]])
    labels = np.array([1, 0, 1, 1, 0])
    fitted = np.array([True, False, False, True, True])
    spec = json.loads(figures.map_base_figure(coords, labels, categorical=True, color_name="label",
                                              fitted=fitted).to_json())
    got = {}
    for t in spec["data"]:
        assert t["x"]["dtype"] == "f4" and t["customdata"]["dtype"] == "i4"
        for i, x, y in zip(_decode(t["customdata"]), _decode(t["x"]), _decode(t["y"])):
            got[int(i)] = (t["name"], t["legendgroup"], float(x), float(y))
    assert sorted(got) == [0, 1, 2, 3, 4]
    # each group's title gives the group's size (plotly shows the first trace's title)
    assert {t["legendgroup"]: t["legendgrouptitle"]["text"] for t in spec["data"]} == {
        "fitted": "fitted (3)", "placed afterwards": "placed afterwards (2)"}
    for i in range(5):
        name, group, x, y = got[i]
        assert name == f"label {labels[i]}" and (x, y) == tuple(coords[i])
        assert group == ("fitted" if fitted[i] else "placed afterwards")


def test_continuous_colour_shares_one_scale_across_fitted_and_placed():
    coords = np.arange(12, dtype=float).reshape(6, 2)
    err = np.array([5.0, 1.0, 3.0, 9.0, 2.0, 4.0])
    fig = figures.map_base_figure(coords, err, categorical=False, color_name="KL",
                                  fitted=np.array([1, 1, 0, 0, 0, 0], bool))
    assert [(t.marker.cmin, t.marker.cmax) for t in fig.data] == [(1.0, 9.0), (1.0, 9.0)]
    assert [t.marker.showscale for t in fig.data] == [True, False]
    np.testing.assert_array_equal(np.concatenate([t.marker.color for t in fig.data]), [5, 1, 3, 9, 2, 4])


def test_pca_map_has_no_placed_traces():
    coords = np.zeros((4, 3))
    fig = figures.map_base_figure(coords, None, categorical=False, color_name="none", fitted=np.ones(4, bool))
    assert [(t.type, t.legendgroup) for t in fig.data] == [("scatter3d", None)]


def test_points_and_plotly_travel_only_while_the_browser_lacks_them():
    built = []

    def figure() -> str:
        built.append(1)
        return "{\"data\": []}"

    version, source = plotly_js()
    first = map_data({}, "map-a", figure, [], 500)
    assert first["plotly_js"] == source and first["figure"] == "{\"data\": []}"
    held = map_data({"plotly": version, "figure": "map-a"}, "map-a", figure, [], 500)
    assert "plotly_js" not in held and "figure" not in held and len(built) == 1
    assert map_data({"plotly": version, "figure": "map-a"}, "map-b", figure, [], 500)["figure"]


def _map_element(at: AppTest) -> dict:
    els = [el for el in at.get("bidi_component") if el.proto.component_name == "vae_latent_map"]
    assert len(els) == 1, "one map on the page"
    return json.loads(els[0].proto.json)


def test_explore_sends_the_map_once_and_a_selection_only_its_overlay():
    at = AppTest.from_file(EXPLORE, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    data = _map_element(at)
    n = sum(len(_decode(t["customdata"])) for t in json.loads(data["figure"])["data"])
    assert n == 5000  # every mnist digit, once
    # What the JS reports after drawing; the next run sends neither plotly.js nor the points.
    at.session_state["latent_map"] = {"cache": {"plotly": data["plotly_id"], "figure": data["figure_id"]}}
    at.run()
    again = _map_element(at)
    assert "figure" not in again and "plotly_js" not in again
    # Selecting a point sends only its ring and cloud (the browser test clicks the real map).
    point_box(at).set_value(42).run()
    assert not at.exception, [e.value for e in at.exception]
    after = _map_element(at)
    cloud, ring = json.loads(after["overlay"])["data"]
    assert "figure" not in after and len(_decode(cloud["x"])) == 200
    np.testing.assert_array_equal(np.r_[_decode(ring["x"]), _decode(ring["y"])],
                                  _points_of(json.loads(data["figure"]))[42])


def _points_of(spec: dict) -> dict[int, tuple[float, float]]:
    """{index: (x, y)} over a base figure's traces."""
    return {int(i): (x, y) for t in spec["data"]
            for i, x, y in zip(_decode(t["customdata"]), _decode(t["x"]), _decode(t["y"]))}
