"""How long `diagnose` takes: the full report on 1,000 MNIST points with k = 100, per part and total.

Target: <= 5 s for a 784-400-20 MLP. Uses the shipped default run (`runs/default`) when it and
`vae_core.checkpoints.load_model` exist, else a freshly initialised VAE(ModelConfig()) (same
architecture, so the same cost; the numbers are meaningless, the time is not).
Run from the repo root: python -m benchmarks.diagnose_speed [--k 100] [--n 1000] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from vae_core import VAE, ModelConfig
from vae_core.data import load_dataset
from vae_core.metrics import diagnose

RUN = Path(__file__).resolve().parents[1] / "runs" / "default"


def load() -> tuple[object, str]:
    """The default run's model if it can be loaded, else a fresh 784-400-20 VAE."""
    try:
        from vae_core.checkpoints import load_model

        if RUN.exists():
            return load_model(RUN), f"runs/default ({RUN})"
        reason = f"{RUN} does not exist"
    except ImportError as e:
        reason = f"vae_core.checkpoints.load_model unavailable ({e})"
    torch.manual_seed(0)
    return VAE(ModelConfig()), f"freshly initialised VAE(ModelConfig()) 784-400-20 mlp; {reason}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=100, help="IWAE samples per point")
    ap.add_argument("--n", type=int, default=1000, help="evaluation points")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, which = load()
    model.eval()
    data = load_dataset("mnist")
    print(f"model: {which}")
    print(f"data: mnist, {len(data)} images; threads: {torch.get_num_threads()}")
    load_before = os.getloadavg()[0]
    t, cpu = time.perf_counter(), time.process_time()
    rep = diagnose(model, data, n_points=args.n, iwae_k=args.k)
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"diagnose on {rep.n_points} points, iwae_k={rep.iwae_k}:")
    for part, sec in rep.timings.items():
        print(f"  {part:<12s} {sec:7.3f} s")
    print(f"  {'wall':<12s} {wall:7.3f} s  (target <= 5 s)")
    print(f"  {'cpu':<12s} {cpu:7.3f} s  (all threads; 1-min load average before: {load_before:.1f} "
          f"on {os.cpu_count()} cores, so other processes may share them)")
    print(f"elbo {rep.elbo:.2f}  iwae {rep.iwae:.2f}  kl {rep.kl:.2f}  active units {rep.active_units}"
          f"  MI {rep.mutual_info:.3f} / {rep.mutual_info_max:.3f}")


if __name__ == "__main__":
    main()
