"""Runs on disk (issue 19, item 8): `--out` given as a symlink with `--overwrite` leaves nothing
hidden beside the runs, and every run-writing path follows the umask (0755/0644 under umask 022,
0700/0600 under 077), as other tools do, so a server running as another user can read CLI runs.

Before: the symlink was swapped out as `runs/.link.tmp-*` (and stayed); runs were 0700 with
model.safetensors and epoch_codes.npz 0600 whatever the umask.
"""
from __future__ import annotations

import contextlib
import io
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest

from explorer.training import TrainingJob, TrainSpec
from vae_core import cli
from vae_core.runs.checkpoints import extract_run_zip
from vae_core.runs.model_files import export_torchscript
from vae_core.runs.run_load import is_run_dir, load_run
from vae_core.config import ModelConfig, TrainConfig

RUN_FILES = {"config.json", "model.safetensors", "history.csv", "epoch_codes.npz"}
# umask -> (directory mode, file mode): what mkdir and open(..., "w") give under it, written out by hand
MODES = {0o022: (0o755, 0o644), 0o077: (0o700, 0o600), 0o027: (0o750, 0o640)}


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _train(out: Path, *extra: str) -> None:
    code = cli.main(["train", "--data", "digits", "--epochs", "1", "--hidden", "16", "--latent-dim", "2",
                     "--record-codes", "20", "--quiet", "--out", str(out), *extra])
    assert code == 0


def _assert_run_modes(run: Path, mask: int) -> None:
    d_mode, f_mode = MODES[mask]
    assert {f.name for f in run.iterdir()} == RUN_FILES
    assert oct(_mode(run)) == oct(d_mode)
    assert {f.name: oct(_mode(f)) for f in run.iterdir()} == {n: oct(f_mode) for n in RUN_FILES}


def test_overwrite_through_a_symlink_writes_the_target_and_leaves_nothing_hidden(tmp_path):
    runs = tmp_path / "runs"
    _train(runs / "target")
    (runs / "link").symlink_to("target")
    _train(runs / "link", "--overwrite", "--latent-dim", "3")
    assert sorted(p.name for p in runs.iterdir()) == ["link", "target"]  # no .link.tmp-*, no lock file
    assert (runs / "link").is_symlink() and os.readlink(runs / "link") == "target"
    assert load_run(runs / "target").model.cfg.latent_dim == 3  # the new run, where the link points
    assert is_run_dir(runs / "target")


def test_a_symlink_to_a_run_not_made_yet_gets_the_run(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "link").symlink_to("later")
    _train(runs / "link")
    assert sorted(p.name for p in runs.iterdir()) == ["later", "link"]
    assert load_run(runs / "later").model.cfg.latent_dim == 2


@pytest.mark.parametrize("mask", sorted(MODES))
def test_train_follows_the_umask(tmp_path, mask):
    with umask(mask):
        _train(tmp_path / "run")
    _assert_run_modes(tmp_path / "run", mask)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_overwrite_follows_the_umask(tmp_path, mask):
    with umask(0o077 if mask == 0o022 else 0o022):  # the run it replaces had the other modes
        _train(tmp_path / "run")
    with umask(mask):
        _train(tmp_path / "run", "--overwrite")
    _assert_run_modes(tmp_path / "run", mask)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_an_uploaded_run_zip_is_unpacked_under_the_umask(tmp_path, mask):
    _train(tmp_path / "run")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in (tmp_path / "run").iterdir():
            z.write(f, f"run/{f.name}")
    (tmp_path / "run.zip").write_bytes(buf.getvalue())
    with umask(mask):
        out = extract_run_zip(tmp_path / "run.zip", tmp_path / "uploads")
    _assert_run_modes(out, mask)
    assert oct(_mode(tmp_path / "uploads")) == oct(MODES[mask][0])


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_torchscript_export_follows_the_umask(tmp_path, mask):
    _train(tmp_path / "run")
    with umask(mask):
        p = export_torchscript(load_run(tmp_path / "run").model, tmp_path / "model.ts")
    assert oct(_mode(p)) == oct(MODES[mask][1])
    assert sorted(f.name for f in tmp_path.iterdir()) == ["model.ts", "run"]


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_the_apps_training_follows_the_servers_umask(tmp_path, mask):
    spec = TrainSpec(data="digits", name="app-run", train=TrainConfig(epochs=1, record_codes=20),
                     model=ModelConfig(input_shape=(1, 8, 8), hidden=(16,), latent_dim=2))
    runs = tmp_path / "runs"
    runs.mkdir()
    with umask(mask):  # the training process inherits the server's umask when it starts
        job = TrainingJob(spec, runs).start()
    try:
        deadline = time.monotonic() + 180  # a subprocess imports torch first (seconds on 2 busy cores)
        while not job.poll().finished:
            assert time.monotonic() < deadline, job.last_stderr_line()
            time.sleep(0.2)
        assert job.status == "done", job.last_stderr_line()
    finally:
        job.cancel()
        job.cleanup()
    _assert_run_modes(runs / "app-run", mask)
