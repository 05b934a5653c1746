"""Every error is a sentence (issue: strangers' files): each error class through the CLI and through
the sidebar (AppTest), with limits checked before anything is allocated.

Hostile files are generated here, never committed. The CLI cases run `vae_core.cli.main` in
process (the same code path as `python -m vae_core`, much faster); a few run as real processes
to prove there is no traceback at the process level.
"""
from __future__ import annotations

import io
import json
import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from vae_core import cli
from vae_core.errors import CheckpointError
from vae_core.runs.run_load import load_run
from vae_core.config import ModelConfig, TrainConfig
from vae_core.models import VAE

from sidebar import open_app, upload as _upload
from paths import ROOT  # the repository root (tests/paths.py)
from zips import run_zip, zip_bytes

HOME = str(ROOT / "streamlit_app.py")
DEFAULT = ROOT / "runs" / "default"


def run_cli(capsys, *args) -> tuple[int, str]:
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def one_line(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# --- the CLI: options refused by name before anything runs -----------------------------------------

@pytest.mark.parametrize("args,needles", [
    (["--beta", "nan"], ["--beta", "finite"]),
    (["--lr", "inf"], ["--lr", "finite"]),
    (["--seed", "-3"], ["--seed", ">= 0"]),
    (["--hidden", "12000000"], ["--hidden", "16,384", "VAE_EXPLORER_MAX_HIDDEN"]),
    (["--latent-dim", "0"], ["--latent-dim", ">= 1"]),
    (["--latent-dim", "100000"], ["--latent-dim", "VAE_EXPLORER_MAX_LATENT"]),
    (["--epochs", "100000000"], ["--epochs", "VAE_EXPLORER_MAX_EPOCHS"]),
    (["--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["--batch-size", "10000000"], ["--batch-size", "VAE_EXPLORER_MAX_BATCH"]),
    (["--hidden", "5000,5000,5000"], ["parameter count", "VAE_EXPLORER_MAX_PARAMS"]),
    (["--gaussian-scale", "-1"], ["--gaussian-scale", "> 0"]),
    (["--warmup", "2"], ["--warmup", "<= 1"]),
    (["--n", "0"], ["--n", ">= 1"]),
    (["--data", "sprites", "--n", "100000000"], ["--n", "VAE_EXPLORER_MAX_DATA_MB"]),
])
def test_train_options_refused_by_name_before_training(tmp_path, capsys, args, needles):
    out = tmp_path / "r"
    code, err = run_cli(capsys, "train", "--data", "digits", "--out", out, *args)
    one_line(code, err, *needles)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing written, not even a lock


def test_out_checked_before_training(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, err = run_cli(capsys, "train", "--data", "digits", "--epochs", "1", "--out", blocker / "run")
    one_line(code, err, "--out", "cannot create its folder")
    code, err = run_cli(capsys, "train", "--data", "digits", "--epochs", "1", "--out", tmp_path / ("a" * 300))
    one_line(code, err, "--out", "300 characters")


def test_diagnose_options_refused(capsys):
    one_line(*run_cli(capsys, "diagnose", DEFAULT, "--data", "mnist", "--iwae-k", "0"), "--iwae-k")
    one_line(*run_cli(capsys, "diagnose", DEFAULT, "--data", "mnist", "--iwae-k", "10000000"),
             "--iwae-k", "VAE_EXPLORER_MAX_IWAE_K")
    one_line(*run_cli(capsys, "diagnose", DEFAULT, "--data", "mnist", "--seed", "-1"), "--seed")


# --- run directories and zips that lie -----------------------------------------------------------

def _run_dir(tmp_path: Path, name: str = "r", **model) -> Path:
    """A real small run directory (config.json + model.safetensors + history.csv)."""
    from vae_core.runs.checkpoints import save_run

    cfg = ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,), **model)
    return save_run(tmp_path / name, VAE(cfg), TrainConfig(epochs=1), [{"epoch": 1}], dataset="digits")


def _edit_config(run: Path, **model_fields) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"].update(model_fields)
    (run / "config.json").write_text(json.dumps(cfg))


def test_config_with_a_huge_layer_is_refused_before_building(tmp_path):
    """`hidden: [1000000]` in a 2 kB config: refused by the parameter budget, nothing allocated."""
    run = _run_dir(tmp_path)
    _edit_config(run, hidden=[1_000_000], input_shape=[1, 28, 28])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="VAE_EXPLORER_MAX"):
        load_run(run)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100_000  # KB: < 100 MB more


def test_weights_that_do_not_match_the_config_are_refused_by_name(tmp_path):
    run = _run_dir(tmp_path)
    _edit_config(run, hidden=[17])  # within budget, but the safetensors header holds 16-unit layers
    with pytest.raises(CheckpointError, match=r"has shape \[16, 64\], the config makes \[17, 64\]"):
        load_run(run)


def test_non_finite_weights_are_refused(tmp_path):
    run = _run_dir(tmp_path)
    state = load_run(run).model.state_dict()
    state["enc_out.bias"][0] = float("nan")
    save_file({k: v.contiguous() for k, v in state.items()}, str(run / "model.safetensors"))
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        load_run(run)


def test_deeply_nested_config_is_a_sentence(tmp_path):
    run = _run_dir(tmp_path)
    (run / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(CheckpointError, match="not a valid run config"):
        load_run(run)


def test_config_of_wrong_types_is_a_sentence(tmp_path):
    run = _run_dir(tmp_path)
    for bad in ({"model": {"hidden": "many"}}, {"model": [1, 2]}, [1, 2], {"model": {"latent_dim": None}}):
        (run / "config.json").write_text(json.dumps(bad))
        with pytest.raises(CheckpointError):
            load_run(run)


def test_diagnose_refuses_the_huge_config_as_one_line(tmp_path, capsys):
    run = _run_dir(tmp_path)
    _edit_config(run, hidden=[1_000_000], input_shape=[1, 28, 28])
    one_line(*run_cli(capsys, "diagnose", run, "--data", "mnist"), "hidden", "1,000,000", "VAE_EXPLORER_MAX_HIDDEN")
    _edit_config(run, hidden=[16000, 16000])  # each layer within its limit, the whole over the parameter budget
    one_line(*run_cli(capsys, "diagnose", run, "--data", "mnist"), "parameter count", "VAE_EXPLORER_MAX_PARAMS")


def _hostile_run_zip(tmp_path: Path) -> bytes:
    """A 2 kB run zip whose config.json says hidden: [1000000]."""
    run = _run_dir(tmp_path, "small")
    _edit_config(run, hidden=[1_000_000], input_shape=[1, 28, 28])
    return run_zip(run, "r")


def _crc_broken_run_zip(tmp_path: Path) -> bytes:
    run = _run_dir(tmp_path, "crc")
    raw = bytearray(zip_bytes({"r/config.json": (run / "config.json").read_bytes(),
                                "r/model.safetensors": (run / "model.safetensors").read_bytes()}))
    # flip the stored CRC-32 of the first member in its local header (offset 14) and central directory
    crc_local = struct.unpack_from("<I", raw, 14)[0]
    cd = raw.rfind(b"PK\x01\x02", 0, len(raw))
    first_cd = raw.find(b"PK\x01\x02")
    for off in (14, first_cd + 16):
        struct.pack_into("<I", raw, off, crc_local ^ 0xFFFFFFFF)
    assert cd > 0
    return bytes(raw)


def test_extract_run_zip_refuses_lies(tmp_path):
    from vae_core.runs.checkpoints import extract_run_zip

    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(_hostile_run_zip(tmp_path))
    assert bomb.stat().st_size < 16_384  # a few kB
    with pytest.raises(CheckpointError, match="VAE_EXPLORER_MAX_HIDDEN"):
        extract_run_zip(bomb, tmp_path / "dest")
    crc = tmp_path / "crc.zip"
    crc.write_bytes(_crc_broken_run_zip(tmp_path))
    with pytest.raises(CheckpointError, match="corrupt"):
        extract_run_zip(crc, tmp_path / "dest")
    assert [p for p in (tmp_path / "dest").iterdir() if not p.name.startswith(".")] == []


def test_errors_from_a_real_process_have_no_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vae_core", "train", "--data", "digits", "--beta", "nan", "--out",
                        str(tmp_path / "r")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["error: beta (--beta) must be a finite number, got nan"]


# --- the sidebar (AppTest): each error class refused with a sentence, the state kept ---------------

@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    return open_app()


def _refused(at: AppTest, *needles: str) -> str:
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(e.value for e in at.error)
    assert "Upload refused, nothing changed" in text, text
    for n in needles:
        assert n in text, (n, text)
    assert at.session_state["model_src"] == str(DEFAULT) and at.session_state["data_src"] == "mnist"
    return text


def test_sidebar_refuses_the_huge_config_run_zip(app, tmp_path):
    _refused(_upload(app, "upload_model", "bomb.zip", _hostile_run_zip(tmp_path)), "VAE_EXPLORER_MAX_HIDDEN")


def test_sidebar_refuses_a_crc_broken_run_zip(app, tmp_path):
    _refused(_upload(app, "upload_model", "crc.zip", _crc_broken_run_zip(tmp_path)), "corrupt")


def test_sidebar_refuses_a_nested_json_run_zip(app, tmp_path):
    run = _run_dir(tmp_path, "nested")
    data = zip_bytes({"r/config.json": b"[" * 100_000 + b"]" * 100_000,
                       "r/model.safetensors": (run / "model.safetensors").read_bytes()})
    _refused(_upload(app, "upload_model", "nested.zip", data), "not a valid run config")


def test_sidebar_refuses_a_lying_npy_header(app):
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**7, 1, 1000, 1000)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    _refused(_upload(app, "upload_data", "huge.npy", buf.getvalue() + b"\0" * 64), "huge.npy",
             "VAE_EXPLORER_MAX_MAPPED_MB")  # too large to load whole, so it would be memory-mapped


def test_sidebar_refuses_a_ragged_csv(app):
    _refused(_upload(app, "upload_data", "ragged.csv", b"0,1,0,1\n1,0,1,0\n0,1\n"), "ragged.csv",
             "row 3 has 2 values, expected 4")


def test_public_switch_turns_off_model_uploads_and_training(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_PUBLIC", "1")
    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    at = AppTest.from_file(HOME, default_timeout=120).run()
    assert not at.exception
    keys = [u.key for u in at.get("file_uploader")]
    assert "upload_model" not in keys and "upload_data" in keys
    at.switch_page("app_pages/2_Train.py").run()
    assert not at.exception
    assert any("Training is turned off" in i.value for i in at.info)
    assert not at.get("form") or all("train_form" not in str(f.proto) for f in at.get("form"))
    from explorer import training

    with pytest.raises(ValueError, match="turned off"):
        training.registry().start(training.TrainSpec(data="digits", name="x"), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
