"""The map's thumbnails, selections and density layer: the sprite sheet's layout against numpy (image
i sits at row i // ncol, column i % ncol and equals the block mean of the image, recomputed here
with loops), the selection payload's decoding against hand-packed bytes, and the Explore page
(AppTest): the thumbnails it sends, a reported selection's panel against numpy, keeping it by
name, the density layer, and kept selections emptied when the model/data pair changes."""
from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer import figures
from explorer.components.latent_map import MapLayer, decode_rows, encode_rows, map_data
from vae_core.maps.map_plane import density_grid, thumbnail_layout, thumbnail_sheet
from paths import ROOT  # the repository root (tests/paths.py)

EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")


def _tile(sheet, i: int) -> np.ndarray:
    return sheet.sheet[(i // sheet.ncol) * sheet.th:(i // sheet.ncol + 1) * sheet.th,
                       (i % sheet.ncol) * sheet.tw:(i % sheet.ncol + 1) * sheet.tw]


def _block_mean(img: np.ndarray, f: int) -> np.ndarray:
    """Reference: pixel (r, c) = mean of the f x f block at (r f, c f), rounded half up (zeros past the edge)."""
    h, w = img.shape[:2]
    th, tw = -(-h // f), -(-w // f)
    out = np.zeros((th, tw) + img.shape[2:], np.uint8)
    for r in range(th):
        for c in range(tw):
            block = np.zeros((f, f) + img.shape[2:])
            part = img[r * f:(r + 1) * f, c * f:(c + 1) * f]
            block[:part.shape[0], :part.shape[1]] = part
            out[r, c] = np.floor(block.mean(axis=(0, 1)) + 0.5)
    return out


def test_sheet_holds_each_image_at_its_place_unshrunk_when_it_fits():
    imgs = np.random.default_rng(0).integers(0, 256, (11, 5, 7), dtype=np.uint8)
    s = thumbnail_sheet(imgs)
    assert (s.factor, s.th, s.tw, s.count, s.ncol) == (1, 5, 7, 11, 4)
    assert s.sheet.shape == (3 * 5, 4 * 7)
    for i in range(11):
        np.testing.assert_array_equal(_tile(s, i), imgs[i])
    assert not s.sheet[2 * 5:, 3 * 7:].any()  # the unused cell is blank


# budget 600 pixels x channels: (shape, min_side) -> the factor, thumbnail size and rows that fit, by hand:
# 20 x 28 x 28: f=5 gives 6 x 6 (20 * 36 = 720 > 600), f=6 gives 5 x 5 (500): all 20 fit;
# with min_side 6 it stops at 6 x 6 and 600 // 36 = 16 rows get one; 9 RGB 13 x 10 with min_side 7:
# f=2 gives 7 x 5 (9 * 35 * 3 = 945 > 600), f=3 would give 5 < 7: 600 // 105 = 5 rows.
@pytest.mark.parametrize("shape, min_side, want", [((20, 28, 28), 5, (6, 5, 5, 20)),
                                                   ((20, 28, 28), 6, (5, 6, 6, 16)),
                                                   ((9, 13, 10, 3), 7, (2, 7, 5, 5))])
def test_a_tight_budget_shrinks_by_block_means_and_caps_the_rows(shape, min_side, want):
    imgs = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    s = thumbnail_sheet(imgs, budget=600, min_side=min_side)
    assert (s.factor, s.th, s.tw, s.count) == want
    for i in range(s.count):
        np.testing.assert_array_equal(_tile(s, i), _block_mean(imgs[i], s.factor))


def test_layout_at_scale_is_what_the_readme_says():
    assert thumbnail_layout(5000, 28, 28) == (1, 28, 28, 5000)  # MNIST as shipped: full size
    assert thumbnail_layout(100_000, 28, 28) == (3, 10, 10, 100_000)
    assert thumbnail_layout(1_000_000, 28, 28) == (3, 10, 10, (1 << 24) // 100)  # the first 167,772 rows
    assert thumbnail_layout(50, 4, 4, budget=10) == (1, 4, 4, 1)  # images smaller than min_side: not shrunk


def test_bad_images_are_refused_by_name():
    with pytest.raises(ValueError, match="uint8"):
        thumbnail_sheet(np.zeros((3, 8, 8), np.float32))


def test_selection_rows_decode_from_little_endian_int32():
    packed = base64.b64encode(struct.pack("<4i", 7, 2, 9, 2)).decode()
    np.testing.assert_array_equal(decode_rows({"rows": packed, "n": 4}, 10), [2, 7, 9])  # sorted, unique
    assert encode_rows(np.array([7, 2, 9, 2])) == packed
    assert decode_rows({"rows": "", "n": 0}, 10).size == 0
    with pytest.raises(ValueError, match=r"\[0, 8\], got 2 to 9"):
        decode_rows({"rows": packed, "n": 4}, 9)  # row 9 is out of range for 9 points
    with pytest.raises(ValueError, match="says 3 rows but carries 4"):
        decode_rows({"rows": packed, "n": 3}, 10)
    with pytest.raises(ValueError, match="not base64"):
        decode_rows({"rows": "@@@", "n": 1}, 10)
    with pytest.raises(ValueError, match="whole number of int32"):
        decode_rows({"rows": base64.b64encode(b"abc").decode(), "n": 0}, 10)


def test_layers_travel_only_while_the_browser_lacks_them():
    built = []
    layers = {"thumbs": MapLayer("t1", lambda: built.append("t") or {"src": "x"}), "density": None}
    first = map_data({}, "f", lambda: "{}", [], 500, layers=layers)
    assert first["thumbs"] == {"src": "x"} and first["thumbs_id"] == "t1" and first["density_id"] is None
    again = map_data({"figure": "f", "thumbs": "t1"}, "f", lambda: "{}", [], 500, layers=layers)
    assert "thumbs" not in again and "density" not in again and built == ["t"]


def test_2d_traces_grey_the_unselected_and_density_is_the_grid():
    fig = figures.map_base_figure(np.zeros((3, 2)), np.array([0, 1, 0]), categorical=True, color_name="label")
    assert all(t.unselected.marker.opacity == figures.UNSELECTED["marker"]["opacity"] for t in fig.data)
    pts = np.random.default_rng(2).normal(size=(500, 2))
    xs, ys, dens = density_grid(pts, (-3, 3, -3, 3), bins=20)
    tr = figures.map_density_trace(xs, ys, dens)
    np.testing.assert_allclose(np.asarray(tr.z), dens.astype(np.float32))
    np.testing.assert_allclose(np.asarray(tr.x), xs.astype(np.float32))


# --- the Explore page -------------------------------------------------------------------------

def _map_element(at: AppTest) -> dict:
    els = [el for el in at.get("bidi_component") if el.proto.component_name == "vae_latent_map"]
    assert len(els) == 1
    return json.loads(els[0].proto.json)


@pytest.fixture
def explore() -> AppTest:
    """A fresh Explore page for each test (tests change its state, so none shares one)."""
    at = AppTest.from_file(EXPLORE, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_explore_sends_every_digits_thumbnail_once(explore):
    from vae_core.data import load_dataset

    data = _map_element(explore)
    t = data["thumbs"]
    sheet = np.asarray(Image.open(io.BytesIO(base64.b64decode(t["src"].split(",", 1)[1]))))
    x = (np.clip(load_dataset("mnist").x.numpy()[:, 0], 0, 1) * 255).round().astype(np.uint8)  # (5000, 28, 28)
    assert (t["count"], t["th"], t["tw"], t["n"]) == (5000, 28, 28, 5000)
    for i in (0, 1, 70, 71, 4999):
        r, c = divmod(i, t["ncol"])
        np.testing.assert_array_equal(sheet[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28], x[i])
    explore.session_state["latent_map"] = {"cache": {"plotly": data["plotly_id"], "figure": data["figure_id"],
                                                     "thumbs": data["thumbs_id"]}}
    explore.run()
    assert "thumbs" not in _map_element(explore)  # held: not sent again


def test_a_reported_selection_fills_the_panel_and_can_be_kept(explore):
    from vae_core.data import load_dataset

    data = _map_element(explore)
    y = np.asarray(load_dataset("mnist").y)
    rows = np.flatnonzero(y == 3)[:40].tolist() + np.flatnonzero(y == 8)[:10].tolist()
    selection_id = data["selection_id"]
    explore.session_state["latent_map"] = {"cache": {}, "selection": {
        "rows": encode_rows(np.array(rows)), "n": len(rows), "map": selection_id, "seq": 1}}
    explore.run()
    assert not explore.exception, [e.value for e in explore.exception]
    text = " ".join(m.value for m in explore.markdown)
    assert "**50 of 5,000 points** selected; labels 3: 40 (80%), 8: 10 (20%)." in text
    assert any(c == "decode(mean of their codes)" for el in explore.get("image") for c in el.captions)
    explore.button(key="sel_keep").click().run()
    saved = explore.session_state["saved_selections"]
    assert list(saved) == ["A"] and saved["A"].tolist() == sorted(rows)
    assert explore.text_input(key="selection_name").value == "B"
    # a selection made on another map is stale: the panel says how to select instead
    explore.session_state["latent_map"] = {"cache": {}, "selection": {
        "rows": encode_rows(np.array(rows)), "n": len(rows), "map": "another map", "seq": 2}}
    explore.run()
    assert not any("points** selected" in m.value for m in explore.markdown)


def _typed(a: dict) -> np.ndarray:
    """plotly's {"dtype", "bdata", "shape"} typed-array spec -> numpy."""
    out = np.frombuffer(base64.b64decode(a["bdata"]), dtype=np.dtype(a["dtype"]).newbyteorder("<"))
    return out.reshape([int(v) for v in a["shape"].split(",")]) if "shape" in a else out


def test_density_layer_is_a_density_over_the_map(explore):
    explore.toggle(key="map_density").set_value(True).run()
    assert not explore.exception, [e.value for e in explore.exception]
    data = _map_element(explore)
    trace = json.loads(data["density"])["data"][0]
    assert trace["type"] == "contour" and data["density_id"].endswith("-density")
    xs, ys, z = _typed(trace["x"]), _typed(trace["y"]), _typed(trace["z"]).astype(np.float64)
    assert z.shape == (len(ys), len(xs)) == (80, 80) and (z >= 0).all()
    # a probability density over the plane: it integrates to 1 over the cells
    assert abs(z.sum() * (xs[1] - xs[0]) * (ys[1] - ys[0]) - 1) < 1e-3
    explore.toggle(key="map_density").set_value(False).run()
    assert _map_element(explore)["density_id"] is None


def test_kept_selections_are_emptied_when_the_pair_changes(tmp_path, monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from sidebar import npy_bytes, upload

    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    at = AppTest.from_file(EXPLORE, default_timeout=180).run()
    at.session_state["saved_selections"] = {"A": np.array([1, 2, 3])}
    at.run()
    assert list(at.session_state["saved_selections"]) == ["A"]  # the same pair keeps them
    x = np.random.default_rng(2).random((20, 28, 28)).astype(np.float32)
    at = upload(at, "upload_data", "mine28.npy", npy_bytes(x))
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["data_src"] != "mnist"  # the upload is the active data now
    assert at.session_state["saved_selections"] == {}


def test_the_images_export_holds_the_selected_images_as_uint8():
    from explorer.selection_ui import _uint8_nchw
    from vae_core.maps.latent_tools import selection_npz

    x = np.random.default_rng(3).random((10, 1, 4, 5)).astype(np.float32)
    rows = np.array([2, 7, 9])
    got = np.load(io.BytesIO(selection_npz(_uint8_nchw(x[rows]), rows, np.arange(10)[rows])), allow_pickle=False)
    want = np.array([[[[round(float(v) * 255) for v in line] for line in ch] for ch in img] for img in x[rows]])
    np.testing.assert_array_equal(got["x"], want.astype(np.uint8))
    np.testing.assert_array_equal(got["indices"], rows)
    np.testing.assert_array_equal(got["y"], rows)
