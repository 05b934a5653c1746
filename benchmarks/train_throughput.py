"""Training throughput: vae_core's trainer against the textbook PyTorch VAE loop.

The textbook loop is pytorch/examples `vae/main.py`: a torch `Dataset` over the arrays, a
`DataLoader(shuffle=True, batch_size=128)`, a 784-400-20 MLP with a sigmoid output,
`F.binary_cross_entropy(reduction='sum')` + KL, Adam 1e-3, `loss.item()` every step.
Ours is `vae_core.train.fit` on the same 784-400-20 model: in-memory permutation batching,
BCE with logits, fused Adam, no per-step sync; in fp32 and with bf16 autocast (`--bf16`).

Same data (the 4,000-digit training split of `mnist`), same process, alternating rounds so
that load from other processes hits all three alike; samples/s is the median over rounds.
Then each variant trains `--final-epochs` epochs from the same initial weights and is scored on
the 1,000 held-out digits with the same evaluation, to show bf16 reaches the same loss.

    python -m benchmarks.train_throughput [--rounds 5] [--epochs 2] [--final-epochs 10] [--threads 1]

Measured here (AVX2 CPU, no native bf16, 1 thread, load average 5-6 on 2 cpus), per CPU-second:
textbook 11.6k, ours fp32 15.9k (1.37x), ours bf16 2.0k (0.17x: bf16 is emulated without
AVX512-BF16/AMX). Our fp32 step is compute-bound: matmuls are ~70% of it at ~72 GFLOP/s, near
one AVX2 core's peak, so the gain over the textbook loop is its DataLoader and unfused-Adam
overhead. After 10 epochs from the same weights, bf16 and fp32 held-out ELBO differ by 0.1 nats.
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from vae_core import ModelConfig, TrainConfig, VAE
from vae_core.data import load_dataset
from vae_core.train import evaluate, fit, native_bf16

LATENT, HIDDEN, BATCH, LR = 20, 400, 128, 1e-3


# --------------------------------------------------------------- the textbook loop (pytorch/examples)

class ArrayDataset(torch.utils.data.Dataset):
    """One item per index, as torchvision's MNIST gives them: (image, label)."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int):
        return self.x[i], 0


class TextbookVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, LATENT)
        self.fc22 = nn.Linear(HIDDEN, LATENT)
        self.fc3 = nn.Linear(LATENT, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def textbook_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def textbook_train(model: TextbookVAE, x: torch.Tensor, epochs: int, seed: int) -> float:
    """pytorch/examples vae/main.py's train(); returns the last epoch's mean loss per sample."""
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(ArrayDataset(x), batch_size=BATCH, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    train_loss = 0.0
    for _ in range(epochs):
        train_loss = 0.0
        for data, _ in loader:
            opt.zero_grad()
            recon, mu, logvar = model(data)
            loss = textbook_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            opt.step()
    return train_loss / len(x)


# ------------------------------------------------------------------------------ same initial weights

def to_ours(tb: TextbookVAE) -> VAE:
    """vae_core's VAE with the textbook model's weights (the two compute the same function)."""
    m = VAE(ModelConfig(input_shape=(1, 28, 28), latent_dim=LATENT, hidden=(HIDDEN,)))
    with torch.no_grad():
        m.encoder[1].weight.copy_(tb.fc1.weight)
        m.encoder[1].bias.copy_(tb.fc1.bias)
        m.enc_out.weight.copy_(torch.cat([tb.fc21.weight, tb.fc22.weight]))
        m.enc_out.bias.copy_(torch.cat([tb.fc21.bias, tb.fc22.bias]))
        m.decoder[0].weight.copy_(tb.fc3.weight)
        m.decoder[0].bias.copy_(tb.fc3.bias)
        m.decoder[2].weight.copy_(tb.fc4.weight)
        m.decoder[2].bias.copy_(tb.fc4.bias)
    return m


def held_out_elbo(model: VAE, x_eval: torch.Tensor) -> float:
    torch.manual_seed(1234)  # the same posterior samples for every variant
    return evaluate(model, x_eval)["elbo"]


# ------------------------------------------------------------------------------------------- run

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per variant per round")
    ap.add_argument("--final-epochs", type=int, default=10, help="epochs for the same-loss comparison")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for every variant; 1 by default because on a shared machine two "
                    "OpenMP threads collapse when another process takes a core (measured: 10-20x slower)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    data = load_dataset("mnist")
    train, ev = data.split(0.2, 0)
    x, x_eval = train.x, ev.x
    n = x.shape[0]
    torch.manual_seed(0)
    init = TextbookVAE()

    def timed(fn, *args):
        """(result, wall seconds, CPU seconds of this process)."""
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn(*args)
        return out, time.perf_counter() - w0, time.process_time() - c0

    def ours(bf16: bool, epochs: int, m: VAE) -> VAE:
        cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, eval_fraction=0.0, seed=0, bf16=bf16)
        h = fit(m, train, None, cfg)
        if not h.completed:
            print(f"note: training stopped early: {h.stopped_reason}")
        return m

    def textbook(epochs: int, m: TextbookVAE) -> TextbookVAE:
        textbook_train(m, x, epochs, seed=0)
        return m

    print(f"mnist: {n} training digits, 784-{HIDDEN}-{LATENT} MLP, batch {BATCH}, Adam {LR}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} cpus, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {native_bf16()}")
    if not native_bf16():
        print("note: no native bfloat16 on this CPU (needs AVX512-BF16 or AMX): bf16 is emulated, expect it slow")
    logging.getLogger("vae_core.train").setLevel(logging.ERROR)  # its bf16 warning is the note above
    def fresh(k: str):
        """The variant's model with the shared initial weights, built outside the timed region."""
        return copy.deepcopy(init) if k == "textbook" else to_ours(init)

    # warm-up: first-call allocations and kernel selection
    ours(False, 1, fresh("ours")), ours(True, 1, fresh("ours")), textbook(1, fresh("textbook"))
    variants = {"textbook": (textbook,), "ours fp32": (ours, False), "ours bf16": (ours, True)}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    loads = [os.getloadavg()[0]]
    for r in range(a.rounds):
        for k, (fn, *args) in variants.items():
            _, w, c = timed(fn, *args, a.epochs, fresh(k))
            wall[k].append(n * a.epochs / w)
            cpu[k].append(n * a.epochs / c)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}: " + ", ".join(f"{k} {wall[k][-1]:,.0f} ({cpu[k][-1]:,.0f} per CPU-s)" for k in variants)
              + f" samples/s; load avg {loads[-1]:.2f}")

    # Wall-clock rates suffer whatever else the machine runs; with one thread, samples per CPU-second
    # of this process is close to what a quiet core gives. Ratios within a round compare runs
    # seconds apart, under about the same outside load.
    print(f"\n{'variant':<12s} {'wall samples/s':>15s} {'(min-max)':>15s} {'per CPU-s':>10s} "
          f"{'wall ratio':>11s} {'CPU ratio':>10s} {'target':>7s}")
    for k in variants:
        target = {"ours fp32": ">=1.5x", "ours bf16": ">=2x"}.get(k, "")
        w_ratio = statistics.median(a_ / b for a_, b in zip(wall[k], wall["textbook"]))
        c_ratio = statistics.median(a_ / b for a_, b in zip(cpu[k], cpu["textbook"]))
        print(f"{k:<12s} {statistics.median(wall[k]):15,.0f} {f'{min(wall[k]):,.0f}-{max(wall[k]):,.0f}':>15s} "
              f"{statistics.median(cpu[k]):10,.0f} {w_ratio:10.2f}x {c_ratio:9.2f}x {target:>7s}")
    print(f"(medians over {a.rounds} rounds of {a.epochs} epochs; ratios are medians of per-round ratios to textbook)")
    print(f"load average (1 min) during rounds: {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} cpus")

    # same init, same number of epochs: does each reach the same loss?
    e = a.final_epochs
    tb, m32, m16 = textbook(e, fresh("textbook")), ours(False, e, fresh("ours")), ours(True, e, fresh("ours"))
    scores = {k: (_train_loss(m, x), held_out_elbo(m, x_eval))
              for k, m in (("textbook", to_ours(tb)), ("ours fp32", m32), ("ours bf16", m16))}
    print(f"\nafter {e} epochs from the same initial weights (nats per digit):")
    print(f"{'variant':<12s} {'train -ELBO':>12s} {'held-out ELBO':>14s}")
    for k, (tl, he) in scores.items():
        print(f"{k:<12s} {tl:12.2f} {he:14.2f}")
    d16 = scores["ours bf16"][1] - scores["ours fp32"][1]
    dtb = scores["ours fp32"][1] - scores["textbook"][1]
    print(f"held-out ELBO, bf16 minus fp32: {d16:+.2f} nats ({abs(d16) / abs(scores['ours fp32'][1]):.2%}); "
          f"ours fp32 minus textbook (different batch order only): {dtb:+.2f} nats")


def _train_loss(model: VAE, x: torch.Tensor) -> float:
    """-ELBO on the training digits, evaluated in fp32 with fixed samples (comparable across variants)."""
    torch.manual_seed(1234)
    return -evaluate(model, x)["elbo"]


if __name__ == "__main__":
    main()
