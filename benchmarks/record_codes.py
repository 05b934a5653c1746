"""What recording the latent space learning costs (`train --record-codes N`, vae_core.runs.epoch_codes).

Trains the shipped run's architecture (784-400-16 MLP, Bernoulli) on mnist's training split for
`--epochs` epochs twice from the same seed, without and with a CodeRecorder of N held-out points
(alternating, so load from other processes hits both alike), and prints each epoch's seconds,
the recorder's seconds per epoch (its own calls, timed), the file's size per epoch, and whether
the weights came out identical (recording draws no random numbers).

    python -m benchmarks.record_codes [--points 500] [--epochs 3] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import load_dataset
from vae_core.runs.epoch_codes import CodeRecorder, epoch_sample
from vae_core.models import VAE
from vae_core.progress import fan_out
from vae_core.train import fit


class _Timed:
    """A progress consumer that times another one's calls."""

    def __init__(self, inner: CodeRecorder):
        self.inner, self.seconds = inner, []

    def __call__(self, event) -> bool:
        t = time.perf_counter()
        out = self.inner(event)
        if event.what == "epoch":
            self.seconds.append(time.perf_counter() - t)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    data = load_dataset("mnist")
    cfg = TrainConfig(epochs=a.epochs, seed=0)
    train, ev = data.split(cfg.eval_fraction, cfg.seed)
    mcfg = ModelConfig(input_shape=data.shape, latent_dim=16, hidden=(400,))
    epoch_s = {False: [], True: []}
    record_s: list[float] = []
    weights = {}
    for _ in range(a.rounds):
        for record in (False, True):
            torch.manual_seed(cfg.seed)
            model = VAE(mcfg)
            timed = None
            if record:
                idx = epoch_sample(len(ev), ev.y, cfg.seed, size=min(a.points, len(ev)))
                rec = CodeRecorder(model, ev.subset(idx).x, idx)
                rec.record(0)
                timed = _Timed(rec)
            hist = fit(model, train, ev, cfg, progress=fan_out(timed))
            epoch_s[record] += [r["seconds"] for r in hist.rows]
            if timed is not None:
                record_s += timed.seconds
                with tempfile.TemporaryDirectory() as d:
                    size = os.path.getsize(rec.save(d))
            weights[record] = {k: v.clone() for k, v in model.state_dict().items()}
    same = all(torch.equal(weights[False][k], weights[True][k]) for k in weights[False])
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}; {len(train):,} training digits, {a.epochs} epochs x {a.rounds} rounds")
    print(f"epoch without recording: median {statistics.median(epoch_s[False]):.3f} s")
    print(f"epoch with recording:    median {statistics.median(epoch_s[True]):.3f} s (the epoch's own time; "
          "the recorder runs after it)")
    print(f"recording {a.points} points: median {1e3 * statistics.median(record_s):.1f} ms per epoch "
          f"({100 * statistics.median(record_s) / statistics.median(epoch_s[False]):.1f}% of an epoch)")
    print(f"epoch_codes.npz: {size:,} bytes for {a.epochs + 1} recorded epochs "
          f"({size / (a.epochs + 1) / 1e3:.1f} kB per epoch)")
    print(f"weights identical with and without recording: {same}")


if __name__ == "__main__":
    main()
