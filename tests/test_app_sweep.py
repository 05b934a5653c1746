"""AppTest for β sweeps in the app (explorer/sweep_ui.py): the Train page's "β sweep" option trains one
run per β into runs/sweep-NAME/ with sweep.json, and Compare draws a sweep's cascade, each latent's KL
against β equal to a direct recomputation on the run's held-out points."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from settle import settle

from explorer import state
from paths import ROOT

TRAIN = str(ROOT / "app_pages" / "2_Train.py")
COMPARE = str(ROOT / "app_pages" / "5_Compare.py")
TIMEOUT = 120
TINY = ["--data", "planted", "--n", "200", "--hidden", "8", "--latent-dim", "3", "--epochs", "1",
        "--batch-size", "64", "--record-codes", "0", "--likelihood", "gaussian", "--gaussian-scale", "0.087",
        "--quiet"]


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _kl_by_hand(run: Path) -> np.ndarray:
    """KL per latent on the run's held-out points (all of them: fewer than measure_run's cap), by torch."""
    from vae_core.data import load_dataset
    from vae_core.runs.run_load import eval_split, load_run

    r, split = load_run(run), eval_split(run)
    _, ev = load_dataset(split.dataset, n=split.n, seed=split.seed).split(split.eval_fraction, split.seed)
    with torch.no_grad():
        mu, lv = r.model.encode(ev.x)
    mu, lv = mu.double(), lv.double()
    return (0.5 * (mu ** 2 + lv.exp() - lv - 1)).mean(0).numpy()


def test_compare_draws_a_sweeps_cascade(runs_dir):
    from vae_core.cli import main

    assert main(["sweep", "--beta", "1,4", "--out", str(runs_dir / "sweep-t"), *TINY]) == 0
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.session_state[state.DATA_SRC] = "planted"
    _ok(settle(at.run()))
    assert at.selectbox(key="sweep_pick").options == ["sweep-t"]
    charts = {c.proto.id: c for c in at.get("plotly_chart")}
    fig = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "sweep_kl_beta" in c.proto.id)
    lines = [t for t in fig["data"] if t.get("name", "").startswith("z")]
    assert [t["name"] for t in lines] == ["z0", "z1", "z2"] and fig["layout"]["xaxis"]["type"] == "log"
    want = np.stack([_kl_by_hand(runs_dir / "sweep-t" / d) for d in ("beta-1", "beta-4")])  # (B, D)
    for j, t in enumerate(lines):
        assert t["x"] == [1.0, 4.0]
        np.testing.assert_allclose(t["y"], np.maximum(want[:, j], 1e-4), rtol=1e-4)
    assert any("sweep_active" in k for k in charts)
    table = next(df.value for df in at.dataframe if "eigenvalue λ" in df.value.columns)
    assert "collapses from β (measured)" in table.columns


def test_train_page_queues_a_beta_sweep(runs_dir):
    from explorer import sweep_ui

    at = _ok(AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run())
    at.toggle(key=state.SWEEP_ON).set_value(True)
    _ok(at.run())
    at.text_input(key=state.SWEEP_BETAS).set_value("2, 0.5")
    at.selectbox(key="tr_data").set_value("planted")
    _ok(at.run())
    at.text_input(key="tr_name").set_value("one")
    at.number_input(key="tr_epochs").set_value(1)
    at.number_input(key="tr_latent_dim").set_value(2)
    at.text_input(key="tr_hidden").set_value("8")
    next(b for b in at.button if b.label == "Train").click()  # the form's button: a sweep, the option being on
    _ok(at.run())
    assert not at.error, [e.value for e in at.error]
    job = sweep_ui.sweeps()[at.session_state[state.SWEEP_JOB]]
    job._thread.join(timeout=300)
    assert job.finished and job.status == {0.5: "done", 2.0: "done"}, (job.status, job.message)
    out = runs_dir / "sweep-one"
    assert job.out == out, job.out
    doc = json.loads((out / "sweep.json").read_text())
    assert [(r["dir"], r["status"]) for r in doc["runs"]] == [("beta-0.5", "done"), ("beta-2", "done")]
    betas = [json.loads((out / r["dir"] / "config.json").read_text())["train"]["beta"] for r in doc["runs"]]
    assert betas == [0.5, 2.0]
