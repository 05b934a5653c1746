"""Heavy CLI jobs take turns for the machine's cores (vae_core/cores.py) instead of thrashing: a
`diagnose` started while every slot is held waits, says so once, and runs when a slot frees."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import torch

from paths import ROOT
from vae_core import cores
from vae_core.runs.checkpoints import save_run
from vae_core.config import ModelConfig, TrainConfig
from vae_core.models import VAE


def _hold_every_slot(d) -> list[int]:
    fds = []
    for i in range(cores.slots()):
        fd = os.open(d / f"slot-{i}", os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fds.append(fd)
    return fds


def test_a_diagnosis_waits_for_a_free_core_then_runs(tmp_path):
    torch.manual_seed(0)
    run = save_run(tmp_path / "r8", VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))),
                   TrainConfig(epochs=1), [{"epoch": 1}], dataset="digits")
    slots = tmp_path / "slots"
    slots.mkdir()
    held = _hold_every_slot(slots)  # every slot taken, as by other diagnoses running
    env = dict(os.environ, VAE_EXPLORER_SLOTS_DIR=str(slots), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "vae_core", "diagnose", str(run), "--data", "digits",
                             "--n-points", "50", "--iwae-k", "5", "--json", "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # blocks until the child says something: it must be the wait
        assert "waiting for a free core" in line, line
        assert proc.poll() is None, "it ran although no slot was free"
    finally:
        for fd in held:
            os.close(fd)  # the slots free: the diagnosis goes on
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert '"elbo"' in out


def test_a_free_slot_is_taken_at_once_and_released(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_SLOTS_DIR", str(tmp_path))
    said = []
    with cores.core_slot("a test", say=said.append):
        assert not said, "a free slot needs no wait"
        assert torch.get_num_threads() <= cores.THREADS
        if cores.slots() == 1:  # the one slot is held: another taker finds none
            assert cores._try_slot(tmp_path) is None
    fd = cores._try_slot(tmp_path)  # released on leaving
    assert fd is not None
    os.close(fd)
