"""What a model worker costs over its life: start (load + probe), memory beside its scratch keeper,
release (close), and the first decode after a release (the lazy restart a returning session waits for).

The shipped MLP (`runs/default`, exported with `export_torchscript`) in its worker, N rounds.
Prints medians in seconds, the worker's and the keeper's resident memory (VmRSS, MB) and the
load average. Run from the repo root: python -m benchmarks.worker_lifecycle [--n 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import REPO
from vae_core.runs.model_files import export_torchscript
from vae_core.runs.run_load import load_run
from vae_core.sandbox import RemoteModel

RUN = REPO / "runs" / "default"


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return kb / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5, help="rounds")
    a = ap.parse_args()
    model = load_run(RUN).model
    z = torch.zeros(1, model.latent_dim)
    start, close, restart, rss_w, rss_k = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = export_torchscript(model, Path(tmp) / "mlp.ts")
        for _ in range(a.n):
            t0 = time.perf_counter()
            m = RemoteModel(path, model.input_shape)
            start.append(time.perf_counter() - t0)
            rss_w.append(_rss_mb(m._worker.proc.pid))
            rss_k.append(_rss_mb(m._worker.keeper.pid))
            t0 = time.perf_counter()
            m.close()
            close.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.inference_mode():
                m.decode(z)
            restart.append(time.perf_counter() - t0)
            m.close()
    med = statistics.median
    print(f"runs/default in its worker, {a.n} rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"  start (load + probe)      {med(start):6.2f} s")
    print(f"  close                     {med(close):6.2f} s")
    print(f"  first decode after close  {med(restart):6.2f} s (the worker restarts)")
    print(f"  memory: worker {med(rss_w):.0f} MB, scratch keeper {med(rss_k):.1f} MB (VmRSS)")


if __name__ == "__main__":
    main()
