"""AppTest: on data with factors (sprites) the Diagnose page shows InfoM, InfoC, InfoE and DCI's D, C, I
beside MIG, each the report's value ± its standard error (explorer/disentanglement_ui.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from settle import settle

from explorer import state
from explorer.disentanglement_ui import SCORES, score_text
from paths import ROOT

DIAGNOSE = str(ROOT / "app_pages" / "3_Diagnose.py")


def test_score_text():
    assert score_text(0.81234, 0.0214) == "0.812 ± 0.021"
    assert score_text(0.5, None) == "0.500" and score_text(None, 0.1) == "n/a"


@pytest.fixture
def sprites_run(tmp_path, monkeypatch) -> Path:
    from vae_core import VAE, ModelConfig, TrainConfig
    from vae_core.runs.checkpoints import save_run
    from vae_core.data import load_dataset
    from vae_core.train import fit

    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(runs))
    monkeypatch.setattr(state, "RUNS_DIR", runs)
    data = load_dataset("sprites", n=5000)
    train, ev = data.split(0.2, 0)
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=data.shape, latent_dim=4, hidden=(32,)))
    cfg = TrainConfig(epochs=1, seed=0, record_codes=0)
    save_run(runs / "sprites", model, cfg, fit(model, train.subset(np.arange(500)), None, cfg).rows,
             dataset="sprites", extra={"n": 5000})
    return runs / "sprites"


def test_diagnose_shows_infomec_and_dci_beside_mig(sprites_run):
    at = AppTest.from_file(DIAGNOSE, default_timeout=300)
    at.session_state[state.MODEL_SRC] = str(sprites_run)
    at.session_state[state.DATA_SRC] = "sprites"
    at = settle(at.run())
    assert not at.exception, [e.value for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert "MIG" in shown
    for key, name, _ in SCORES:
        assert name in shown, (name, list(shown))
    assert shown["DCI I"] != "n/a" and shown["InfoE"] != "n/a", shown  # defined on any code with factors
    # each is a number in [0, 1] with its standard error, or n/a where undefined
    for _, name, _ in SCORES:
        v = shown[name]
        assert v == "n/a" or (0 <= float(v.split(" ± ")[0]) <= 1 and " ± " in v), (name, v)
