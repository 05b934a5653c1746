"""AppTest (headless) for the Home and Explore pages: they open, widgets change what is shown,
and the picker refuses a model/data mismatch while keeping the old pair."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from paths import ROOT  # the repository root (tests/paths.py)
from sidebar import decode_toggle, point_box
from sidebar import data_picker


TIMEOUT = 120
EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")
HOME = str(ROOT / "streamlit_app.py")


def _sliders(at: AppTest) -> dict:
    """The `data` Python sent to the latent slider panel (a components-v2 element AppTest cannot run)."""
    els = [el for el in at.get("bidi_component") if el.proto.component_name == "vae_latent_sliders"]
    assert len(els) == 1, "one slider panel on the page"
    return json.loads(els[0].proto.json)


def _move_sliders(at: AppTest, values, version: int | None = None) -> AppTest:
    """What the panel's JS does on a step/release: setStateValue("z", {values, version, seq, final})."""
    data = _sliders(at)
    at.session_state["latent_sliders"] = {"z": {
        "values": [float(v) for v in values], "version": data["z_version"] if version is None else version,
        "seq": (data["ack"] or 0) + 1, "final": True}}
    return at.run()


def _images(at: AppTest, caption: str) -> list[str]:
    """URLs of the st.image elements whose caption contains `caption` (the URL hashes the content)."""
    return [url for el in at.get("image") for url, cap in zip(el.value, el.captions) if caption in cap]


@pytest.fixture
def explore() -> AppTest:
    """A fresh Explore page for each test (tests change its state, so none shares one)."""
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_home_opens_on_default_run_and_mnist():
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "Variational Autoencoder" in text
    assert "runs/default" in text and "mnist" in text
    assert data_picker(at).value == "mnist"
    assert _images(at, "rebuilt image"), "Home shows the model rebuilding an image"


def test_explore_slider_panel_moves_z(explore: AppTest):
    """The MLP decoder runs in the browser: Python sends its weights and z, and takes the vector back."""
    data = _sliders(explore)
    assert data["decoder_id"] and data["decoder"]["id"] == data["decoder_id"]
    assert data["image"] is None, "no PNG round trip on the browser path"
    z = np.array(explore.session_state["z"])
    z[3] = 2.5
    _move_sliders(explore, z)
    assert not explore.exception
    assert explore.session_state["z"][3] == 2.5
    after = _sliders(explore)
    assert after["z"][3] == 2.5 and after["ack"] == data["ack"] + 1
    assert after["z_version"] == data["z_version"], "the browser's own values are not re-adopted"


def test_explore_slider_panel_ignores_stale_vector(explore: AppTest):
    """A vector based on values Python has since replaced (an older version) is answered, not used."""
    data = _sliders(explore)
    before = list(explore.session_state["z"])
    _move_sliders(explore, [9.0] * len(before), version=data["z_version"] - 1)
    assert explore.session_state["z"] == before
    assert _sliders(explore)["ack"] == data["ack"] + 1


def test_explore_sliders_sorted_by_kl_one_per_dim(explore: AppTest):
    from vae_core.runs.run_load import load_run

    d = load_run(ROOT / "runs" / "default").model.latent_dim
    rows = _sliders(explore)["meta"]["dims"]
    assert sorted(r["j"] for r in rows) == list(range(d))
    assert all(r["label"].startswith(f"z{r['j']}") for r in rows)
    kls = [float(r["help"].split()[1]) for r in rows]
    assert kls == sorted(kls, reverse=True), "most informative dimension first"
    assert all(("(collapsed)" in r["label"]) == r["collapsed"] for r in rows)


def test_explore_selecting_a_point_shows_it(explore: AppTest):
    point_box(explore).set_value(7).run()
    assert not explore.exception
    assert explore.session_state["selected_point"] == 7
    assert _images(explore, "original #7")
    assert _images(explore, "reconstruction")
    assert _images(explore, "reparameterisation")
    # the sliders now hold the point's code: z equals its encoded mean
    import torch

    from vae_core.runs.run_load import load_run
    from vae_core.data import load_dataset

    model = load_run(ROOT / "runs" / "default").model
    with torch.inference_mode():
        mu, _ = model.encode(load_dataset("mnist").x[7:8])
    np.testing.assert_allclose(explore.session_state["z"], mu[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(_sliders(explore)["z"], mu[0].numpy(), atol=1e-5)


def test_explore_reset_and_random_buttons(explore: AppTest):
    v0 = _sliders(explore)["z_version"]
    explore.button[[b.label for b in explore.button].index("Reset to 0")].click().run()
    assert all(v == 0.0 for v in explore.session_state["z"])
    data = _sliders(explore)
    assert data["z_version"] > v0 and all(v == 0.0 for v in data["z"]), "the panel gets the new values"
    explore.button[[b.label for b in explore.button].index("Random from the prior")].click().run()
    assert any(v != 0.0 for v in explore.session_state["z"])
    data2 = _sliders(explore)
    assert data2["z_version"] > data["z_version"] and data2["z"] == explore.session_state["z"]


def test_explore_slider_panel_python_path(tmp_path):
    """A TorchScript model has no in-browser decoder: each vector comes to Python, the PNG goes back."""
    from vae_core.runs.model_files import export_torchscript
    from vae_core.runs.run_load import load_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ts = export_torchscript(load_run(ROOT / "runs" / "default").model, tmp_path / "default_vae.ts")
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at.session_state["model_src"] = str(ts)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    data = _sliders(at)
    assert data["decoder_id"] is None and "decoder" not in data
    assert data["image"].startswith("data:image/png;base64,")
    z = np.zeros(len(at.session_state["z"]))
    z[_sliders(at)["meta"]["dims"][0]["j"]] = 2.0  # the most informative dimension
    _move_sliders(at, z)
    assert not at.exception
    after = _sliders(at)
    assert after["z"] == z.tolist() and after["ack"] == data["ack"] + 1
    assert after["image"] != data["image"], "moving a latent slider must change the decoded image"


def test_explore_decode_toggle_switches_to_server_path():
    """Turning 'Decode in the browser' off sends PNGs from the server for the same MLP model, and the
    PNG is torch's decode of z; ?decode=server starts a session that way (benchmarks/load.py)."""
    import base64
    import io

    import torch
    from PIL import Image

    from vae_core.runs.run_load import load_run

    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    assert _sliders(at)["image"] is None
    decode_toggle(at).set_value(False).run()
    assert not at.exception, [e.value for e in at.exception]
    data = _sliders(at)
    assert data["decoder_id"] is None and data["image"].startswith("data:image/png;base64,")
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["image"].split(",", 1)[1]))), dtype=np.float32)
    model = load_run(ROOT / "runs" / "default").model
    with torch.inference_mode():
        ref = model.decode(torch.tensor([data["z"]], dtype=torch.float32))[0, 0].numpy() * 255
    assert png.shape[:2] == ref.shape
    assert np.abs(png.reshape(ref.shape) - ref).max() <= 0.5 + 1e-3  # rounded to the nearest grey level
    at2 = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT)
    at2.query_params["decode"] = "server"
    at2.run()
    assert at2.session_state["browser_decode"] is False and _sliders(at2)["image"] is not None


def test_explore_interpolation_and_prior_tabs(explore: AppTest):
    explore.radio(key="interp_kind").set_value("spherical").run()
    assert not explore.exception
    caps = [c for el in explore.get("image") for c in el.captions]
    assert any("spherical path" in c for c in caps)
    before = _images(explore, "samples from the prior")
    explore.number_input(key="prior_seed").set_value(3).run()
    assert _images(explore, "samples from the prior") != before


def test_a_rerun_the_browser_sent_before_a_selection_reached_it_keeps_the_selection(explore: AppTest):
    """The browser reruns the page on its own (the map reports what it holds once it is drawn), sending
    the widget values it knows. One sent after "Find point" chose 42, but before the page showing 42
    arrived, still holds the "Point" box empty: it cleared the selection, and a later one put the sliders
    back on the point's code after a random draw (2 browser runs in 5 here, from a cold cache)."""
    explore.number_input(key="find_point").set_value(42)
    sent = explore._tree.get_widget_states()  # what the browser sends for that change
    explore.run()
    assert explore.session_state["selected_point"] == 42
    explore._run(sent)  # the same values again: a rerun crossing the page that shows 42
    assert not explore.exception, [e.value for e in explore.exception]
    assert explore.session_state["selected_point"] == 42
    assert point_box(explore).value == 42
    assert _images(explore, "original #42")
    # the box itself still selects, and "Clear" selects nothing
    point_box(explore).set_value(7).run()
    assert explore.session_state["selected_point"] == 7 and point_box(explore).value == 7
    explore.button(key="clear_point").click().run()
    assert explore.session_state["selected_point"] is None
    assert point_box(explore).value is None and not _images(explore, "original #")
    assert not [b for b in explore.button if b.key == "clear_point"], "nothing to clear"


def test_a_box_the_browser_drew_at_its_default_keeps_the_selection():
    """A run's elements can be dropped before they reach the browser, so the browser may meet the "Point"
    box of a new key only in a later run's copy. For a box drawn at its default and never given a value,
    the browser sends the box with no value. When the point was written into the session state and the
    default was empty, that read as "emptied" and took the selection away (1 fresh-clone run in 8 of
    tests/browser/test_attribute_slider.py: the strength panel waited for a point no longer selected).
    The point is the box's default now, so a box drawn at its default holds it. (Through the entry
    script, which marks runs that ended, so the box keeps its key from run to run as in a browser.)"""
    explore = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    explore.switch_page("app_pages/1_Explore.py").run()
    explore.number_input(key="find_point").set_value(42).run()
    assert explore.session_state["selected_point"] == 42
    box = point_box(explore)
    sent = explore._tree.get_widget_states()
    (w,) = [w for w in sent.widgets if w.id == box.id]
    w.ClearField(w.WhichOneof("value"))  # the box as the browser drew it from a copy without the value
    explore._run(sent)
    assert not explore.exception, [e.value for e in explore.exception]
    assert explore.session_state["selected_point"] == 42
    assert point_box(explore).value == 42 and _images(explore, "original #42")
    # a box made empty (nothing selected), typed in and emptied again selects nothing
    explore.button(key="clear_point").click().run()
    empty = point_box(explore)
    assert empty.value is None
    empty.set_value(5).run()
    assert explore.session_state["selected_point"] == 5 and point_box(explore).key == empty.key
    point_box(explore).set_value(None).run()
    assert explore.session_state["selected_point"] is None


def test_the_point_box_shows_the_selected_point_after_leaving_explore_and_coming_back():
    """A widget a run does not draw is forgotten: the "Point" box came back empty on Explore after a visit
    to Diagnose, while point 42 was still selected and shown. Drawn anew, it gets a key holding the point."""
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/1_Explore.py").run()
    at.number_input(key="find_point").set_value(42).run()
    assert point_box(at).value == 42
    at.switch_page("app_pages/3_Diagnose.py").run()
    at.switch_page("app_pages/1_Explore.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["selected_point"] == 42
    assert point_box(at).value == 42
    assert _images(at, "original #42")
    point_box(at).set_value(7).run()  # and it still selects
    assert at.session_state["selected_point"] == 7


def test_picker_refuses_mismatch_and_keeps_state():
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    point_box(at).set_value(3).run()
    data_picker(at).set_value("digits").run()  # 8x8 digits cannot feed a 28x28 model
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "takes digits (1 x 8 x 8 images; runs/default takes 1 x 28 x 28)" in errors, errors
    assert at.session_state["data_src"] == "mnist"
    assert data_picker(at).value == "mnist"
    assert at.session_state["selected_point"] == 3, "the rest of the state is kept"


def _pad(at: AppTest) -> dict:
    els = [el for el in at.get("bidi_component") if el.proto.component_name == "vae_latent_pad"]
    assert len(els) == 1, "one drag pad on the page"
    return json.loads(els[0].proto.json)


def test_pad_walks_the_plane_through_the_selected_points_full_code():
    """Issue 20, item 4: a clicked 0 showed a 6 on the pad, whose plane was the PCA plane through the
    mean (the other dimensions of the point's code dropped). The pad's plane passes through the
    point's own code at its map position; on both decoding paths the marker shows its reconstruction."""
    import base64
    import io

    import torch
    from PIL import Image

    from vae_core.runs.run_load import load_run
    from vae_core.data import load_dataset

    model = load_run(ROOT / "runs" / "default").model
    data = load_dataset("mnist")
    idx = 11
    with torch.inference_mode():
        mu = model.encode(data.x[idx:idx + 1])[0][0].double().numpy()  # the point's full code (D,)
        want = model.decode(torch.tensor(mu, dtype=torch.float32)[None])[0, 0].numpy()
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    point_box(at).set_value(idx).run()
    assert not at.exception, [e.value for e in at.exception]
    pad = _pad(at)
    x, y = pad["pos"] if isinstance(pad.get("pos"), list) else (pad["pos"]["x"], pad["pos"]["y"])
    z = np.asarray(pad["origin"]) + x * np.asarray(pad["axes"][0]) + y * np.asarray(pad["axes"][1])
    np.testing.assert_allclose(z, mu, atol=1e-4)  # the browser decodes exactly the point's code there
    assert any(f"through point {idx}'s full code" in c.value for c in at.caption)
    # the server path (a fresh session: AppTest runs no JS, which would report the moved marker)
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    decode_toggle(at).set_value(False).run()
    point_box(at).set_value(idx).run()
    assert not at.exception, [e.value for e in at.exception]
    pad = _pad(at)
    png = np.asarray(Image.open(io.BytesIO(base64.b64decode(pad["image"].split(",", 1)[1]))), dtype=np.float32)
    assert np.abs(png.reshape(want.shape) - want * 255).max() <= 0.5 + 1e-3


def test_pad_marker_starts_on_the_data_when_the_map_changes(tmp_path, monkeypatch):
    """Issue 20, item 4: after switching maps (to t-SNE, say) the marker kept its position from the
    other map, whose coordinates mean nothing on this one ("distance 159.5"); it moves to the data
    with the map. Here from t-SNE (coordinates in the tens) to PCA (a few units)."""
    import io as _io

    from settle import settle

    from explorer import state
    from vae_core.data import load_dataset

    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    x = load_dataset("mnist").x[:300, 0].numpy()  # a small upload: t-SNE takes seconds on it
    buf = _io.BytesIO()
    np.save(buf, (x * 255).astype(np.uint8))
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    at.file_uploader(key="upload_data").set_value(("small.npy", buf.getvalue(), "application/octet-stream"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[state.DATA_SRC].endswith(".npy")
    at.session_state[state.MAP_METHOD] = "tsne"
    settle(at.run())
    assert "-tsne-2" in _pad(at)["scatter_version"], "the pad shows the t-SNE map"
    # the user drags the marker to the t-SNE map's corner (what the pad's JS reports)
    x0, x1, y0, y1 = _pad(at)["bounds"]
    at.session_state[state.PAD] = {"pos": {"x": x1, "y": y1, "seq": 1, "down": False}}
    at.run()
    at.session_state[state.MAP_METHOD] = "pca"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "-pca-2" in _pad(at)["scatter_version"], "the pad shows the PCA map"
    caption = next(c.value for c in at.caption if c.value.startswith("Drag the marker"))
    assert "(among the data)" in caption, caption
