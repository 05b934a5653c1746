"""AppTest (headless) of the Diagnose page's theory panel (explorer/diagnose_ui.theory_ui): on a tiny
Gaussian run on the planted data, the predicted number of active dimensions is the count of the
data's covariance eigenvalues above s^2 computed here in numpy float64, the bars are the planted
spectrum within sampling error, and the model's count is the report's; on a Bernoulli run, one
sentence says why the theory does not apply."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from paths import ROOT
from settle import settle

TIMEOUT = 300
DIAGNOSE = str(ROOT / "app_pages" / "3_Diagnose.py")
SCALE = 0.1  # the run's declared Gaussian scale s: sigma^2 = 0.01


def _run(tmp_path_factory, likelihood: str) -> Path:
    """A tiny MLP VAE (6 latents) trained for a few epochs on 2,000 planted points."""
    from vae_core import VAE, ModelConfig, TrainConfig
    from vae_core.runs.checkpoints import save_run
    from vae_core.data import load_dataset
    from vae_core.train import fit

    data = load_dataset("planted", n=2000, seed=0)
    train, ev = data.split(0.2, 0)
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=6, hidden=(32,), likelihood=likelihood,
                            gaussian_scale=SCALE))
    cfg = TrainConfig(epochs=4, seed=0, lr=3e-3, record_codes=0)
    hist = fit(model, train, ev, cfg)
    return save_run(tmp_path_factory.mktemp("runs") / likelihood, model, cfg, hist.rows, dataset="planted",
                    extra={"n": 2000})


def _open(run: Path) -> AppTest:
    at = AppTest.from_file(DIAGNOSE, default_timeout=TIMEOUT)
    at.session_state["model_src"] = str(run)
    at.session_state["data_src"] = "planted"
    at = settle(at.run())
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _metric(at: AppTest, label: str) -> str:
    hits = [m.value for m in at.metric if m.label == label]
    assert len(hits) == 1, (label, [m.label for m in at.metric])
    return hits[0]


def test_theory_panel_on_a_gaussian_run_on_planted_data(tmp_path_factory):
    from vae_core.data import load_dataset

    run = _run(tmp_path_factory, "gaussian")
    at = _open(run)
    # independent: the data's covariance eigenvalues in float64 (all 10,000 points), counted above s^2
    data = load_dataset("planted")
    x = data.x.reshape(len(data), -1).numpy().astype(np.float64)
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False, ddof=0))[::-1]
    want = int(np.sum(lam > SCALE ** 2))
    assert want == 4  # 0.09, 0.06, 0.04, 0.025 above 0.01; the noise (0.002) below
    assert int(_metric(at, "Predicted active (linear theory)")) == want
    words = " ".join(m.value for m in at.markdown)
    assert f"The linear theory predicts **{want}** active dimensions" in words

    chart = [c for c in at.get("plotly_chart") if "eigenvalue lambda_i" in c.proto.spec]
    assert len(chart) == 1
    fig = json.loads(chart[0].proto.spec)
    bars = next(t for t in fig["data"] if t["type"] == "bar")
    y = np.asarray(_values(bars["y"]), dtype=float)
    assert len(y) == 30
    n = 5000  # the panel's spectrum uses a 5,000-point sample: 5 sd of a sample eigenvalue there
    np.testing.assert_allclose(y[:4], data.meta["spectrum"][:4], rtol=5 * math.sqrt(2 / n))
    line = next(t for t in fig["data"] if t.get("name", "").startswith("beta sigma^2"))
    assert _values(line["y"]) == [pytest.approx(SCALE ** 2)] * 2

    # the model's count: closed-form KL per dimension of the saved encoder on the run's 400 held-out
    # points (the report's points), counted at the project's 0.01 nats; the diamonds are those KLs
    from vae_core.runs.run_load import load_run

    model = load_run(run).model.eval()
    ev = load_dataset("planted", n=2000, seed=0).split(0.2, 0)[1]
    with torch.inference_mode():
        mu, logvar = model.encode(ev.x)
    kl = (0.5 * (mu.double() ** 2 + logvar.double().exp() - logvar.double() - 1.0)).mean(0).numpy()
    np.testing.assert_allclose(_shown_kl(fig), np.sort(kl)[::-1], rtol=1e-4, atol=1e-6)
    n_meas = int(np.sum(kl >= 0.01))
    assert int(_metric(at, "Active by KL (model)")) == n_meas
    case = "They agree" if n_meas == want else "fewer than predicted" if n_meas < want else "more than predicted"
    assert case in words, words
    caps = " ".join(c.value for c in at.caption)
    assert "declared scale" in caps and "beta = 1, from the run's config" in caps


def test_theory_panel_on_a_bernoulli_run_says_why_not(tmp_path_factory):
    at = _open(_run(tmp_path_factory, "bernoulli"))
    infos = " ".join(i.value for i in at.info)
    assert "does not apply directly to this Bernoulli decoder" in infos
    assert not [m for m in at.metric if m.label == "Predicted active (linear theory)"]


def _values(v):
    """A plotly trace's array as a list (plotly writes numpy arrays as base64 'bdata')."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).tolist()
    return list(v)


def _shown_kl(fig: dict) -> np.ndarray:
    tr = next(t for t in fig["data"] if t.get("name") == "measured KL (sorted)")
    return np.asarray(_values(tr["y"]), dtype=float)
