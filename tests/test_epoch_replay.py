"""Issue 12, item 5: the latent space learning, recorded by `train --record-codes` and replayed.

The recorded codes are checked against re-encoding the saved sample with weights known
independently: the final epoch with the saved model, epoch 0 with a VAE built from the same seed as
the CLI builds it. The KL per dimension against numpy's closed form. Old runs load unchanged.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import cli
from vae_core.runs.checkpoints import extract_run_zip, save_run
from vae_core.runs.run_load import eval_split, load_model, load_run, read_config
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import load_dataset
from vae_core.runs.epoch_codes import FILE_NAME, CodeRecorder, load_epoch_codes
from vae_core.runs.checkpoints import run_zip
from vae_core.metrics.pipeline.heldout import eval_points
from vae_core.models import VAE
from paths import ROOT as REPO  # the repository root (tests/paths.py)

EPOCHS = 3


def _train(out: Path, *extra: str) -> None:
    rc = cli.main(["train", "--data", "digits", "--epochs", str(EPOCHS), "--latent-dim", "3", "--hidden", "32",
                   "--seed", "7", "--quiet", "--device", "cpu", "--out", str(out), *extra])
    assert rc == 0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "run"
    _train(out, "--record-codes", "60")
    return out


def _sample(run: Path, indices: np.ndarray) -> torch.Tensor:
    """The recorded points, rebuilt from the run's own split (not from anything the file says but the rows)."""
    ev = eval_points(load_dataset("digits"), None, *eval_split(run))
    return ev.x[torch.from_numpy(indices)]


def _kl_numpy(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean over points of 0.5 (mu^2 + sigma^2 - log sigma^2 - 1), per dimension, in float64."""
    mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
    return (0.5 * (mu ** 2 + np.exp(logvar) - logvar - 1)).mean(0)


def test_one_frame_per_epoch_from_0(recorded):
    codes = load_epoch_codes(recorded)
    assert codes is not None
    assert codes.epochs.tolist() == list(range(EPOCHS + 1))  # epoch 0 = the initial weights, then every epoch
    assert codes.mu.shape == (EPOCHS + 1, 60, 3) and codes.kl_per_dim.shape == (EPOCHS + 1, 3)
    assert np.unique(codes.indices).size == 60
    assert read_config(recorded)["train"]["record_codes"] == 60


def test_last_epoch_equals_reencoding_with_saved_model(recorded):
    codes = load_epoch_codes(recorded)
    model = load_model(recorded)
    with torch.inference_mode():
        mu, logvar = model.encode(_sample(recorded, codes.indices))
    np.testing.assert_allclose(codes.mu[-1], mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(codes.kl_per_dim[-1], _kl_numpy(mu.numpy(), logvar.numpy()), rtol=1e-4, atol=1e-7)


def test_epoch_0_equals_the_initial_weights_of_the_seed(recorded):
    codes = load_epoch_codes(recorded)
    cfg = read_config(recorded)
    torch.manual_seed(cfg["train"]["seed"])  # as `train` seeds before building the model
    model = VAE(ModelConfig.from_dict({**cfg["model"], "input_shape": tuple(cfg["model"]["input_shape"])})).eval()
    with torch.inference_mode():
        mu, logvar = model.encode(_sample(recorded, codes.indices))
    np.testing.assert_allclose(codes.mu[0], mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(codes.kl_per_dim[0], _kl_numpy(mu.numpy(), logvar.numpy()), rtol=1e-4, atol=1e-7)
    assert not np.allclose(codes.mu[0], codes.mu[-1], atol=1e-3)  # training moved them


def test_recording_changes_nothing_in_training(recorded, tmp_path):
    """The same seed without recording gives the same weights: the recorder draws no random numbers."""
    _train(tmp_path / "plain", "--record-codes", "0")
    assert not (tmp_path / "plain" / FILE_NAME).exists()
    a, b = load_model(recorded).state_dict(), load_model(tmp_path / "plain").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_old_run_without_the_file_loads_unchanged(tmp_path):
    old = tmp_path / "default"
    shutil.copytree(REPO / "runs" / "default", old)
    (old / FILE_NAME).unlink(missing_ok=True)
    assert load_epoch_codes(old) is None
    run = load_run(old)
    assert run.model.latent_dim == run.config["model"]["latent_dim"] and len(run.history) > 0
    assert TrainConfig.from_dict({k: v for k, v in read_config(old)["train"].items() if k != "record_codes"}
                                 ).record_codes == TrainConfig().record_codes


def test_the_file_joins_the_atomic_write_and_the_zip(recorded, tmp_path):
    """save_run's extra files are written inside its temporary directory; a zipped run keeps them."""
    seen: list[Path] = []
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,)))
    x = torch.rand(5, 1, 8, 8)
    rec = CodeRecorder(model, x, np.arange(5))
    rec.record(0)

    def write(d: Path) -> Path:
        seen.append(d)
        assert not (tmp_path / "r").exists()  # the run is not visible while its files are written
        return rec.save(d)

    save_run(tmp_path / "r", model, TrainConfig(epochs=1), [{"epoch": 1}], dataset="digits", extra_files=(write,))
    assert seen and seen[0] != tmp_path / "r" and seen[0].parent == tmp_path
    assert load_epoch_codes(tmp_path / "r").mu.shape == (1, 5, 2)
    zpath = tmp_path / "run.zip"
    zpath.write_bytes(run_zip(recorded))
    assert FILE_NAME in {Path(n).name for n in zipfile.ZipFile(zpath).namelist()}
    unpacked = extract_run_zip(zpath, tmp_path / "up")
    np.testing.assert_array_equal(load_epoch_codes(unpacked).mu, load_epoch_codes(recorded).mu)


def test_recorder_rejects_a_mismatched_sample():
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,)))
    with pytest.raises(ValueError, match="4 images but indices name 5"):
        CodeRecorder(model, torch.rand(4, 1, 8, 8), np.arange(5))


# --- the replay panel (explorer/epochs_ui.py), on the Train page ---------------------------------------

def _arr(v) -> np.ndarray:
    """A plotly JSON array: a list, or plotly 6's base64 typed array {"dtype", "bdata"}."""
    if isinstance(v, dict):
        import base64
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _frame_points(frame: dict, s: int) -> np.ndarray:
    """(S, 2) coordinates of a frame's scatter traces, each point put back at its sample position."""
    xy = np.full((s, 2), np.nan)
    for tr in frame["data"]:
        if tr.get("mode") == "markers":
            idx = _arr(tr["customdata"]).astype(int)
            xy[idx, 0], xy[idx, 1] = _arr(tr["x"]), _arr(tr["y"])
    return xy


def _heat(trace: dict, field: str) -> np.ndarray:
    """A heatmap trace's z or customdata as a (D, E) float array."""
    v = trace[field]
    return _arr(v).reshape(3, EPOCHS + 1).astype(float) if isinstance(v, dict) else np.asarray(v, float)


def _train_page(runs: Path, monkeypatch):
    import json

    from streamlit.testing.v1 import AppTest

    from explorer import state

    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(runs))
    monkeypatch.setattr(state, "RUNS_DIR", runs)
    at = AppTest.from_file(str(REPO / "app_pages" / "2_Train.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at, [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_train_page_replays_one_frame_per_epoch_matching_reencoding(recorded, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(recorded, runs / "recorded")
    at, specs = _train_page(runs, monkeypatch)
    spec = specs[0]
    codes = load_epoch_codes(recorded)
    # one frame per epoch, named by it, with STEPS - 1 interpolated frames before each epoch after the first
    from explorer.epochs_ui import STEPS

    names = [f["name"] for f in spec["frames"]]
    assert len(names) == 1 + EPOCHS * STEPS
    assert names[::STEPS] == [str(e) for e in range(EPOCHS + 1)]
    by_name = {f["name"]: f for f in spec["frames"]}
    assert [st["label"] for st in spec["layout"]["sliders"][0]["steps"]] == [str(e) for e in range(EPOCHS + 1)]
    assert [b["label"] for b in spec["layout"]["updatemenus"][0]["buttons"]] == ["Play", "Pause"]
    # Independent reference: re-encode the sample with the saved model and with the seed's initial
    # weights, and project both on numpy's SVD of the final codes (PCA signs matched per axis).
    x = _sample(recorded, codes.indices)
    cfg = read_config(recorded)
    torch.manual_seed(cfg["train"]["seed"])
    first = VAE(ModelConfig.from_dict({**cfg["model"], "input_shape": tuple(cfg["model"]["input_shape"])})).eval()
    with torch.inference_mode():
        mu_last = load_model(recorded).encode(x)[0].double().numpy()
        mu_first = first.encode(x)[0].double().numpy()
    mean = mu_last.mean(0)
    axes = np.linalg.svd(mu_last - mean, full_matrices=False)[2][:2]  # (2, D)
    s = codes.indices.size
    got_last, got_first = _frame_points(by_name[str(EPOCHS)], s), _frame_points(by_name["0"], s)
    ref_last = (mu_last - mean) @ axes.T
    signs = np.sign((got_last * ref_last).sum(0))
    np.testing.assert_allclose(got_last, ref_last * signs, rtol=1e-4, atol=1e-4)
    # The first epoch is first turned onto the last (scipy's orthogonal Procrustes: rotation/reflection and
    # shift, no scale), then projected on the same axes.
    from scipy.linalg import orthogonal_procrustes

    r, _ = orthogonal_procrustes(mu_first - mu_first.mean(0), mu_last - mean)
    first_aligned = (mu_first - mu_first.mean(0)) @ r + mean
    np.testing.assert_allclose(got_first, ((first_aligned - mean) @ axes.T) * signs, rtol=1e-4, atol=1e-4)
    # An in-between frame is on the straight line between its two epochs: the first after epoch 0 is 1/STEPS
    # of the way to epoch 1
    step = _frame_points(spec["frames"][1], s)
    t = 1 / STEPS
    np.testing.assert_allclose(step, (1 - t) * got_first + t * _frame_points(by_name["1"], s), rtol=1e-4, atol=1e-4)
    # Coloured by the sample's labels, from the run's own split.
    ev = eval_points(load_dataset("digits"), None, *eval_split(recorded))
    for tr in by_name[str(EPOCHS)]["data"]:
        if tr.get("mode") == "markers":
            idx = _arr(tr["customdata"]).astype(int)
            assert {f"label {v}" for v in ev.y[codes.indices[idx]]} == {tr["name"]}
    # Issue 20, item 7: the labels' colours of every page (the map's, the pad's), not the theme's
    # colours (whose tenth, label 9, is a near-white grey)
    from explorer import figures
    from explorer.components import pad

    colours = {tr["name"]: tr["marker"].get("color") for tr in spec["data"] if tr.get("mode") == "markers"}
    assert colours and all(c == figures.label_color(int(n.split()[-1])) for n, c in colours.items()), colours
    assert figures.label_color(9) == pad.PALETTE[9] == "#17becf"
    assert "#7f7f7f" not in figures.PALETTE, "no grey label: a selection greys the points outside it"
    # The KL heatmap beside it: dims x epochs, the file's values.
    heat = next(tr for tr in spec["data"] if tr["type"] == "heatmap")
    np.testing.assert_allclose(_heat(heat, "customdata"), codes.kl_per_dim.T, rtol=1e-6)
    np.testing.assert_allclose(_heat(heat, "z"), np.log10(np.clip(codes.kl_per_dim.T, 1e-3, 10)), rtol=1e-6)
    assert any("press play" in c.value for c in at.caption)


def test_a_run_without_the_file_says_how_to_record(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(REPO / "runs" / "default", runs / "default")
    (runs / "default" / FILE_NAME).unlink(missing_ok=True)
    at, specs = _train_page(runs, monkeypatch)
    assert specs == []
    assert any("--record-codes" in i.value and "Record codes" in i.value for i in at.info)


def test_the_option_bound_is_the_files_sample_limit():
    """config.py cannot import epoch_codes (a cycle through checkpoints): its bound is written twice."""
    from dataclasses import fields

    from vae_core.runs.epoch_codes import MAX_SAMPLE

    f = next(f for f in fields(TrainConfig) if f.name == "record_codes")
    assert f.metadata["hi"] == MAX_SAMPLE and f.metadata["lo"] == 0
    with pytest.raises(ValueError, match="record_codes"):
        TrainConfig(record_codes=MAX_SAMPLE + 1)


def test_kl_heatmap_has_one_log_scale_for_every_run(recorded, tmp_path, monkeypatch):
    """Issue 20, item 5: a collapsed run (every dimension < 0.12 nats) is drawn dark, not as bright
    as a run using its dimensions: the colour range is the same for both runs, on a log scale."""
    from vae_core.runs.epoch_codes import EpochCodes

    runs = tmp_path / "runs"
    shutil.copytree(recorded, runs / "a-used")
    shutil.copytree(recorded, runs / "b-collapsed")
    codes = load_epoch_codes(recorded)
    big = codes.kl_per_dim * (3.0 / codes.kl_per_dim.max())  # a dimension carries 3 nats, as at beta = 1
    small = codes.kl_per_dim * (0.1 / codes.kl_per_dim.max())  # every dimension < 0.12 nats: collapsed
    EpochCodes.from_arrays(codes.indices, codes.epochs, codes.mu, big).save(runs / "a-used")
    EpochCodes.from_arrays(codes.indices, codes.epochs, codes.mu, small).save(runs / "b-collapsed")
    at, _ = _train_page(runs, monkeypatch)

    def heat(run: str) -> dict:
        import json

        at.selectbox(key="train_replay_run").set_value(str(runs / run)).run()
        assert not at.exception, [e.value for e in at.exception]
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        return next(tr for tr in spec["data"] if tr["type"] == "heatmap")

    used, collapsed = heat("a-used"), heat("b-collapsed")
    assert used.get("zmax") is not None and used.get("zmin") is not None, "a fixed colour range, not per run"
    assert (used["zmin"], used["zmax"]) == (collapsed["zmin"], collapsed["zmax"]), "one range for every run"
    assert "log" in used["colorbar"]["title"]["text"]

    def brightest(tr: dict) -> float:  # the brightest cell, as a fraction of the colour range
        return (np.nanmax(_heat(tr, "z")) - tr["zmin"]) / (tr["zmax"] - tr["zmin"])

    assert brightest(collapsed) < 0.55 < brightest(used)
    np.testing.assert_allclose(_heat(collapsed, "customdata"), small.T, rtol=1e-5)  # the hover: the values
