"""The Explore page's ONNX path in AppTest: which decoder goes to the browser, how its bytes travel (once,
through the loader), and the one sentence when the server decodes instead.

References are torch's own decode (the graph the loader carries is run with onnxruntime here) and the
files' bytes, never the app's caches. The browser side (onnxruntime-web) is tests/browser/test_onnx_browser.py.
"""
from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from explorer import state
from vae_core import onnx_export
from vae_core.runs.checkpoints import save_run
from vae_core.runs.model_files import export_torchscript
from vae_core.config import ModelConfig, TrainConfig
from vae_core.errors import CheckpointError
from vae_core.models import VAE
from vae_core.sandbox.proxy import RemoteModel
from sidebar import decode_toggle, point_box, selectbox

ort = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv(onnx_export.CACHE_ENV, str(tmp_path / "onnx"))


def _conv_vae(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(ModelConfig(input_shape=(1, 8, 8), arch="conv", conv_channels=(4, 8), hidden=(16,), latent_dim=2)).eval()


def _run(tmp_path: Path, seed: int = 0) -> tuple[Path, VAE]:
    model = _conv_vae(seed)
    return save_run(tmp_path / "runs" / f"conv{seed}", model, TrainConfig(epochs=1), [{"epoch": 1}],
                    dataset="digits"), model


def _explore(model_src: Path, loader_status: dict | None = None, at: AppTest | None = None) -> AppTest:
    if at is None:
        at = AppTest.from_file(EXPLORE, default_timeout=180)
        at.session_state[state.MODEL_SRC] = str(model_src)
        at.session_state[state.DATA_SRC] = "digits"
    if loader_status is not None:  # what the loader's JS reports
        at.session_state[state.ONNX_LOADER] = {"status": loader_status}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _component(at: AppTest, name: str) -> dict | None:
    els = [el for el in at.get("bidi_component") if el.proto.component_name == name]
    assert len(els) <= 1
    return json.loads(els[0].proto.json) if els else None


def _captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def _onnx_decode(onnx_bytes: bytes, z: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: z.astype(np.float32)})[0], dtype=np.float64)


def test_conv_run_decoder_travels_once_through_the_loader(tmp_path):
    run, model = _run(tmp_path)
    at = _explore(run)
    loader = _component(at, "vae_onnx_runtime")
    assert loader is not None, [e.value for e in at.error] + [w.value for w in at.warning] + [c.value for c in at.caption]
    assert loader["ort_base"] == "/app/static/onnxruntime-web/"
    onnx_bytes = base64.b64decode(loader["onnx"])
    z = np.array([[1.5, -0.7]])
    with torch.inference_mode():
        want = model.decode(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
    assert np.abs(_onnx_decode(onnx_bytes, z) - want).max() < 1e-5
    # Until the browser says its session is ready, the server decodes (a PNG per step).
    sliders = _component(at, "vae_latent_sliders")
    assert sliders["decoder_id"] is None and sliders["image"].startswith("data:image/png")
    assert "Loading the decoder into your browser" in _captions(at)

    at = _explore(run, {"id": loader["id"], "state": "ready", "ms": 900}, at)
    loader = _component(at, "vae_onnx_runtime")
    assert "onnx" not in loader, "the bytes travel once"
    sliders = _component(at, "vae_latent_sliders")
    assert sliders["decoder_id"] == loader["id"] and sliders["image"] is None
    assert sliders["decoder"] == {"kind": "onnx", "id": loader["id"], "latent_dim": 2, "output": [1, 8, 8]}
    assert len(json.dumps(sliders)) < 2_000, "the sliders get a reference to the session, not the graph"
    assert "Decoding on the server" not in _captions(at)


def test_a_rerun_the_browser_sent_while_the_decoder_exported_leaves_browser_decoding_on(tmp_path, monkeypatch):
    """While the decoder exports, the toggle is off and disabled; when the export is done the page comes
    back with it on. A rerun the browser sent in between (a component's report, a progress poll) carries
    the disabled toggle's "off": taken as the user's choice, it turned browser decoding off while the
    toggle showed on, and the server decoded for good (a browser test waited 240 s for the first ONNX
    session). The toggle gets a new key instead, so that value changes nothing."""
    import threading
    import time

    import settle
    from explorer import jobs

    gate, export = threading.Event(), onnx_export._export

    def held(module, z, path):  # the export, held until the test lets it finish
        assert gate.wait(120)
        export(module, z, path)

    monkeypatch.setattr(onnx_export, "_export", held)
    run, _ = _run(tmp_path, seed=3)
    with settle.unsettled():
        at = _explore(run)
        for _ in range(600):  # the page stops while the data is encoded; the export waits behind it
            if any(t.label == "Decode in the browser" for t in at.toggle):
                break
            time.sleep(0.1)
            at = _explore(run, at=at)
        assert decode_toggle(at).disabled and decode_toggle(at).value is False
        assert _component(at, "vae_onnx_runtime") is None
        sent = at._tree.get_widget_states()  # what the browser knows now: the toggle off
        gate.set()
        assert jobs.queue("encode").wait_idle(120)
        at = _explore(run, at=at)  # the progress poll's rerun: the decoder is ready
        assert decode_toggle(at).value is True and not decode_toggle(at).disabled
        at._run(sent)  # the rerun the browser sent before it saw that page
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[state.BROWSER_DECODE] is True
    assert decode_toggle(at).value is True
    assert _component(at, "vae_onnx_runtime") is not None, "the loader is drawn: the browser is sent the decoder"
    decode_toggle(at).set_value(False).run()  # the toggle itself still turns it off
    assert at.session_state[state.BROWSER_DECODE] is False and _component(at, "vae_onnx_runtime") is None


def test_webassembly_failure_says_why_and_server_decodes(tmp_path):
    run, _ = _run(tmp_path, seed=1)
    at = _explore(run)
    loader = _component(at, "vae_onnx_runtime")
    at = _explore(run, {"id": loader["id"], "state": "error", "reason": "this browser has no WebAssembly"}, at)
    assert "onnx" not in _component(at, "vae_onnx_runtime"), "a failed browser is not sent the bytes again"
    assert ("Decoding on the server: your browser could not run the decoder with onnxruntime-web (WebAssembly): "
            "this browser has no WebAssembly.") in _captions(at)
    assert _component(at, "vae_latent_sliders")["image"].startswith("data:image/png")


def test_export_failure_falls_back_with_one_sentence(tmp_path, monkeypatch):
    def refuse(module, z, path):
        raise RuntimeError("Unsupported operator aten::weird\nlong traceback text")

    monkeypatch.setattr(onnx_export, "_export", refuse)
    run, _ = _run(tmp_path, seed=2)
    at = _explore(run)
    assert _component(at, "vae_onnx_runtime") is None
    assert ("Decoding on the server: its decoder could not be exported to ONNX: torch.onnx.export could not "
            "export this decoder (Unsupported operator aten::weird).") in _captions(at)
    assert decode_toggle(at).disabled
    assert _component(at, "vae_latent_sliders")["image"].startswith("data:image/png")
    assert not list((tmp_path / "onnx").glob("*.onnx"))


def _torchscript(tmp_path: Path, seed: int) -> tuple[Path, VAE]:
    model = _conv_vae(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return export_torchscript(model, tmp_path / f"conv{seed}.ts"), model


def test_uploaded_model_is_exported_by_its_worker_never_here(tmp_path, monkeypatch):
    """A user's model: the graph comes from `RemoteModel.decoder_onnx()` (its sandbox worker); the server's
    own exporter is never called on it."""
    ts, model = _torchscript(tmp_path, seed=3)
    graph = onnx_export.export_decoder_onnx(model)  # what a worker would answer, made here from the eager twin
    calls = []

    def worker_export(self):
        calls.append(self)
        return graph

    def never(*a, **k):
        raise AssertionError("a user's model was exported in the server process")

    monkeypatch.setattr(RemoteModel, "decoder_onnx", worker_export, raising=False)
    monkeypatch.setattr(onnx_export, "decoder_onnx", never)
    monkeypatch.setattr(onnx_export, "export_decoder_onnx", never)
    at = _explore(ts)
    loader = _component(at, "vae_onnx_runtime")
    assert loader is not None and base64.b64decode(loader["onnx"]) == graph
    assert len(calls) == 1


@pytest.mark.parametrize("error, sentence", [
    (CheckpointError("The decoder uses an operation ONNX has no equivalent for."),
     "the decoder uses an operation ONNX has no equivalent for."),
    (RuntimeError("worker pipe closed\nlong traceback"), "RuntimeError: worker pipe closed."),
])
def test_uploaded_model_whose_worker_refuses_says_why(tmp_path, monkeypatch, error, sentence):
    ts, _ = _torchscript(tmp_path, seed=4)

    def refuse(self):
        raise error

    monkeypatch.setattr(RemoteModel, "decoder_onnx", refuse, raising=False)
    at = _explore(ts)
    assert _component(at, "vae_onnx_runtime") is None
    assert f"Decoding on the server: its decoder could not be exported to ONNX: {sentence}" in _captions(at)
    assert _component(at, "vae_latent_sliders")["image"].startswith("data:image/png")


def test_uploaded_model_without_a_worker_export_says_why(tmp_path, monkeypatch):
    if hasattr(RemoteModel, "decoder_onnx"):
        monkeypatch.delattr(RemoteModel, "decoder_onnx")
    ts, _ = _torchscript(tmp_path, seed=5)
    at = _explore(ts)
    assert _component(at, "vae_onnx_runtime") is None
    assert "Decoding on the server: this uploaded model's sandboxed worker cannot export its decoder to ONNX" \
        in _captions(at)


def test_strength_slider_gets_point_and_vector_for_the_graph(tmp_path):
    """The attribute vector's strength panel on the ONNX path: the browser is sent the point and the vector
    (z = point + s * vector, computed there) and runs the page's graph; both equal torch's, and the graph
    at that z equals torch's decode."""
    from vae_core.data import load_dataset
    from vae_core.metrics._common import encode_all

    run, model = _run(tmp_path, seed=6)
    at = _explore(run)
    loader = _component(at, "vae_onnx_runtime")
    graph = base64.b64decode(loader["onnx"])
    at = _explore(run, {"id": loader["id"], "state": "ready"}, at)
    point_box(at).set_value(3).run()
    selectbox(at, "From group A").set_value("label 1").run()
    selectbox(at, "To group B").set_value("label 7").run()
    assert not at.exception, [e.value for e in at.exception]
    panel = _component(at, "vae_strength_sliders")
    assert panel["decoder_id"] == loader["id"] and panel["image"] is None
    affine = panel["decoder"]["affine"]
    data = load_dataset("digits")
    mu = encode_all(model, data.x)[0].double().numpy()
    y = np.asarray(data.y)
    v = mu[y == 7].mean(0) - mu[y == 1].mean(0)
    np.testing.assert_allclose(affine["base"], mu[3], atol=1e-5)
    np.testing.assert_allclose(affine["vector"], v, atol=1e-5)
    for s in (0.0, 1.3):
        z = (np.asarray(affine["base"]) + s * np.asarray(affine["vector"]))[None]
        with torch.inference_mode():
            want = model.decode(torch.as_tensor(mu[3] + s * v, dtype=torch.float32)[None]).double().numpy()
        assert np.abs(_onnx_decode(graph, z) - want).max() < 1e-5
    # Another point: a new reference (so the browser repaints), the same session.
    point_box(at).set_value(11).run()
    again = _component(at, "vae_strength_sliders")
    assert again["decoder_id"] == loader["id"] and again["decoder"]["affine"]["key"] != affine["key"]
