"""Decode latency through the model worker (`vae_core.sandbox.RemoteModel`) vs the same TorchScript in-process.

For the shipped MLP (`runs/default`, exported with `export_torchscript`) and a small conv VAE
(random weights: the time is what counts), decode one z and a batch of 64, N calls each, the
worker and in-process calls interleaved so both see the same machine load. Prints median and
p90 in microseconds and the ratio worker / in-process of the medians, with the load average.
Target: ratio <= 1.3 for the conv decode of one z (the server path of the Explore page).
Run from the repo root: python -m benchmarks.worker_latency [--n 300] [--threads N]
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
from vae_core import VAE, ModelConfig
from vae_core.runs.model_files import export_torchscript
from vae_core.runs.run_load import load_run
from vae_core.sandbox import RemoteModel

RUN = REPO / "runs" / "default"


def _models(tmp: Path) -> list[tuple[str, Path, tuple[int, int, int]]]:
    out = []
    if RUN.exists():
        m = load_run(RUN).model
        out.append(("mlp runs/default 784-400-16", export_torchscript(m, tmp / "mlp.ts"), m.input_shape))
    torch.manual_seed(0)
    conv = VAE(ModelConfig(arch="conv", latent_dim=16, hidden=(256,), conv_channels=(32, 64))).eval()
    out.append(("conv 1x28x28, 32-64 ch, fc 256, D=16", export_torchscript(conv, tmp / "conv.ts"), conv.input_shape))
    return out


def _stats(ts: list[float]) -> tuple[float, float]:
    ts = sorted(ts)
    return statistics.median(ts) * 1e6, ts[int(0.9 * (len(ts) - 1))] * 1e6


def bench(remote: RemoteModel, local, z: torch.Tensor, n: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(median, p90) of (worker, in-process) decode(z), in microseconds, interleaved."""
    tw, tl = [], []
    with torch.inference_mode():
        for _ in range(20):  # warm-up: the TorchScript profiling executor optimises after a few runs
            remote.decode(z)
            local.decode(z)
        for _ in range(n):
            t0 = time.perf_counter()
            remote.decode(z)
            t1 = time.perf_counter()
            local.decode(z)
            t2 = time.perf_counter()
            tw.append(t1 - t0)
            tl.append(t2 - t1)
    return _stats(tw), _stats(tl)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="calls per measurement")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (the worker gets the same)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; n = {a.n}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, path, shape in _models(Path(tmp)):
            remote = RemoteModel(path, shape)
            local = torch.jit.load(str(path), map_location="cpu").eval()
            print(f"\n{label}  [{remote.protection}]")
            print(f"  {'batch':>5}  {'worker median':>13}  {'p90':>8}  {'in-process median':>17}  {'p90':>8}  ratio")
            for b in (1, 64):
                z = torch.randn(b, remote.latent_dim, generator=torch.Generator().manual_seed(b))
                (wm, w90), (lm, l90) = bench(remote, local, z, a.n)
                print(f"  {b:>5}  {wm:>10.0f} us  {w90:>5.0f} us  {lm:>14.0f} us  {l90:>5.0f} us  {wm / lm:.2f}")
            remote.close()
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
