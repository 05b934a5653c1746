"""The background trainer: the CLI's progress file, a subprocess job run to its end, cancelled,
stopped by NaN, failing; and the form's validation (run names, field errors)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from explorer.training import Registry, TrainingJob, TrainSpec
from vae_core import cli
from vae_core.runs.run_load import list_runs, load_run
from vae_core.config import ModelConfig, TrainConfig

TIMEOUT = 180  # a subprocess imports torch (seconds on a busy 2-core machine) before its first step
def _spec(name: str, data: str = "digits", **train) -> TrainSpec:
    """A spec for a tiny model (8x8 digits, hidden 32, latent 2) with these training options."""
    return TrainSpec(data=data, name=name, model=ModelConfig(input_shape=(1, 8, 8), hidden=(32,), latent_dim=2),
                     train=TrainConfig(**train))


@pytest.fixture
def jobs():
    """Jobs started by a test; any still running at the end is terminated."""
    started: list[TrainingJob] = []
    yield started
    for job in started:
        job.cancel()
        job.cleanup()


def _start(jobs: list, spec: TrainSpec, runs: Path) -> TrainingJob:
    job = TrainingJob(spec, runs).start()
    jobs.append(job)
    return job


def _wait(job: TrainingJob, until=lambda j: j.finished) -> TrainingJob:
    deadline = time.monotonic() + TIMEOUT
    while not until(job.poll()):
        assert time.monotonic() < deadline, f"timed out; status {job.status}, stderr: {job.last_stderr_line()}"
        time.sleep(0.2)
    return job


def _strict(text: str):
    def no_nan(c):
        raise ValueError(f"non-strict JSON constant {c}")

    return json.loads(text, parse_constant=no_nan)


def test_cli_progress_jsonl(tmp_path):
    progress = tmp_path / "p.jsonl"
    code = cli.main(["train", "--data", "digits", "--epochs", "2", "--latent-dim", "2", "--hidden", "32",
                     "--out", str(tmp_path / "r"), "--quiet", "--progress-jsonl", str(progress)])
    assert code == 0
    lines = [_strict(ln) for ln in progress.read_text().splitlines()]
    events = [ln["event"] for ln in lines]
    assert events[0] == "start" and events[-1] == "saved"
    assert lines[0]["epochs"] == 2 and lines[0]["pid"] == os.getpid()
    epochs = [ln for ln in lines if ln["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for e in epochs:  # the history row, KL per dimension included
        assert {"loss", "recon_nll", "kl", "beta", "eval_elbo", "seconds", "kl_dim_0", "kl_dim_1"} <= set(e)
    steps = [ln for ln in lines if ln["event"] == "step"]
    assert steps and steps[-1]["step"] == steps[-1]["total_steps"]
    assert lines[-1]["out"] == str(tmp_path / "r") and lines[-1]["stopped_reason"] is None
    assert all(a["elapsed"] <= b["elapsed"] for a, b in zip(lines, lines[1:]))


@pytest.fixture(scope="module")
def ended(tmp_path_factory):
    """Three jobs started together (each mostly waits on importing torch): a good run, a NaN run, a
    failing one; all run to their end. Yields (runs dir, {name: job})."""
    tmp = tmp_path_factory.mktemp("worker")
    runs = tmp / "runs"
    specs = [_spec("w", epochs=2),
             # one step per epoch (batch > data) and an absurd learning rate: finite a few epochs, then NaN
             _spec("n", epochs=10, lr=1e6, batch_size=2000),
             _spec("f", data=str(tmp / "missing.npz"), epochs=1)]
    started: list[TrainingJob] = []
    try:
        for spec in specs:
            _start(started, spec, runs)
        for job in started:
            _wait(job)
        yield runs, {j.spec.name: j for j in started}
    finally:
        for job in started:
            job.cancel()
            job.cleanup()


def test_job_runs_to_a_valid_run(ended):
    runs, jobs = ended
    job = jobs["w"]
    assert job.status == "done", job.message
    p = job.progress
    assert p.epochs_done == 2 and p.step == p.total_steps > 0 and p.fraction() == 1.0
    assert {"kl_dim_0", "kl_dim_1"} <= set(p.rows[-1])
    assert p.seconds_per_epoch() > 0 and p.seconds_left() == 0
    assert p.saved["out"] == str(runs / "w")
    assert runs / "w" in list_runs(runs)
    run = load_run(runs / "w")
    assert run.model.latent_dim == 2 and len(run.history) == 2
    assert run.history[-1]["eval_elbo"] == pytest.approx(p.rows[-1]["eval_elbo"])
    assert not job.workdir.exists(), "the job's progress/stderr files are removed when it ends"


def test_nan_stop_keeps_last_good_epoch_and_says_why(ended):
    runs, jobs = ended
    job = jobs["n"]
    assert job.status == "stopped", (job.status, job.message)
    assert "nan" in job.message.lower() and "kept the weights of epoch" in job.message
    cfg = json.loads((runs / "n" / "config.json").read_text())
    assert cfg["stopped_reason"] == job.message and cfg["completed"] is False
    assert 0 < job.progress.epochs_done < 10
    assert len(load_run(runs / "n").history) == job.progress.epochs_done


def test_failed_process_reports_its_last_stderr_line(ended):
    runs, jobs = ended
    job = jobs["f"]
    assert job.status == "failed"
    assert job.message.startswith("error:") and "missing.npz" in job.message
    assert not (runs / "f").exists()
    assert not list(runs.glob(".*")), "no temp dir is left behind"


def test_cancel_terminates_and_leaves_nothing(tmp_path, jobs):
    runs = tmp_path / "runs"
    reg = Registry()
    job = reg.start(_spec("c", epochs=5000), runs)
    jobs.append(job)
    assert reg.get(job.id) is job and reg.get("nope") is None and reg.get(None) is None
    with pytest.raises(ValueError, match="being trained"):  # two sessions cannot train into one name
        reg.start(_spec("c", epochs=1), runs)
    _wait(job, until=lambda j: j.finished or j.progress.step > 0)
    assert job.status == "running"
    pid = job.pid
    job.cancel()
    assert job.status == "cancelled" and job.proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the process is gone (and reaped)
    assert not (runs / "c").exists()
    assert list_runs(runs) == []
    assert not list(runs.glob(".*")), "no temp dir is left behind"
    assert not job.workdir.exists()


@pytest.mark.parametrize("name", ["a/b", "", "has space", "../up", "dot.name"])
def test_spec_rejects_bad_run_names(tmp_path, name):
    with pytest.raises(ValueError, match="run name"):
        _spec(name).check(tmp_path)


def test_spec_rejects_existing_run_and_bad_fields(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="taken"):
        _spec("taken").check(tmp_path)
    # a spec holds the configs themselves: a bad field is refused, by name, before a spec exists
    with pytest.raises(ValueError, match="lr"):
        _spec("x", lr=0.0)
    with pytest.raises(ValueError, match="latent_dim"):
        TrainSpec(data="digits", name="x", model=ModelConfig(input_shape=(1, 8, 8), latent_dim=0))
    with pytest.raises(ValueError, match="divisible"):  # conv halves H, W twice: 6x6 cannot
        TrainSpec(data="digits", name="x", model=ModelConfig(input_shape=(1, 6, 6), arch="conv", hidden=(32,)))
    _spec("ok-1_b").check(tmp_path)  # a good spec passes
