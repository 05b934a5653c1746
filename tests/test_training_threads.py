"""The Train page's training subprocess leaves a core to the server: OMP_NUM_THREADS = cores - 1 unless
the user set it, in the environment the job's process really runs with, and torch in a process with
that environment sizes its intra-op pool from it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.training import ROOT, TrainingJob, TrainSpec, training_env
from vae_core.config import ModelConfig, TrainConfig

DEFAULT = str(max(1, (os.cpu_count() or 2) - 1))
TORCH_THREADS = "import torch; print(torch.get_num_threads(), torch.get_num_interop_threads())"


def _clean(**extra: str) -> dict[str, str]:
    """os.environ without the thread variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**env, **extra}


def test_default_leaves_a_core_and_the_users_value_wins():
    assert training_env(_clean())["OMP_NUM_THREADS"] == DEFAULT
    assert training_env(_clean(OMP_NUM_THREADS="3"))["OMP_NUM_THREADS"] == "3"
    assert training_env(_clean(OMP_NUM_THREADS=" "))["OMP_NUM_THREADS"] == DEFAULT  # blank: unset
    env = training_env(_clean(PYTHONPATH="/elsewhere"))
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]


@pytest.mark.parametrize("user", [None, "1", "2", "3"])
def test_torch_in_a_process_with_that_env_uses_that_many_threads(user):
    env = training_env(_clean() if user is None else _clean(OMP_NUM_THREADS=user))
    out = subprocess.run([sys.executable, "-c", TORCH_THREADS], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    # torch never sizes the pool above the machine's cores (OMP_NUM_THREADS=3 gives 2 on 2 cores)
    assert int(out[0]) == min(int(user or DEFAULT), os.cpu_count() or 1)
    assert int(out[1]) >= 1  # the inter-op pool: no variable sets it, training never starts it


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("user", [None, "2"])
def test_the_jobs_process_runs_with_it(tmp_path, monkeypatch, user):
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    if user is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", user)
    spec = TrainSpec(data="digits", name="threads", train=TrainConfig(epochs=200),
                     model=ModelConfig(input_shape=(1, 8, 8), hidden=(32,), latent_dim=2))
    job = TrainingJob(spec, tmp_path / "runs").start()
    try:
        # The CLI writes its progress file after exec: /proc then shows the child's own environment.
        deadline = time.monotonic() + 180
        while not job.progress_path.exists():
            assert job.proc.poll() is None, job.last_stderr_line()
            assert time.monotonic() < deadline, "the training process never started"
            time.sleep(0.1)
        assert _environ(job.pid)["OMP_NUM_THREADS"] == (user or DEFAULT)
    finally:
        job.cancel()
        job.cleanup()
