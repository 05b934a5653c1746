"""AppTest for the Train and Compare pages, on a temporary runs dir (VAE_EXPLORER_RUNS)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from settle import settle

from explorer import state
from vae_core.runs.checkpoints import save_run
from vae_core.runs.run_load import load_model
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import load_dataset
from vae_core.metrics import diagnose
from vae_core.models import VAE
from vae_core.train import fit
from paths import ROOT  # the repository root (tests/paths.py)
from sidebar import model_picker  # tests/sidebar.py

APP = str(ROOT / "streamlit_app.py")
TRAIN = str(ROOT / "app_pages" / "2_Train.py")
COMPARE = str(ROOT / "app_pages" / "5_Compare.py")
TIMEOUT = 120


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _train_button(at: AppTest):
    return next(b for b in at.button if b.label == "Train")


def _errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def test_train_page_opens(runs_dir):
    at = _ok(AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run())
    assert at.title[0].value == "Train a VAE"
    assert not _train_button(at).disabled
    assert at.selectbox(key="tr_data").options[:3] == ["digits", "mnist", "sprites"]
    assert at.selectbox(key="tr_kl_schedule").options == ["constant", "linear", "cyclical"]
    assert all(w.help for w in at.number_input), "every option explains itself"
    text = " ".join(m.value for m in at.markdown)
    assert "beta" in text and "Free bits" in text and "annealing" in text


def test_bad_values_give_a_clear_error_and_keep_the_form(runs_dir):
    at = _ok(AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run())
    at.selectbox(key="tr_data").set_value("digits")
    at.text_input(key="tr_hidden").set_value("abc")
    at.number_input(key="tr_latent_dim").set_value(3)
    at.number_input(key="tr_beta").set_value(4.0)
    _ok(_train_button(at).click().run())
    assert "hidden" in _errors(at) and "'abc'" in _errors(at)
    assert at.text_input(key="tr_hidden").value == "abc"
    assert at.number_input(key="tr_latent_dim").value == 3 and at.number_input(key="tr_beta").value == 4.0
    assert at.selectbox(key="tr_data").value == "digits"

    at.text_input(key="tr_hidden").set_value("32")
    at.text_input(key="tr_name").set_value("a/b")
    _ok(_train_button(at).click().run())
    assert "run name" in _errors(at) and "'a/b'" in _errors(at)
    assert at.text_input(key="tr_name").value == "a/b" and at.text_input(key="tr_hidden").value == "32"
    assert "train_job_id" not in at.session_state, "no job was started"
    assert not any(runs_dir.iterdir()), "nothing was started"


def test_short_training_run_ends_in_the_picker_and_opens_in_explore(runs_dir):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)  # the whole app: switch_page needs st.navigation
    _ok(at.switch_page("app_pages/2_Train.py").run())
    at.selectbox(key="tr_data").set_value("digits")
    at.number_input(key="tr_epochs").set_value(2)
    at.number_input(key="tr_latent_dim").set_value(2)
    at.text_input(key="tr_hidden").set_value("32")
    at.text_input(key="tr_name").set_value("apptest")
    _ok(_train_button(at).click().run())
    assert not at.error, _errors(at)
    assert at.session_state["train_job_id"]
    assert at.text_input(key="tr_name").value != "apptest", "a fresh name is suggested for the next run"
    deadline = time.monotonic() + 180
    while not at.success:
        assert not at.error and not at.warning, (_errors(at), [w.value for w in at.warning])
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.5)
        _ok(at.run())
    assert "runs/apptest" in at.success[0].value and "2 epochs" in at.success[0].value
    assert "runs/apptest" in model_picker(at).options
    assert (runs_dir / "apptest" / "model.safetensors").is_file()
    assert any(b.label == "Open in Explore" for b in at.button)
    assert not _train_button(at).disabled
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 3, "loss curves and the KL heatmap stay shown, with the replay of the recorded codes"
    from explorer.epochs_ui import STEPS

    names = [f["name"] for f in charts[2]["frames"]]  # one frame per epoch from 0, STEPS - 1 between each two
    assert names[::STEPS] == ["0", "1", "2"] and len(names) == 1 + 2 * STEPS, "the replay: one frame per epoch"
    # issue 20, item 3: the "Run to replay" picker stays after a training, on the run just saved,
    # and any other run can be replayed there
    assert at.selectbox(key="train_replay_run").value == str(runs_dir / "apptest")
    _tiny_run(runs_dir, "other", beta=1.0)
    _ok(at.run())
    assert at.selectbox(key="train_replay_run").value == str(runs_dir / "apptest"), "moved to the new run once"
    _ok(at.selectbox(key="train_replay_run").set_value(str(runs_dir / "other")).run())
    assert at.selectbox(key="train_replay_run").value == str(runs_dir / "other"), "the pick is kept"
    assert any("no recorded training" in i.value for i in at.info), "the other run's replay panel is shown"
    _ok(at.run())
    assert at.selectbox(key="train_replay_run").value == str(runs_dir / "other")

    _ok(next(b for b in at.button if b.label == "Open in Explore").click().run())
    assert at.title[0].value == "Explore the latent space"
    assert at.session_state[state.MODEL_SRC] == str(runs_dir / "apptest")
    assert at.session_state[state.DATA_SRC] == "digits"
    assert model_picker(at).value == str(runs_dir / "apptest")


def _tiny_run(runs: Path, name: str, beta: float) -> Path:
    data = load_dataset("digits")
    train, ev = data.split(0.2, 0)
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=data.shape, latent_dim=2, hidden=(32,)))
    cfg = TrainConfig(epochs=2, beta=beta)
    return save_run(runs / name, model, cfg, fit(model, train, ev, cfg).rows, dataset="digits")


def test_compare_shows_a_row_per_run_with_its_report(runs_dir):
    b4, b1 = _tiny_run(runs_dir, "beta4", 4.0), _tiny_run(runs_dir, "beta1", 1.0)
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.session_state[state.MODEL_SRC] = str(b4)
    at.session_state[state.DATA_SRC] = "digits"
    _ok(settle(at.run()))
    assert set(at.multiselect(key="cmp_runs").value) == {str(b1), str(b4)}
    df = at.dataframe[0].value
    assert list(df["run"]) == ["runs/beta1", "runs/beta4 (active)"], "sorted by beta"
    assert list(df["beta"]) == [1.0, 4.0]
    data = load_dataset("digits")
    for path, elbo in zip((b1, b4), df["ELBO"]):
        report = diagnose(load_model(path), data, n_points=1000, iwae_k=100, seed=0)
        assert elbo == pytest.approx(report.elbo, rel=1e-6)
    assert len(at.get("plotly_chart")) == 4  # KL per dim, curves, the two linked maps
    captions = " ".join(c.value for c in at.caption)
    assert "same 8 codes" in captions
    assert len([i for el in at.get("image") for i in el.captions if "prior samples" in i]) == 2


def test_compare_lists_runs_that_do_not_fit_as_skipped(runs_dir):
    b1, b4 = _tiny_run(runs_dir, "beta1", 1.0), _tiny_run(runs_dir, "beta4", 4.0)
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.session_state[state.MODEL_SRC] = str(ROOT / "runs" / "default")  # 28x28: does not fit digits
    at.session_state[state.DATA_SRC] = "digits"
    at.session_state["cmp_runs"] = [str(b1), str(b4), str(ROOT / "runs" / "default")]
    _ok(settle(at.run()))
    warning = " ".join(w.value for w in at.warning)
    assert "Skipped 1" in warning and "1x28x28" in warning
    assert len(at.dataframe[0].value) == 2


def test_form_shows_only_fields_that_apply_two_to_a_row(runs_dir):
    """Issue 20, item 7: conv channels showed for an MLP, the schedules' settings for a constant beta,
    and four fields side by side in the narrow column clipped their labels."""
    at = _ok(AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run())

    def shown() -> set[str]:
        return {w.key for kind in ("text_input", "number_input", "checkbox", "selectbox")
                for w in at.get(kind) if w.key and w.key.startswith("tr_")}

    assert {"tr_hidden", "tr_latent_dim", "tr_beta"} <= shown()
    assert not {"tr_conv_channels", "tr_gaussian_scale", "tr_learn_scale", "tr_warmup_fraction",
                "tr_cycles"} & shown()
    _ok(at.selectbox(key="tr_arch").set_value("conv").run())
    assert "tr_conv_channels" in shown()
    _ok(at.selectbox(key="tr_likelihood").set_value("gaussian").run())
    assert {"tr_gaussian_scale", "tr_learn_scale"} <= shown()
    _ok(at.selectbox(key="tr_kl_schedule").set_value("cyclical").run())
    assert {"tr_cycles", "tr_ramp_fraction"} <= shown() and "tr_warmup_fraction" not in shown()
    _ok(at.selectbox(key="tr_kl_schedule").set_value("linear").run())
    assert {"tr_warmup_fraction", "tr_beta_start"} <= shown() and "tr_cycles" not in shown()
    for block in at.get("horizontal_block"):  # every row of the settings: at most two side by side
        assert len(block.children) <= 2


def _job_page():
    import streamlit as st

    from explorer import state, train_ui

    state.init()
    runs = st.session_state["page_runs"] = st.session_state.get("page_runs", 0) + 1
    train_ui.job_ui(running=runs == 1)  # the first run's form was drawn with the job running


def test_a_job_seen_running_that_ended_before_its_panel_reruns_the_page_at_once(runs_dir):
    """The Train page reads once whether its job runs, for the form (Train disabled) and the progress
    panel alike. A job that ends between that read and the panel is drawn live, and the live panel,
    finding it ended, reruns the page at once: the page never shows the result beside a Train button
    still disabled with nothing left to rerun it (1 fresh-clone run, when the page read it twice)."""
    from explorer import training

    job = training.TrainingJob(training.TrainSpec(data="digits", name="ended"), runs_dir)
    job.status = "cancelled"  # ended (as `poll` settles it) after the form was drawn
    training.registry().jobs[job.id] = job
    try:
        at = AppTest.from_function(_job_page, default_timeout=TIMEOUT)
        at.session_state[state.TRAIN_JOB] = job.id
        _ok(at.run())
        assert at.session_state["page_runs"] == 2, "the live panel reran the page"
        assert any("runs/ended was cancelled" in i.value for i in at.info), [i.value for i in at.info]
    finally:
        training.registry().jobs.pop(job.id, None)
        job.cleanup()
