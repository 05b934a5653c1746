"""A kill during training leaves every earlier run intact and no half-written run listed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from vae_core import ModelConfig, TrainConfig, VAE
from vae_core.runs.checkpoints import save_run
from vae_core.runs.run_load import fingerprint, list_runs, load_run
from paths import ROOT  # the repository root (tests/paths.py)


def test_sigkill_during_training_leaves_earlier_runs_intact(tmp_path: Path):
    runs = tmp_path / "runs"
    torch.manual_seed(0)
    earlier = save_run(runs / "earlier", VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(8,))),
                       TrainConfig(epochs=1), [{"epoch": 1, "loss": 1.0}], dataset="digits")
    fp = fingerprint(earlier)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vae_core", "train", "--data", "digits", "--epochs", "500", "--latent-dim", "2",
         "--hidden", "64", "--out", str(runs / "killed")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        # wait until training is under way (the progress bar has counted steps), then kill hard
        deadline = time.monotonic() + 120
        seen = b""
        while time.monotonic() < deadline and b"epoch=" not in seen:
            seen += os.read(proc.stderr.fileno(), 4096)
        assert b"epoch=" in seen, seen[-500:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert [p.name for p in list_runs(runs)] == ["earlier"]
    assert not (runs / "killed").exists()
    assert fingerprint(earlier) == fp
    assert load_run(earlier).model.latent_dim == 2
