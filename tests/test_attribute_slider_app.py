"""The attribute vector's strength slider, decoded live (issue 12, item 4), in AppTest.

The panel is the latent sliders' component with one slider. On the browser path its decoder is the
model's MLP decoder with the vector folded into the first layer: run here in numpy from the payload
alone, it must give torch's decode(point + s * vector). On the server path each strength gets its
PNG. Saved map selections are groups a vector can join. References: the shipped run's encoder and
decoder in torch, not the app's caches.
"""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer import state
from explorer.latent_tools_ui import strength_decoder
from vae_core.runs.run_load import load_run
from vae_core.data import load_dataset
from vae_core.metrics._common import encode_all
from paths import ROOT  # the repository root (tests/paths.py)
from sidebar import decode_toggle, point_box, selectbox

EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")


@pytest.fixture(scope="module")
def reference():
    model = load_run(ROOT / "runs" / "default").model.eval()
    data = load_dataset("mnist")
    return model, encode_all(model, data.x)[0].double().numpy(), data.y


@pytest.fixture
def explore() -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _panel(at: AppTest) -> dict:
    els = [el for el in at.get("bidi_component") if el.proto.component_name == "vae_strength_sliders"]
    assert len(els) == 1, "one strength panel on the page"
    return json.loads(els[0].proto.json)


def _move(at: AppTest, strength: float) -> AppTest:
    """What the panel's JS sends on a step (or a release on the browser path), with what it holds."""
    data = _panel(at)
    at.session_state[state.ATTR_SLIDER] = {"z": {"values": [strength], "version": data["z_version"],
                                                 "seq": (data["ack"] or 0) + 1, "final": True},
                                           "cache": {"meta": data["meta_id"], "decoder": data["decoder_id"]}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _run_payload(decoder: dict, s: float) -> np.ndarray:
    """decoder.js's loop in numpy: Linear (+ReLU) layers from the base64 weights, sigmoid, (C, H, W)."""
    h = np.array([s], dtype=np.float64)
    for layer in decoder["layers"]:
        out_dim, in_dim = layer["shape"]
        w = np.frombuffer(base64.b64decode(layer["w"]), dtype="<f4").reshape(out_dim, in_dim)
        b = np.frombuffer(base64.b64decode(layer["b"]), dtype="<f4")
        h = w @ h + b
        if layer["relu"]:
            h = np.maximum(h, 0)
    return (1 / (1 + np.exp(-h))).reshape(decoder["output"])


def test_browser_path_decodes_point_plus_strength_times_vector(explore, reference):
    model, mu, y = reference
    point_box(explore).set_value(3).run()
    selectbox(explore, "From group A").set_value("label 1").run()
    selectbox(explore, "To group B").set_value("label 7").run()
    data = _panel(explore)
    assert data["decoder_id"] and data["image"] is None, "an MLP decoder runs in the browser"
    assert data["meta"]["dims"][0]["label"] == "strength" and data["testid"] == "strength-sliders"
    v = mu[y == 7].mean(0) - mu[y == 1].mean(0)
    for s in (0.0, 0.7, -1.5):
        with torch.inference_mode():
            want = model.decode(torch.tensor(mu[3] + s * v, dtype=torch.float32)[None])[0].numpy()
        np.testing.assert_allclose(_run_payload(data["decoder"], s), want, atol=2e-5)
    first = _panel(explore)["decoder_id"]
    _move(explore, 0.5)
    assert _panel(explore)["z"] == [0.5] and "decoder" not in _panel(explore), "weights travel once per vector"
    assert _panel(explore)["decoder_id"] == first
    # issue 20, item 7: the caption says what the number is, in plain words ("where the server last
    # heard it" was jargon)
    caption = next(c.value for c in explore.caption if c.value.startswith("Strength 0.5"))
    assert "server" not in caption and "heard" not in caption and "let go" in caption


def test_server_path_answers_each_strength_with_its_image(explore, reference):
    model, mu, y = reference
    decode_toggle(explore).set_value(False).run()
    point_box(explore).set_value(3).run()
    selectbox(explore, "From group A").set_value("label 1").run()
    selectbox(explore, "To group B").set_value("label 7").run()
    pngs = {}
    for s in (0.0, 1.5):
        data = _panel(_move(explore, s))
        assert data["decoder_id"] is None and data["image"].startswith("data:image/png;base64,")
        pngs[s] = np.asarray(Image.open(io.BytesIO(base64.b64decode(data["image"].split(",", 1)[1]))))
        v = mu[y == 7].mean(0) - mu[y == 1].mean(0)
        with torch.inference_mode():
            want = model.decode(torch.tensor(mu[3] + s * v, dtype=torch.float32)[None])[0, 0].numpy()
        np.testing.assert_allclose(pngs[s].astype(float) / 255, want, atol=1 / 255 + 1e-6)
    assert not np.array_equal(pngs[0.0], pngs[1.5]), "moving the strength changes the image"


def test_saved_selections_are_groups(explore, reference):
    model, mu, y = reference
    left, right = np.array([5, 9, 40, 77]), np.array([2, 3, 1000, 4000, 4999])
    explore.session_state[state.SAVED_SELECTIONS] = {"left": left, "right": right, "bad": np.array([10 ** 7])}
    explore.run()
    names = selectbox(explore, "From group A").options
    assert "selection left" in names and "selection right" in names
    assert "selection bad" not in names, "rows outside the data never form a group"
    selectbox(explore, "From group A").set_value("selection left").run()
    selectbox(explore, "To group B").set_value("selection right").run()
    point_box(explore).set_value(11).run()
    _move(explore, 1.0)
    explore.button(key="vec_to_sliders").click().run()
    assert not explore.exception, [e.value for e in explore.exception]
    want = mu[11] + (mu[right].mean(0) - mu[left].mean(0))
    np.testing.assert_allclose(explore.session_state[state.Z], want, rtol=1e-4, atol=1e-4)


def test_strength_decoder_refuses_a_wrong_size():
    payload = {"id": "x", "output": [1, 1, 1],
               "layers": [{"w": base64.b64encode(np.ones((1, 3), "<f4").tobytes()).decode(),
                           "b": base64.b64encode(np.zeros(1, "<f4").tobytes()).decode(), "shape": [1, 3],
                           "relu": False}]}
    with pytest.raises(ValueError, match="3 dimensions"):
        strength_decoder(payload, np.zeros(2), np.zeros(3))
    folded = strength_decoder(payload, np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5]))
    assert folded["layers"][0]["shape"] == [1, 1]
    np.testing.assert_allclose(_run_payload(folded, 2.0), 1 / (1 + np.exp(-(6.0 + 2.0 * 1.5))).reshape(1, 1, 1))


def _size(fields: dict) -> int:
    return len(json.dumps(fields["decoder"]))


def test_another_point_sends_the_first_layer_alone(reference):
    """Browser holding the folded decoder of one point: the next point's (or vector's) folded
    decoder of the same model travels as its first layer alone, a small fraction of the whole; with
    nothing held, or a decoder of another model held, the whole payload goes."""
    from explorer.components.base import decoder_fields
    from explorer.components.browser_decoder import mlp_decoder_payload

    model, mu, y = reference
    payload = mlp_decoder_payload(model)
    v = mu[y == 7].mean(0) - mu[y == 1].mean(0)
    one, two, three = (strength_decoder(payload, b, w) for b, w in ((mu[3], v), (mu[11], v), (mu[11], -v)))
    assert one["base_id"] == two["base_id"] == payload["id"] and len({one["id"], two["id"], three["id"]}) == 3

    full = decoder_fields(one, {})
    assert full["decoder"] is one and len(full["decoder"]["layers"]) == len(payload["layers"])
    holding = {"meta": "m", "decoder": one["id"], "base": payload["id"]}
    assert "decoder" not in decoder_fields(one, holding), "a held decoder is not sent again"
    for other in (two, three):  # another point; another vector
        sent = decoder_fields(other, holding)
        assert sent["decoder_id"] == other["id"] and set(sent["decoder"]) == {"id", "base_id", "output", "first"}
        assert sent["decoder"]["first"] == other["layers"][0]
        assert sent["decoder"]["first"]["shape"] == [payload["layers"][0]["shape"][0], 1]
        assert _size(sent) < 0.05 * _size(full), (_size(sent), _size(full))
        # What the browser builds (the new first layer over the deeper layers it holds) decodes
        # point + s * vector as torch does.
        rebuilt = {"output": sent["decoder"]["output"], "layers": [sent["decoder"]["first"], *one["layers"][1:]]}
        vec = v if other is two else -v
        with torch.inference_mode():
            want = model.decode(torch.tensor(mu[11] + 0.8 * vec, dtype=torch.float32)[None])[0].numpy()
        np.testing.assert_allclose(_run_payload(rebuilt, 0.8), want, atol=2e-5)
    # Another model held, or an old report without "base" (the latent sliders' kind): the whole payload.
    for have in ({"decoder": one["id"], "base": "another-model"}, {"decoder": one["id"]}, {"decoder": None}):
        assert decoder_fields(two, have)["decoder"] is two
    # Decoders without a base_id (the latent sliders', the pad's) always travel whole.
    assert decoder_fields(payload, {"decoder": "x", "base": payload["id"]})["decoder"] is payload


def test_explore_sends_the_first_layer_alone_for_another_point(explore, reference):
    point_box(explore).set_value(3).run()
    selectbox(explore, "From group A").set_value("label 1").run()
    selectbox(explore, "To group B").set_value("label 7").run()
    first = _panel(explore)
    assert "layers" in first["decoder"], "the first draw sends the whole decoder"
    # The panel's JS reports what it holds, the model's id included.
    explore.session_state[state.ATTR_SLIDER] = {"cache": {
        "meta": first["meta_id"], "decoder": first["decoder_id"], "base": first["decoder"]["base_id"]}}
    point_box(explore).set_value(11).run()
    assert not explore.exception, [e.value for e in explore.exception]
    second = _panel(explore)
    assert second["decoder_id"] != first["decoder_id"]
    assert set(second["decoder"]) == {"id", "base_id", "output", "first"}
    assert len(json.dumps(second["decoder"])) < 0.05 * len(json.dumps(first["decoder"]))
    model, mu, y = reference
    v = mu[y == 7].mean(0) - mu[y == 1].mean(0)
    rebuilt = {"output": second["decoder"]["output"],
               "layers": [second["decoder"]["first"], *first["decoder"]["layers"][1:]]}
    with torch.inference_mode():
        want = model.decode(torch.tensor(mu[11] + 0.3 * v, dtype=torch.float32)[None])[0].numpy()
    np.testing.assert_allclose(_run_payload(rebuilt, 0.3), want, atol=2e-5)
