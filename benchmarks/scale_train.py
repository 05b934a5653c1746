"""Training samples/s: one process against torchrun with 2 processes (gloo, DistributedDataParallel).

Both run the same command, `python -m vae_core train` on the 4,000-digit training split of `mnist`,
784-400-20 MLP, batch 128 (64 per rank under torchrun), in alternating rounds so that other work on
the machine hits both alike. A figure is the median over rounds of the median over epochs 2.. of
history.csv's samples_per_s (epoch 1 holds the warm-up); the held-out ELBO after the last epoch is
printed beside it, to show the two train the same model. torchrun gives each process one thread
(OMP_NUM_THREADS=1, its default); the single process runs both with one thread and with torch's
default (one per core), since on a busy machine more threads can be slower. Where a CUDA GPU is
present, its train samples/s and a diagnose's time are added, with the card named.

    python -m benchmarks.scale_train [--quick]
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

import torch

from benchmarks.browser import free_port as _port
from benchmarks.common import REPO, load, print_figures

CONFIG = ["--data", "mnist", "--hidden", "400", "--latent-dim", "20", "--batch-size", "128", "--quiet"]


def _load() -> str:
    return f"load {load()}"


def _train(out: Path, epochs: int, procs: int, device: str = "cpu", threads: int | None = 1
           ) -> tuple[float, float, float, str]:
    """(median samples/s over epochs 2.., last held-out ELBO, wall seconds of the command, load before it);
    threads per process (None: torch's default)."""
    cmd = ["-m", "vae_core", "train", *CONFIG, "--epochs", str(epochs), "--device", device, "--out", str(out)]
    if procs > 1:
        cmd = ["-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-port", str(_port()), *cmd]
    load = _load()
    t0 = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    subprocess.run([sys.executable, *cmd], cwd=REPO, check=True, capture_output=True,
                   env=env if threads is None else {**env, "OMP_NUM_THREADS": str(threads)})
    wall = time.perf_counter() - t0
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    speeds = [float(r["samples_per_s"]) for r in rows[1:]] or [float(rows[0]["samples_per_s"])]
    return statistics.median(speeds), float(rows[-1]["eval_elbo"]), wall, load


def _side_by_side(tmp: Path, epochs: int, rounds: int) -> list[tuple[str, str]]:
    variants = {"1 process, 1 thread": (1, 1), f"1 process, {torch.get_num_threads()} threads": (1, None),
                "torchrun 2 processes x 1 thread (gloo)": (2, 1)}
    got: dict[str, list[tuple[float, float, float, str]]] = {name: [] for name in variants}
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))  # alternate who goes first
        for i, name in enumerate(order):
            procs, threads = variants[name]
            got[name].append(_train(tmp / f"v{i}-r{r}", epochs, procs, threads=threads))
    rows, speed = [], {name: statistics.median(g[0] for g in runs) for name, runs in got.items()}
    for name, runs in got.items():
        rows.append((f"train samples/s, {name}",
                     f"{speed[name]:,.0f} (held-out ELBO {runs[-1][1]:.2f}; command {runs[-1][2]:.1f} s; "
                     f"{', '.join(g[3] for g in runs)})"))
    best = max(v for k, v in speed.items() if k.startswith("1 process"))
    rows.append(("train samples/s, torchrun 2 / best 1 process",
                 f"{speed[list(variants)[-1]] / best:.2f}x on {os.cpu_count()} CPUs ({_load()}); the two processes "
                 "share these cores with each other and with other work, so little gain is expected here"))
    return rows


def _gpu(tmp: Path, epochs: int) -> list[tuple[str, str]]:
    if not torch.cuda.is_available():
        return [("GPU", "none on this machine (torch.cuda.is_available() is False)")]
    card = torch.cuda.get_device_name(0)
    speed, elbo, wall, load = _train(tmp / "gpu", epochs, 1, "cuda")
    rows = [(f"train samples/s, {card}", f"{speed:,.0f} (held-out ELBO {elbo:.2f}; command {wall:.1f} s; {load})")]
    for device in ("cpu", "cuda"):
        load = _load()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "vae_core", "diagnose", str(tmp / "gpu"), "--data", "mnist",
                        "--device", device, "--n-points", "1000", "--iwae-k", "100", "--json", "--quiet"],
                       cwd=REPO, check=True, capture_output=True)
        rows.append((f"diagnose 1000 points, k=100, {card if device == 'cuda' else 'CPU'}",
                     f"{time.perf_counter() - t0:.1f} s, command included ({load})"))
    return rows


def run(quick: bool) -> list[tuple[str, str]]:
    """The figures as (figure, value) rows; quick: fewer epochs and one round."""
    epochs, rounds = (3, 1) if quick else (6, 2)
    with tempfile.TemporaryDirectory() as tmp:
        return _side_by_side(Path(tmp), epochs, rounds) + _gpu(Path(tmp), epochs)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 epochs, one round")
    args = ap.parse_args()
    print(f"# {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}, {_load()} at the start")
    print_figures(run(args.quick), 56)
