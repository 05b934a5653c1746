"""A model and data are selected as a pair (explorer/selection.py), through the sidebar (AppTest):
model first, data first, an upload of each, a model with no fitting data, and the sidebar showing
the active pair after page switches. Never a deadlock, never a lost upload."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core.runs.checkpoints import save_run
from vae_core.config import ModelConfig, TrainConfig
from vae_core.models import VAE

from sidebar import npy_bytes as _npy, open_app as _app, text as _text, upload
from sidebar import data_picker, model_picker
from paths import ROOT  # the repository root (tests/paths.py)
from zips import run_zip

HOME = str(ROOT / "streamlit_app.py")
DEFAULT = str(ROOT / "runs" / "default")
PAGES = ["app_pages/1_Explore.py", "app_pages/3_Diagnose.py", "app_pages/2_Train.py", "app_pages/4_Blurriness.py",
         "app_pages/5_Compare.py"]


@pytest.fixture(autouse=True)
def uploads_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))


def _run_zip(tmp_path: Path, side: int, name: str) -> bytes:
    """A zipped run of a small MLP VAE for side x side images (random weights)."""
    torch.manual_seed(side)
    run = save_run(tmp_path / name, VAE(ModelConfig(input_shape=(1, side, side), latent_dim=2, hidden=(16,))),
                   TrainConfig(epochs=1), [{"epoch": 1}], dataset="digits")
    return run_zip(run, name)


def _upload(at: AppTest, key: str, name: str, data: bytes) -> AppTest:
    at = upload(at, key, name, data)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _shows_active_pair(at: AppTest) -> None:
    ss = at.session_state
    assert model_picker(at).value == ss["model_src"]
    assert data_picker(at).value == ss["data_src"]


def test_model_first_switches_the_data_to_one_that_fits(tmp_path):
    at = _upload(_app(), "upload_model", "digits_run.zip", _run_zip(tmp_path, 8, "d8"))
    assert at.session_state["data_src"] == "digits", _text(at.error)
    assert "Switched the data to digits (1 x 8 x 8)" in _text(at.info)
    assert not _text(at.error)
    _shows_active_pair(at)
    # back to the shipped run: the data follows it to mnist, in the same step
    model_picker(at).set_value(DEFAULT).run()
    assert (at.session_state["model_src"], at.session_state["data_src"]) == (DEFAULT, "mnist")
    _shows_active_pair(at)


def test_data_first_switches_to_a_model_that_takes_it(tmp_path):
    at = _upload(_app(), "upload_model", "digits_run.zip", _run_zip(tmp_path, 8, "d8"))
    eight = at.session_state["model_src"]
    model_picker(at).set_value(DEFAULT).run()
    at = _upload(at, "upload_data", "mine8.npy", _npy(np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)))
    assert at.session_state["model_src"] == eight and at.session_state["data_src"].endswith("mine8.npy")
    assert "Switched the model to" in _text(at.info) and not _text(at.error)
    _shows_active_pair(at)
    # picking mnist (data first) brings back a 28x28 model
    data_picker(at).set_value("mnist").run()
    assert (at.session_state["model_src"], at.session_state["data_src"]) == (DEFAULT, "mnist")


def test_a_rerun_the_browser_sent_before_an_upload_switched_the_pair_keeps_the_new_pair(tmp_path):
    """The browser reruns the page on its own (a polling progress bar, a component's report), sending the
    widget values it knows. One sent after an upload switched the pair, but before the page showing the
    new pair arrived, still holds the pickers on the old pair: its "change" picked the old pair back (the
    same crossing as the "Point" box's, tests/test_app_pages.py). The pickers get new keys instead."""
    at = _app()
    at.file_uploader(key="upload_model").set_value(("digits_run.zip", _run_zip(tmp_path, 8, "d8"),
                                                    "application/octet-stream"))
    sent = at._tree.get_widget_states()  # what the browser sends with the upload: pickers on the old pair
    at.run()
    pair = (at.session_state["model_src"], at.session_state["data_src"])
    assert pair[1] == "digits" and pair[0] != DEFAULT
    at._run(sent)  # the same values again: a rerun crossing the page that shows the new pair
    assert not at.exception, [e.value for e in at.exception]
    assert (at.session_state["model_src"], at.session_state["data_src"]) == pair
    _shows_active_pair(at)
    model_picker(at).set_value(DEFAULT).run()  # the pickers still pick
    assert (at.session_state["model_src"], at.session_state["data_src"]) == (DEFAULT, "mnist")
    _shows_active_pair(at)


def test_model_with_no_fitting_data_waits_for_an_upload(tmp_path):
    at = _upload(_app(), "upload_model", "r16.zip", _run_zip(tmp_path, 16, "r16"))
    r16 = at.session_state["model_src"]
    assert r16.endswith("run-" + Path(r16).name[4:]) and at.session_state["data_src"] is None
    assert "upload data of shape 1 x 16 x 16" in _text(at.info)
    assert not at.get("plotly_chart"), "no page draws the model before data arrives"
    at.switch_page("app_pages/3_Diagnose.py").run()
    assert not at.exception and "upload data of shape 1 x 16 x 16" in _text(at.info)
    at = _upload(at, "upload_data", "mine16.npy", _npy(np.random.default_rng(1).random((24, 16, 16)).astype(np.float32)))
    assert at.session_state["model_src"] == r16 and at.session_state["data_src"].endswith("mine16.npy")
    assert not _text(at.error)
    _shows_active_pair(at)


def test_refused_model_keeps_the_pair_and_lists_the_upload(tmp_path):
    at = _app()
    at = _upload(at, "upload_data", "mine28.npy", _npy(np.random.default_rng(2).random((20, 28, 28)).astype(np.float32)))
    assert at.session_state["data_src"].endswith("mine28.npy")
    at = _upload(at, "upload_model", "junk.ts", b"not a model at all")
    assert "Upload refused, nothing changed" in _text(at.error)
    assert at.session_state["model_src"] == DEFAULT and at.session_state["data_src"].endswith("mine28.npy")
    assert "mine28.npy" in at.session_state["uploaded_data"]


def test_sidebar_shows_the_active_pair_after_every_page_switch(tmp_path):
    at = _upload(_app(), "upload_model", "digits_run.zip", _run_zip(tmp_path, 8, "d8"))
    pair = (at.session_state["model_src"], at.session_state["data_src"])
    for i in range(12):
        at.switch_page(PAGES[i % len(PAGES)]).run()
        assert not at.exception, (PAGES[i % len(PAGES)], [e.value for e in at.exception])
        assert (at.session_state["model_src"], at.session_state["data_src"]) == pair
        _shows_active_pair(at)
