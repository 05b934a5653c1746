"""The trainer: `fit(model, train, eval, cfg, progress=None) -> History`.

Data sits in memory as one tensor and is batched by a random permutation each epoch: no
per-item Dataset/DataLoader overhead (see benchmarks/train_throughput.py for the measured gain).
`train_step` is a plain function of (model, batch, optimiser, weights); under torchrun the model is
a DistributedDataParallel wrapper and `fit` calls the hooks of a `vae_core.distributed` group (the
shard of each epoch, the sums over ranks): see that module.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from . import losses
from .config import TrainConfig
from .data import Dataset
from .devices import native_bf16
from .distributed import Single
from .models import VAE
from .progress import Progress, ProgressFn, report

log = logging.getLogger(__name__)


@dataclass
class History:
    """One row per finished epoch (the columns of history.csv) and why training stopped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped_reason: str | None = None  # None: ran all epochs; else cancelled or non-finite loss
    completed: bool = False  # True when every epoch ran

    @property
    def last(self) -> dict[str, Any] | None:
        return self.rows[-1] if self.rows else None


def _autocast(enabled: bool, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


def train_step(model: VAE | torch.nn.Module, xb: torch.Tensor, opt: torch.optim.Optimizer, beta: float,
               free_bits: float, bf16: bool = False) -> losses.LossTerms:
    """One optimiser step on batch xb (B, C, H, W); returns the batch's loss terms (detached).

    model: a VAE, or a DistributedDataParallel wrapping one (its forward averages the gradients).
    """
    with _autocast(bf16, xb.device):
        logits, mu, logvar = model(xb)
    vae = getattr(model, "module", model)
    # the loss in fp32: BCE/KL sums over 784 pixels lose too much in bf16
    terms = losses.elbo_loss(vae.nll_from_logits(xb, logits.float()),
                             losses.kl_per_dim(mu.float(), logvar.float()), beta, free_bits)
    opt.zero_grad(set_to_none=True)
    terms.loss.backward()
    opt.step()
    return losses.LossTerms(*(t.detach() for t in (terms.loss, terms.recon_nll, terms.kl, terms.kl_per_dim)))


@torch.inference_mode()
def evaluate(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> dict[str, Any]:
    """Mean over x of the one-sample ELBO and its terms, and KL per dimension (nats)."""
    was_training = model.training
    model.eval()
    n = x.shape[0]
    recon = torch.zeros((), dtype=torch.float64)
    kl_dims = torch.zeros(model.latent_dim, dtype=torch.float64)
    for i in range(0, n, batch_size):
        xb = x[i:i + batch_size]
        mu, logvar = model.encode(xb)
        z = model.reparameterize(mu, logvar)
        recon += model.nll(xb, z).double().sum()
        kl_dims += losses.kl_per_dim(mu, logvar).double().sum(0)
    model.train(was_training)
    recon_m, kl_dims = float(recon / n), kl_dims / n
    kl = float(kl_dims.sum())
    return {"elbo": -(recon_m + kl), "recon_nll": recon_m, "kl": kl, "kl_per_dim": kl_dims.tolist()}


def fit(model: VAE, train: Dataset, eval: Dataset | None, cfg: TrainConfig,
        progress: ProgressFn | None = None, group: Single | None = None) -> History:
    """Train `model` in place on `train`, evaluating on `eval` after every epoch.

    progress (see vae_core.progress) receives a "step" event after every optimiser step (info:
    epoch, step, total_steps, loss, kl, beta) and an "epoch" event after every epoch (info: the
    history row); returning True stops training with stopped_reason "cancelled ...": during an
    epoch the weights of the last finished epoch are restored, after one they are kept. A NaN/Inf
    loss stops it too, with the last good epoch's weights restored and the reason saying why.

    The model trains on its own device; the data is moved there once. group (vae_core.distributed)
    is this process's place in a torchrun job (None: one process); then every rank calls fit with
    the same data and config and its model on its device, and passes eval and progress on rank 0
    only. Under a group a stop found during an epoch takes effect at the epoch's end, on every rank.
    """
    group = group or Single()
    device = next(model.parameters()).device
    if cfg.bf16 and not native_bf16(device):
        log.warning("bf16 requested, but %s has no native bfloat16 (a CPU needs AVX512-BF16 or AMX, a GPU Ampere "
                    "or newer): it is emulated and much slower than fp32 here; train without bf16", device.type)
    torch.manual_seed(cfg.seed + group.rank)  # each rank its own noise for z; rank 0 draws a single run's
    loop = _Loop(model, train.x.to(device), cfg, progress, group)
    x_eval = eval.x.to(device) if eval is not None and len(eval) else None
    history = History()
    good_state = copy.deepcopy(model.state_dict())
    model.train()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        sums, stop = loop.epoch(epoch)
        *sums, n, stopping = group.sum([*sums, float(loop.n), float(stop is not None)])  # over all ranks
        if stopping:  # a non-finite loss or a cancel during the epoch, on this rank or another
            model.load_state_dict(good_state)
            return _stopped(history, stop or f"the loss became non-finite in epoch {epoch} on another rank; "
                                              f"kept the weights of epoch {epoch - 1}")
        means = (sums[0] / n, sums[1] / n, sums[2] / n, loop.beta)
        row = _epoch_row(model, x_eval, epoch, means, time.perf_counter() - t0, int(n))
        if not all(math.isfinite(row[k]) for k in ("loss", "recon_nll", "kl")):
            model.load_state_dict(good_state)
            return _stopped(history, f"the loss became non-finite in epoch {epoch}; "
                                     f"kept the weights of epoch {epoch - 1}")
        history.rows.append(row)
        good_state = copy.deepcopy(model.state_dict())
        log.info("epoch %d loss %.2f kl %.2f eval_elbo %.2f", epoch, row["loss"], row["kl"], row["eval_elbo"])
        if group.any(report(progress, Progress("epoch", epoch, cfg.epochs, epoch / cfg.epochs, row))):
            return _stopped(history, f"cancelled after epoch {epoch}")
    history.completed = True
    return history


def _stopped(history: History, reason: str) -> History:
    history.stopped_reason = reason
    log.info("training stopped: %s", reason)
    return history


def _floats(terms: losses.LossTerms) -> tuple[float, float, float]:
    """(loss, recon_nll, kl) as Python floats: on a GPU one copy to the host (one wait), on the CPU
    three .item() calls, which cost less than the small tensor op that would gather them."""
    if terms.loss.device.type == "cpu":
        return terms.loss.item(), terms.recon_nll.item(), terms.kl.item()
    loss, recon, kl = torch.stack((terms.loss, terms.recon_nll, terms.kl)).tolist()
    return loss, recon, kl


class _Loop:
    """The optimiser steps of `fit`, one epoch at a time: the data (N, C, H, W) on the model's device,
    a seeded batch order (this rank's shard of it), the KL weight schedule and the step count across epochs."""

    def __init__(self, model: VAE, x: torch.Tensor, cfg: TrainConfig, progress: ProgressFn | None,
                 group: Single):
        self.net = group.wrap(model)  # what the steps go through: the model, or DDP around it
        self.x, self.cfg, self.progress, self.group = x, cfg, progress, group
        self.gen = torch.Generator().manual_seed(cfg.seed)  # the same permutations on every rank
        self.n = group.shard_size(x.shape[0])  # items this rank takes each epoch
        self.bs = group.per_rank(min(cfg.batch_size, x.shape[0]))
        self.steps_per_epoch = math.ceil(self.n / self.bs)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        # fused Adam: one kernel per step for all parameters (measurably faster on CPU)
        self.opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True)
        self.step = 0
        self.beta = 0.0  # the KL weight of the last step

    def epoch(self, epoch: int) -> tuple[list[float], str | None]:
        """Run one epoch: this rank's (loss, recon_nll, kl) summed over its samples, and why it stopped (None).

        One process stops at once. A rank of a group notes why and finishes the epoch, since every
        rank must take the same steps (DDP's gradient average carries a NaN to all of them); fit
        then stops them together.
        """
        cfg, bs, solo = self.cfg, self.bs, self.group.world_size == 1
        perm = self.group.shard(torch.randperm(self.x.shape[0], generator=self.gen)).to(self.x.device)
        sums = [0.0, 0.0, 0.0]  # loss, recon, kl summed over the epoch's samples
        stop: str | None = None
        for b in range(self.steps_per_epoch):
            idx = perm[b * bs:(b + 1) * bs]
            self.beta = losses.kl_weight(self.step / max(self.total_steps, 1), cfg.beta, cfg.kl_schedule,
                                         warmup_fraction=cfg.warmup_fraction, beta_start=cfg.beta_start,
                                         cycles=cfg.cycles, ramp_fraction=cfg.ramp_fraction)
            terms = train_step(self.net, self.x[idx], self.opt, self.beta, cfg.free_bits, cfg.bf16)
            loss_b, recon_b, kl_b = _floats(terms)
            if not math.isfinite(loss_b) and stop is None:
                kept = f"kept the weights of epoch {epoch - 1}" if epoch > 1 else "no epoch finished"
                stop = (f"the loss became {loss_b} at epoch {epoch}, step {b + 1}; {kept}. "
                        "Try a lower learning rate (--lr) or a larger Gaussian scale.")
                if solo:
                    return sums, stop
            nb = idx.numel()
            sums[0] += loss_b * nb
            sums[1] += recon_b * nb
            sums[2] += kl_b * nb
            self.step += 1
            if self.progress is None:
                continue
            info = {"epoch": epoch, "step": self.step, "total_steps": self.total_steps, "loss": loss_b,
                    "kl": kl_b, "beta": self.beta}
            if report(self.progress, Progress("step", self.step, self.total_steps,
                                              self.step / self.total_steps, info)) and stop is None:
                stop = f"cancelled during epoch {epoch}; kept the weights of epoch {epoch - 1}"
                if solo:
                    return sums, stop
        return sums, stop


def _epoch_row(model: VAE, x_eval: torch.Tensor | None, epoch: int, means: tuple[float, float, float, float],
               seconds: float, n: int) -> dict[str, Any]:
    """The history.csv row of a finished epoch: training means, held-out ELBO terms, timing, eval KL per dim."""
    loss, recon, kl, beta = means
    row: dict[str, Any] = {"epoch": epoch, "loss": loss, "recon_nll": recon, "kl": kl, "beta": beta}
    if x_eval is not None:
        ev = evaluate(model, x_eval)
        row.update(eval_elbo=ev["elbo"], eval_recon_nll=ev["recon_nll"], eval_kl=ev["kl"])
        kl_dims = ev["kl_per_dim"]
    else:
        row.update(eval_elbo=float("nan"), eval_recon_nll=float("nan"), eval_kl=float("nan"))
        kl_dims = [float("nan")] * model.latent_dim
    row.update(seconds=seconds, samples_per_s=n / seconds)
    row.update({f"kl_dim_{j}": v for j, v in enumerate(kl_dims)})  # eval KL per dim: the collapse heatmap
    return row
