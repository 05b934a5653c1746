"""Training in the background: one `python -m vae_core train` subprocess per job.

Why a subprocess and not a thread: training holds the GIL and the CPU for minutes; in its own
process the server stays responsive for every session, cancel is a signal to one PID, and a crash
cannot leave a half-written run (the CLI writes the run directory atomically). The CLI appends its
progress to a JSON-lines file (`--progress-jsonl`) that `TrainingJob.poll()` reads incrementally.

`TrainSpec` holds what the form asks: the library's own ModelConfig/TrainConfig (checked on
construction; their ValueErrors name the field), the data and the run's name. Streamlit appears
only in the shared registry at the bottom, so the worker is testable on its own.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from vae_core.runs.checkpoints import remove_stale_lock
from vae_core.runs.run_load import is_run_dir, run_config
from vae_core.cli import config_argv
from vae_core.config import ModelConfig, TrainConfig
from vae_core.limits import limits

ROOT = Path(__file__).resolve().parent.parent
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_RUNNING = 2  # two cores on this machine: a third job would only slow the other two (and the app)
CANCEL_GRACE_S = 5.0  # SIGINT lets the CLI clean up; after this, SIGKILL


@dataclass(frozen=True)
class TrainSpec:
    """What the Train form sends: the configs themselves, the data, the run's name and n.

    `argv()` turns it into a CLI call, one option per config field (`vae_core.cli.config_argv`);
    the CLI takes the model's input_shape from the data, as the form did.
    """

    data: str  # a built-in dataset id or a data file path
    name: str  # the run directory's name under the runs dir
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    n: int | None = None  # at most this many items (sprites: how many to generate)

    def check(self, runs_dir: str | Path) -> None:
        """Raise ValueError when the run name is not usable or taken (the configs checked themselves)."""
        if not NAME_RE.match(self.name or ""):
            raise ValueError(f"run name must use only letters, digits, '-' and '_' (no spaces or '/'), "
                             f"got {self.name!r}")
        if (Path(runs_dir) / self.name).exists():
            raise ValueError(f"run name {self.name!r} is taken: {Path(runs_dir) / self.name} exists; choose another")

    def argv(self, out: Path, progress: Path) -> list[str]:
        """The `python -m vae_core train` command line for this spec."""
        args = [sys.executable, "-m", "vae_core", "train", "--data", self.data, "--out", str(out),
                "--progress-jsonl", str(progress), "--quiet", *config_argv(self.model, self.train)]
        if self.n is not None:
            args += ["--n", str(self.n)]
        return args


def training_env(base: Mapping[str, str]) -> dict[str, str]:
    """The training subprocess's environment: `base`, the repo on PYTHONPATH, and OMP_NUM_THREADS =
    cores - 1 unless `base` sets it (the user's value wins; an empty one counts as unset).

    Why: torch's intra-op pool takes its size from OMP_NUM_THREADS (else MKL_NUM_THREADS, else
    every core), and a trainer using every core competes with the app's server for them: on 2 busy
    cores a Train-page job ran 311 samples/s with 2 threads, 5,934 with 1 (`benchmarks/train_threads.py`).
    Its inter-op
    pool (no variable sets it) is started only by `torch.jit.fork`-style calls, never by training:
    the process runs the same number of threads with it set to 1."""
    env = dict(base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if not env.get("OMP_NUM_THREADS", "").strip():
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) - 1))
    return env


@dataclass
class JobStatus:
    """What the job's progress file (the CLI's --progress-jsonl lines) said so far."""

    epochs: int = 0  # planned
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per finished epoch (history rows)
    step: int = 0
    total_steps: int = 0
    elapsed: float = 0.0  # seconds since the CLI started (includes loading the data)
    train_start: float | None = None  # `elapsed` at the first step line
    saved: dict[str, Any] | None = None  # the 'saved' line: out, epochs_done, stopped_reason

    @property
    def epochs_done(self) -> int:
        return len(self.rows)

    def seconds_per_epoch(self) -> float | None:
        """Measured wall time per epoch (training and evaluation), or None before any is known."""
        if self.rows and self.train_start is not None:
            return max(self.rows[-1]["elapsed"] - self.train_start, 1e-9) / len(self.rows)
        if self.step and self.total_steps and self.train_start is not None and self.epochs:
            steps_per_epoch = self.total_steps / self.epochs
            return max(self.elapsed - self.train_start, 1e-9) / max(self.step, 1) * steps_per_epoch
        return None

    def seconds_left(self) -> float | None:
        spe = self.seconds_per_epoch()
        if spe is None:
            return None
        done = self.step / (self.total_steps / self.epochs) if self.total_steps else self.epochs_done
        return max(self.epochs - max(done, self.epochs_done), 0.0) * spe

    def fraction(self) -> float:
        if self.total_steps:
            return min(self.step / self.total_steps, 1.0)
        return self.epochs_done / self.epochs if self.epochs else 0.0


class TrainingJob:
    """One training subprocess: start, poll its progress file, cancel by PID."""

    # status: "running" -> "done" | "stopped" (saved, but stopped early: NaN) | "failed" | "cancelled"
    def __init__(self, spec: TrainSpec, runs_dir: str | Path):
        self.id = uuid.uuid4().hex[:12]
        self.spec = spec
        self.runs_dir = Path(runs_dir)
        self.out = self.runs_dir / spec.name
        self.workdir = Path(tempfile.mkdtemp(prefix="vae-train-"))  # outside runs/: never a listed run
        self.progress_path = self.workdir / "progress.jsonl"
        self.stderr_path = self.workdir / "stderr.log"
        self.progress = JobStatus(epochs=spec.train.epochs)
        self.status = "starting"
        self.message = ""  # why it stopped, failed or was cancelled
        self.started = time.time()
        self.proc: subprocess.Popen | None = None
        self._offset = 0
        self._buffer = ""
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed", "cancelled")

    def start(self) -> "TrainingJob":
        env = training_env(os.environ)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.spec.argv(self.out, self.progress_path), cwd=ROOT, env=env,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        self.status = "running"
        return self

    def _read_progress(self) -> None:
        if not self.progress_path.exists():
            return
        with open(self.progress_path, encoding="utf-8") as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset = f.tell()
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split("\n")  # keep a partly written last line for later
        p = self.progress
        for line in lines:
            if not line.strip():
                continue
            ev = json.loads(line)
            kind = ev.pop("event")
            p.elapsed = max(p.elapsed, ev.get("elapsed", 0.0))
            if kind == "start":
                p.epochs = ev["epochs"]
            elif kind == "step":
                p.step, p.total_steps = ev["step"], ev["total_steps"]
                if p.train_start is None:
                    p.train_start = ev["elapsed"]
            elif kind == "epoch":
                p.rows.append(ev)
                if p.total_steps and p.epochs:  # step lines are throttled: an epoch line moves the count on
                    p.step = max(p.step, round(ev["epoch"] * p.total_steps / p.epochs))
            elif kind == "saved":
                p.saved = ev

    def last_stderr_line(self) -> str:
        try:
            lines = [ln.strip() for ln in self.stderr_path.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def poll(self) -> "TrainingJob":
        """Read new progress lines; when the process has ended, settle the final status."""
        with self._lock:
            if self.finished or self.proc is None:
                return self
            self._read_progress()
            code = self.proc.poll()
            if code is None:
                return self
            self._read_progress()  # the last lines written before the exit
            if code == 0 and is_run_dir(self.out):
                reason = self._stopped_reason()
                self.status, self.message = ("stopped", reason) if reason else ("done", "")
            else:
                self.status = "failed"
                self.message = self.last_stderr_line() or f"the training process exited with code {code}"
                self._remove_temp_dirs()
            self.cleanup()
            return self

    def _stopped_reason(self) -> str | None:
        return run_config(self.out).get("stopped_reason")

    def cancel(self) -> "TrainingJob":
        """Stop the process (SIGINT, so the CLI writes nothing; SIGKILL after a grace period)."""
        with self._lock:
            if self.finished or self.proc is None:
                return self
            if self.proc.poll() is None:
                try:
                    os.kill(self.proc.pid, signal.SIGINT)
                    self.proc.wait(CANCEL_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                except ProcessLookupError:
                    pass
            self._read_progress()
            if self.proc.returncode == 0 and is_run_dir(self.out):  # it had finished before the signal
                reason = self._stopped_reason()
                self.status = "stopped" if reason else "done"
                self.message = reason or "training had already finished: the run was saved"
            else:
                self.status, self.message = "cancelled", "cancelled: nothing was saved"
                self._remove_temp_dirs()
            self.cleanup()
            return self

    def _remove_temp_dirs(self) -> None:
        """A SIGKILL could leave save_run's hidden temp dir and the run's lock file: remove them."""
        for p in self.runs_dir.glob(f".{self.spec.name}.tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
        remove_stale_lock(self.out)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class Registry:
    """Every session's jobs, keyed by job id; a session holds only its own job's id."""

    def __init__(self) -> None:
        self.jobs: dict[str, TrainingJob] = {}
        self.lock = threading.Lock()
        atexit.register(self.shutdown)

    def start(self, spec: TrainSpec, runs_dir: str | Path) -> TrainingJob:
        """Start a job; ValueError when the name is being trained already or too many jobs run."""
        if limits().public:
            raise ValueError("training is turned off on this server (VAE_EXPLORER_PUBLIC is set)")
        with self.lock:
            running = [j for j in self.jobs.values() if not j.poll().finished]
            if any(j.out == Path(runs_dir) / spec.name for j in running):
                raise ValueError(f"run name {spec.name!r} is being trained right now; choose another")
            if len(running) >= MAX_RUNNING:
                raise ValueError(f"{len(running)} trainings are running on this server already (the limit is "
                                 f"{MAX_RUNNING}, one per core); try again when one has finished")
            job = TrainingJob(spec, runs_dir).start()
            self.jobs[job.id] = job
            return job

    def get(self, job_id: str | None) -> TrainingJob | None:
        return self.jobs.get(job_id) if job_id else None

    def shutdown(self) -> None:
        """When the server exits, stop the trainings it started (nothing half-written remains)."""
        for job in list(self.jobs.values()):
            job.cancel()
            job.cleanup()


@st.cache_resource(show_spinner=False)
def registry() -> Registry:
    """The registry shared by all sessions of this server: it outlives reruns (st.cache_resource)."""
    return Registry()
