"""Runs are never lost: a kill at any step of save_run, and two trainings on the same --out.

Each kill is a real SIGKILL of a (forked) child process at a named step of `save_run` (the step hook), on
both overwrite paths: the one-step swap (renameat2 RENAME_EXCHANGE) and the two renames used where
the filesystem lacks it. After every kill the previous run loads with its own weights and only
whole runs are listed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vae_core.runs import checkpoints as ck
from vae_core.runs.run_load import list_runs, load_run
from vae_core.config import ModelConfig, TrainConfig
from vae_core.models import VAE
from paths import ROOT  # the repository root (tests/paths.py)


STEPS_FRESH = ["tmpdir", "config", "weights", "history", "fsync", "done"]
STEPS_SWAP = ["tmpdir", "config", "weights", "history", "fsync", "swapped", "done"]
STEPS_RENAMES = ["tmpdir", "config", "weights", "history", "fsync", "aside", "renamed", "done"]


def _save_in_child(out: Path, step: str, latent: int, exchange: bool = True) -> int:
    """Save a run of latent size `latent` into out in a forked child that SIGKILLs itself at `step`.

    Returns the child's wait status as a returncode (-9 when killed). Forked, not spawned: the
    child inherits the imported torch, so each of the many kills costs milliseconds.
    """
    torch.manual_seed(latent)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=latent, hidden=(8,)))
    overwrite = out.exists()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            if not exchange:
                ck._renameat2 = lambda src, dst, flags: False  # a filesystem without renameat2

            def hook(name: str) -> None:
                if name == step:
                    os.kill(os.getpid(), signal.SIGKILL)

            ck._step_hook = hook
            ck.save_run(out, model, TrainConfig(epochs=1), [{"epoch": 1, "loss": 1.0}], dataset="digits",
                        overwrite=overwrite)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _latent(path: Path) -> int:
    return load_run(path).model.cfg.latent_dim


def _supports_exchange(tmp_path: Path) -> bool:
    a, b = tmp_path / "xa", tmp_path / "xb"
    a.mkdir()
    b.mkdir()
    try:
        return ck._renameat2(a, b, ck._RENAME_EXCHANGE)
    finally:
        a.rmdir()
        b.rmdir()


@pytest.mark.parametrize("step", STEPS_FRESH)
def test_kill_while_saving_a_new_run_lists_no_half_run(tmp_path, step):
    out = tmp_path / "runs" / "r"
    rc = _save_in_child(out, step, latent=2)
    assert rc == (0 if step == "none" else -signal.SIGKILL)
    runs = list_runs(tmp_path / "runs")
    if step == "done":  # killed after the rename: the run is whole
        assert runs == [out] and _latent(out) == 2
    else:
        assert runs == [] and not out.exists()
    # killed while holding the run lock: its file stays (the lock itself died with the process)
    assert out.with_name(".r.lock").exists()
    ck.remove_stale_lock(out)
    assert not out.with_name(".r.lock").exists()


@pytest.mark.parametrize("exchange,step", [(True, s) for s in STEPS_SWAP] + [(False, s) for s in STEPS_RENAMES])
def test_kill_at_every_step_of_an_overwrite_keeps_a_whole_run(tmp_path, exchange, step):
    if exchange and not _supports_exchange(tmp_path):
        pytest.skip("this filesystem has no RENAME_EXCHANGE; the two-rename path is tested below")
    out = tmp_path / "runs" / "r"
    assert _save_in_child(out, "none", latent=2) == 0
    before = (out / "model.safetensors").read_bytes()
    assert _save_in_child(out, step, latent=3, exchange=exchange) == -signal.SIGKILL
    runs = list_runs(tmp_path / "runs")  # also mends a run left aside between the two renames
    assert runs == [out]
    new_in_place = step in ("swapped", "renamed", "done")
    assert _latent(out) == (3 if new_in_place else 2)
    if not new_in_place:
        assert (out / "model.safetensors").read_bytes() == before
    # nothing visible but the run; hidden leftovers are never listed and a later save still works
    assert [p.name for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")] == ["r"]
    assert _save_in_child(out, "none", latent=4) == 0 and _latent(out) == 4


def test_load_run_mends_a_run_left_aside(tmp_path):
    """load_run itself (not only list_runs) puts back a run an overwrite left aside."""
    out = tmp_path / "r"
    assert _save_in_child(out, "none", latent=2) == 0
    assert _save_in_child(out, "aside", latent=3, exchange=False) == -signal.SIGKILL
    assert not out.exists()
    assert _latent(out) == 2


def _train_cmd(out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "vae_core", "train", "--data", "digits", "--hidden", "32", "--latent-dim", "2",
            "--epochs", str(epochs), "--out", str(out), "--quiet"]


def test_two_trainings_on_one_out_exactly_one_wins(tmp_path):
    out = tmp_path / "runs" / "same"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(_train_cmd(out, epochs=100), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        lock = out.with_name(".same.lock")
        deadline = time.monotonic() + 60
        while not lock.exists():  # the first holds the lock from before loading data to the end
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first training never took the run lock"
            time.sleep(0.05)
        second = subprocess.run(_train_cmd(out, epochs=1), cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2
        assert "another training is writing" in second.stderr or "already exists" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        _, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert list_runs(out.parent) == [out]
    assert load_run(out).history[-1]["epoch"] == 100  # the first training's run, whole
    # and the second, started now, refuses to replace it without --overwrite
    again = subprocess.run(_train_cmd(out, epochs=1), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_run_lock_refuses_a_second_holder_and_is_reentrant(tmp_path):
    out = tmp_path / "r"
    with ck.run_lock(out):
        with ck.run_lock(out):  # the same process may take it again (CLI, then save_run)
            pass
        code = ("import sys; from vae_core.runs import checkpoints as ck\n"
                "try:\n    ck.run_lock(sys.argv[1]).__enter__()\nexcept FileExistsError as e:\n"
                "    print(e); sys.exit(3)\n")
        other = subprocess.run([sys.executable, "-c", code, str(out)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                               capture_output=True, text=True, timeout=60)
        assert other.returncode == 3 and "another training is writing" in other.stdout
    assert not out.with_name(".r.lock").exists()  # released and removed
