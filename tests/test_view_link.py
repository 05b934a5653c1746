"""Issue 22, items 1, 2 and 4: the link's parser, the session file's checks and the map's filter mask,
against hand-made parameters, files and numpy counts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from explorer import map_filter, view_link
from explorer.map_filter import MapFilter
from explorer.view_link import SessionError, View

RUNS = {"default": "/srv/runs/default", "beta8": "/srv/runs/beta8"}
DATAS = {"mnist": "mnist", "digits": "digits", "faces.npz": "/data/faces.npz"}
COLORS = ["label", "reconstruction error", "KL", "none"]
TABS = ["Neighbours", "Traversals", "Attribute vectors"]
KW = dict(n=100, latent_dim=3, colors=COLORS, tabs=TABS)


def test_a_view_round_trips_through_its_link():
    v = View(method="umap", dims=3, color="KL", point=42, z=[0.5, -1.25, 3e-7], tab="Traversals")
    params = view_link.encode("beta8", "mnist", v, kept={"decode": "server", "other": "x"})
    assert params == {"run": "beta8", "data": "mnist", "method": "umap", "dims": "3", "color": "KL", "point": "42",
                      "z": "0.5,-1.25,3e-07", "tab": "Traversals", "decode": "server"}
    back, notes = view_link.check_view(params, **KW)
    assert notes == [] and back == v
    assert view_link.parse_source(params, RUNS, DATAS) == ("/srv/runs/beta8", "mnist", [])
    # the text is stable: writing the parsed code again gives the same link
    assert view_link.encode("beta8", "mnist", back) == {k: p for k, p in params.items() if k != "decode"}


def test_defaults_are_left_out_of_the_link():
    assert view_link.encode("default", "mnist", View()) == {"run": "default", "data": "mnist"}


@pytest.mark.parametrize("key,value,field,default", [
    ("method", "lda", "method", "pca"),
    ("dims", "4", "dims", 2),
    ("dims", "two", "dims", 2),
    ("color", "hue", "color", None),
    ("point", "100", "point", None),  # one past the last row: stale (the data shrank)
    ("point", "-1", "point", None),
    ("point", "1.5", "point", None),
    ("z", "1,2", "z", None),  # a 2-D code for a 3-D model: another run's link
    ("z", "1,nan,2", "z", None),
    ("z", "1,2,1e9", "z", None),
    ("z", "a,b,c", "z", None),
    ("tab", "Nope", "tab", None),
])
def test_a_bad_or_stale_parameter_falls_back_with_one_sentence(key, value, field, default):
    v, notes = view_link.check_view({"point": "7", key: value} if key != "point" else {key: value}, **KW)
    assert getattr(v, field) == default
    assert len(notes) == 1 and notes[0].count(". ") == 0 and notes[0].endswith(".")
    assert f"The link's {key}" in notes[0]
    if key != "point":  # the good fields are kept
        assert v.point == 7


def test_uploads_and_unknown_runs_cannot_travel_and_say_so():
    m, d, notes = view_link.parse_source({"run": "upload:my_vae.pt", "data": "mnist"}, RUNS, DATAS)
    assert (m, d) == (None, "mnist") and len(notes) == 1 and "my_vae.pt" in notes[0] and "upload" in notes[0]
    m, d, notes = view_link.parse_source({"run": "gone", "data": "upload:faces.npz"}, RUNS, DATAS)
    assert (m, d) == (None, None) and len(notes) == 2 and "'gone'" in notes[0] and "faces.npz" in notes[1]
    assert view_link.parse_source({}, RUNS, DATAS) == (None, None, [])


def test_source_value_names_runs_by_folder_and_uploads_by_file():
    assert view_link.source_value("/srv/runs/beta8", RUNS, None) == "beta8"
    assert view_link.source_value("/tmp/up/x/model.pt", RUNS, "model.pt") == "upload:model.pt"


# --- the session file ---------------------------------------------------------------------------

def _session(**over) -> dict:
    doc = json.loads(view_link.session_json(
        run="beta8", data="mnist", n=100, latent_dim=3,
        view=View(method="tsne", point=5, z=[1.0, 2.0, 3.0], tab="Attribute vectors"),
        selections={"A": np.array([3, 1, 2]), "B": np.array([99])},
        vector={"from": "selection A", "to": "selection B", "strength": 1.5}))
    doc.update(over)
    return doc


def _load(doc, **kw):
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return view_link.load_session(raw, **{"run": "beta8", "data": "mnist", **KW, **kw})


def test_a_session_loads_back_exactly():
    s, notes = _load(_session())
    assert notes == []
    assert s.view == View(method="tsne", point=5, z=[1.0, 2.0, 3.0], tab="Attribute vectors")
    assert list(s.selections) == ["A", "B"]
    np.testing.assert_array_equal(s.selections["A"], [1, 2, 3])
    np.testing.assert_array_equal(s.selections["B"], [99])
    assert s.vector == {"from": "selection A", "to": "selection B", "strength": 1.5}


def test_a_session_of_another_run_or_data_is_refused_by_name():
    with pytest.raises(SessionError, match="'beta8'.*'mnist'.*'default'.*'mnist'"):
        _load(_session(), run="default")
    with pytest.raises(SessionError, match="'digits'"):
        _load(_session(), data="digits")
    with pytest.raises(SessionError, match="100 rows and 3 latent"):
        _load(_session(), n=200)


@pytest.mark.parametrize("doc,why", [
    (b"\x80\x81 not text", "not JSON"),
    (b"[1, 2]", "not a session"),
    ({"app": "something else"}, "not a session"),
    ("version=2", "version 2"),
    ("extra", "unknown field"),
    ("n=str", "its n"),
    ("view=list", "its view"),
    ("sel_row_out", "rows outside 0 to 99"),
    ("sel_float", "whole row numbers"),
    ("sel_empty", "non-empty list"),
    ("sel_name", "name must have"),
    ("vector_strength", "vector must be"),
    ("vector_nan", "vector must be"),
])
def test_every_bad_field_is_refused_with_a_sentence(doc, why):
    if isinstance(doc, str):
        d = _session()
        if doc == "version=2":
            d["version"] = 2
        elif doc == "extra":
            d["pickle"] = "x"
        elif doc == "n=str":
            d["n"] = "100"
        elif doc == "view=list":
            d["view"] = [1]
        elif doc == "sel_row_out":
            d["selections"] = {"A": [0, 100]}
        elif doc == "sel_float":
            d["selections"] = {"A": [0, 1.5]}
        elif doc == "sel_empty":
            d["selections"] = {"A": []}
        elif doc == "sel_name":
            d["selections"] = {" ": [1]}
        elif doc == "vector_strength":
            d["vector"] = {"from": "a", "to": "b", "strength": 1e6}
        elif doc == "vector_nan":
            d["vector"] = {"from": "a", "to": "b", "strength": "nan"}
        doc = d
    with pytest.raises(SessionError, match=why):
        _load(doc)


def test_a_bad_view_field_in_a_session_falls_back_with_a_sentence():
    d = _session()
    d["view"]["point"] = 1000
    d["view"]["z"] = [1.0, 2.0]
    s, notes = _load(d)
    assert s.view.point is None and s.view.z is None and s.view.method == "tsne"
    assert len(notes) == 2 and all(n.startswith("The session's") for n in notes)


def test_a_session_file_over_the_limit_is_refused_before_parsing():
    big = b" " * (view_link.SESSION_MAX_BYTES + 1)
    with pytest.raises(SessionError, match="MB"):
        _load(big)


# --- the map's filter -------------------------------------------------------------------------------

def test_the_filter_mask_matches_numpy_counts():
    rng = np.random.default_rng(0)
    n = 100_000
    y = rng.integers(0, 10, n)
    factors = rng.integers(0, 4, (n, 2))
    kl = rng.gamma(2.0, 3.0, n)
    recon = rng.normal(80, 10, n)
    recon[::97] = np.nan
    f = MapFilter(index=(1000, 80_000), labels=(3, 7), factor=(1, (0, 2)), kl=(2.0, 9.5), recon=(70.0, 95.0))
    got = map_filter.filter_mask(f, n, y=y, factors=factors, kl=kl, recon=recon)
    rows = np.arange(n)
    want = ((rows >= 1000) & (rows <= 80_000) & ((y == 3) | (y == 7)) & ((factors[:, 1] == 0) | (factors[:, 1] == 2))
            & (kl >= 2.0) & (kl <= 9.5) & (recon >= 70.0) & (recon <= 95.0))
    np.testing.assert_array_equal(got, want)
    assert not got[::97].any()  # NaN errors fail a range
    assert map_filter.filter_mask(MapFilter(), n, y=y).all() and not MapFilter().active
    only = map_filter.filter_mask(MapFilter(labels=(5,)), n, y=y)
    assert only.sum() == np.count_nonzero(y == 5)
    assert map_filter.counts_text(47, 412) == "47 / 412"
    assert map_filter.mask_id(got) != map_filter.mask_id(only) and map_filter.mask_id(got) == map_filter.mask_id(got.copy())


def test_the_map_figure_draws_only_the_kept_rows_and_counts_them_in_the_legend():
    from explorer.figures import map_base_figure

    y = np.array([0, 0, 1, 1, 1, 2])
    coords = np.arange(12, dtype=np.float32).reshape(6, 2)
    shown = np.array([True, False, True, True, False, False])
    fig = map_base_figure(coords, y, categorical=True, color_name="label", shown=shown)
    rows = {t.name: sorted(np.asarray(t.customdata).tolist()) for t in fig.data}
    assert rows == {"label 0 (1 / 2)": [0], "label 1 (2 / 3)": [2, 3], "label 2 (0 / 1)": []}
    fig = map_base_figure(coords, y.astype(float), categorical=False, color_name="KL", shown=shown, highlight=True)
    assert fig.data[0].name == "filtered out (3)" and fig.data[0].customdata is None
    assert np.asarray(fig.data[1].customdata).tolist() == [0, 2, 3]
    assert np.asarray(fig.data[1].marker.color).tolist() == [0.0, 1.0, 1.0]
