"""The Train page's training job with 1 vs 2 torch threads while another process keeps a core busy.

The job is the app's own (`explorer.training.TrainingJob`: `python -m vae_core train` in a
subprocess, environment from `training_env`), a Train-page-style run: `mnist` (4,000 training
digits), the form's default model (784-400-20 MLP) and batch size, a few epochs. The thread count
is set as a user would, with OMP_NUM_THREADS (the user's value wins over the job's default of
cores - 1). A second process spins in a Python loop for the whole run, standing in for the
Streamlit server answering another session. Variants alternate by round so that other work on the
machine hits both alike; a figure is the median over rounds of the median over epochs 2.. of
history.csv's samples_per_s (epoch 1 holds the warm-up), printed with the 1-minute load average.

Run from the repo root: python -m benchmarks.train_threads [--epochs 4] [--rounds 2] [--no-busy]
Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import load
from explorer.training import TrainingJob, TrainSpec
from vae_core.config import ModelConfig, TrainConfig


def run_job(runs: Path, name: str, threads: int | None, epochs: int) -> tuple[float, float]:
    """(median samples/s over epochs 2.., wall seconds) of one Train-page job; threads None: the job's default."""
    saved = os.environ.get("OMP_NUM_THREADS")
    if threads is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        t0 = time.perf_counter()
        job = TrainingJob(TrainSpec(data="mnist", name=name, model=ModelConfig(input_shape=(1, 28, 28)),
                                    train=TrainConfig(epochs=epochs)), runs).start()
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    try:
        while not job.poll().finished:
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        if job.status != "done":
            raise RuntimeError(f"the job {job.status}: {job.message or job.last_stderr_line()}")
    finally:
        job.cleanup()
    with open(runs / name / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    speeds = [float(r["samples_per_s"]) for r in rows[1:]] or [float(rows[0]["samples_per_s"])]
    return statistics.median(speeds), wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-busy", action="store_true", help="no second process keeping a core busy")
    args = ap.parse_args(argv)
    print(f"# {os.cpu_count()} CPUs, load {load()} at start; a busy process: {not args.no_busy}")
    busy = None if args.no_busy else subprocess.Popen([sys.executable, "-c", "while True: pass"])
    variants = {"1 thread (OMP_NUM_THREADS=1)": 1, "2 threads (OMP_NUM_THREADS=2)": 2,
                "the job's default (OMP_NUM_THREADS unset)": None}
    got: dict[str, list[tuple[float, float, str]]] = {v: [] for v in variants}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                order = list(variants) if r % 2 == 0 else list(reversed(variants))
                for i, name in enumerate(order):
                    load_now = load()
                    speed, wall = run_job(Path(tmp) / "runs", f"r{r}v{i}", variants[name], args.epochs)
                    got[name].append((speed, wall, load_now))
                    print(f"  round {r + 1}: {name}: {speed:,.0f} samples/s, {wall:.1f} s (load {load_now})", flush=True)
    finally:
        if busy is not None:
            busy.terminate()
            busy.wait(timeout=10)
    for name, runs in got.items():
        print(f"{'Train-page job, ' + name:60}  {statistics.median(s for s, _, _ in runs):,.0f} samples/s "
              f"(median of {len(runs)} rounds; wall {', '.join(f'{w:.0f} s' for _, w, _ in runs)}; "
              f"load before each {', '.join(ld for _, _, ld in runs)})")
    print(f"# load {load()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
