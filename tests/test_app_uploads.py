"""Uploads through the sidebar (AppTest): good files become active, bad ones are refused with the
reason while the app keeps what it had, a pickle never runs, and sessions don't see each other's."""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core.runs.model_files import export_torchscript
from vae_core.runs.run_load import load_run
from vae_core.runs.checkpoints import run_zip

from sidebar import npy_bytes as _npy, open_app as _app, text, upload as _upload
from sidebar import model_picker
from paths import ROOT  # the repository root (tests/paths.py)

HOME = str(ROOT / "streamlit_app.py")
DEFAULT = ROOT / "runs" / "default"


@pytest.fixture(autouse=True)
def uploads_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))


def _errors(at: AppTest) -> str:
    return text(at.error)


def test_torchscript_upload_becomes_active(tmp_path):
    ts = export_torchscript(load_run(DEFAULT).model, tmp_path / "mine.ts")
    at = _upload(_app(), "upload_model", "mine.ts", ts.read_bytes())
    assert not at.exception and not _errors(at), _errors(at)
    assert at.session_state["model_src"].endswith(".ts")
    assert "mine.ts (upload)" in " ".join(m.value for m in at.markdown)


def test_pickle_upload_refused_never_run_state_kept(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    buf = io.BytesIO()
    torch.save({"state": Evil()}, buf)
    at = _app()
    before = at.session_state["model_src"]
    at = _upload(at, "upload_model", "model.pt", buf.getvalue())
    assert "pickle" in _errors(at) and "Upload refused" in _errors(at)
    assert at.session_state["model_src"] == before
    assert not marker.exists()
    # the raw pickle module's format too
    at = _upload(at, "upload_model", "model.pth", pickle.dumps({"w": Evil()}))
    assert _errors(at) and not marker.exists()
    assert at.session_state["model_src"] == before


def test_bad_data_upload_names_the_problem_and_keeps_data():
    a = np.random.default_rng(0).random((20, 28, 28)).astype(np.float32)
    a[3, 4, 5] = np.nan
    at = _app()
    at = _upload(at, "upload_data", "bad.npy", _npy(a))
    assert "NaN" in _errors(at)
    assert at.session_state["data_src"] == "mnist"
    assert not at.exception


def test_good_data_upload_becomes_active_and_mismatch_is_explained():
    rng = np.random.default_rng(0)
    at = _app()
    at = _upload(at, "upload_data", "mine.npy", _npy((rng.random((30, 28, 28)) * 255).astype(np.uint8)))
    assert not _errors(at), _errors(at)
    assert at.session_state["data_src"].endswith(".npy")
    assert "30 images of 1x28x28" in " ".join(m.value for m in at.markdown)
    at = _upload(at, "upload_data", "small.npy", _npy(rng.random((30, 8, 8)).astype(np.float32)))
    assert "takes small.npy (upload) (1 x 8 x 8 images; runs/default takes 1 x 28 x 28)" in _errors(at)
    assert at.session_state["data_src"].endswith(".npy") and "small" not in at.session_state["data_src"]
    assert "small.npy" in at.session_state["uploaded_data"], "a refused pairing never loses the upload"


def test_zipped_run_upload(tmp_path):
    at = _upload(_app(), "upload_model", "default.zip", run_zip(DEFAULT))
    assert not _errors(at), _errors(at)
    src = Path(at.session_state["model_src"])
    assert src.is_dir() and src.parent == tmp_path / "uploads" / "runs"


def test_one_sessions_upload_is_invisible_to_another(tmp_path):
    ts = export_torchscript(load_run(DEFAULT).model, tmp_path / "private.ts")
    a, b = _app(), _app()
    a = _upload(a, "upload_model", "private.ts", ts.read_bytes())
    assert a.session_state["model_src"].endswith(".ts")
    b.run()
    assert b.session_state["model_src"] == str(DEFAULT)
    assert not any(str(o).endswith(".ts") for o in model_picker(b).options)


def test_refusal_gives_way_once_the_missing_model_is_trained(tmp_path, monkeypatch):
    """Issue 20, item 7: data refused for want of a model left the sidebar's box red on every page,
    even after that model had been trained; it gives way to a note naming the model."""
    import shutil

    from explorer import state
    from vae_core.runs.checkpoints import save_run
    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.models import VAE

    runs = tmp_path / "runs"
    shutil.copytree(DEFAULT, runs / "default")
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(runs))
    monkeypatch.setattr(state, "RUNS_DIR", runs)
    rng = np.random.default_rng(0)
    at = _upload(_app(), "upload_data", "small.npy", _npy(rng.random((30, 8, 8)).astype(np.float32)))
    assert "no model here takes small.npy" in _errors(at)
    at.run()
    assert "no model here takes small.npy" in _errors(at), "the refusal stands while no model takes it"
    # the missing model is trained (here saved directly: what the Train page's job leaves under runs/)
    save_run(runs / "tiny8", VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))),
             TrainConfig(epochs=1), [], dataset="digits")
    at.run()
    assert not _errors(at), _errors(at)
    assert any("runs/tiny8 takes small.npy" in i.value for i in at.sidebar.info)
