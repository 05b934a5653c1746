"""Training on several processes with PyTorch's own engine: torchrun and DistributedDataParallel.

`python -m vae_core train` started by torchrun (WORLD_SIZE > 1 in the environment) trains one
model. Every rank holds the data and draws the same seeded permutation each epoch, then takes its
own slice of it (a disjoint shard); its batch is batch_size / world_size, so one optimiser step
sees a global batch of batch_size, as a single process does, and DDP averages the gradients.
Rank 0 alone evaluates, writes the run and reports progress.

`fit` calls the hooks of a `Single` (one process: they do nothing) or of a `Torchrun` group;
nothing else in the trainer knows about ranks.
"""
from __future__ import annotations

import datetime
import logging
import os
from typing import Callable, Mapping, TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")
CLOSE_WAIT_S = 60  # how long a leaving rank waits for the others (a rank that died never comes)
log = logging.getLogger(__name__)


class Stopped(Exception):
    """This rank stops because another one failed and said why; it exits quietly."""


class Single:
    """One process: the whole permutation, the whole batch, nothing to reduce."""

    rank = 0
    world_size = 1
    local_rank: int | None = None

    @property
    def is_main(self) -> bool:
        """True on the rank that evaluates, writes the run and reports progress."""
        return self.rank == 0

    def start(self) -> "Single":
        """Join the process group (nothing to join here); returns self."""
        return self

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the optimiser steps go through (DDP under torchrun)."""
        return model

    def shard_size(self, n: int) -> int:
        """How many of n training items this rank takes each epoch; ValueError when none."""
        if n // self.world_size < 1:
            raise ValueError(f"{n} training items cannot be shared among {self.world_size} processes; start fewer "
                             "processes or train on more data")
        return n // self.world_size

    def shard(self, perm: torch.Tensor) -> torch.Tensor:
        """This rank's part of an epoch's permutation (N,) of the training items."""
        return perm

    def per_rank(self, batch_size: int) -> int:
        """This rank's batch for a global batch of batch_size."""
        return batch_size

    def sum(self, values: list[float]) -> list[float]:
        """The values summed over all ranks."""
        return list(values)

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank's flag is."""
        return flag

    def agree(self, fn: Callable[[], T]) -> T:
        """fn() on every rank; where any rank fails, the lowest failing rank raises its error and the
        others raise Stopped, so a failure is one sentence, not one per rank."""
        return fn()

    def close(self) -> None:
        """Leave the process group (nothing to leave here)."""


class Torchrun(Single):
    """A rank of a torchrun job: gloo for CPU tensors, NCCL for CUDA tensors where CUDA is present."""

    def __init__(self, rank: int, world_size: int, local_rank: int):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank

    def start(self) -> "Torchrun":
        # Both backends where CUDA exists: DDP's gradients go over NCCL on the GPU, while the small
        # CPU tensors of `agree`, `sum` and `any` take gloo, so they work before a rank has its GPU.
        cuda = torch.cuda.is_available() and dist.is_nccl_available()
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if cuda else "gloo")
        return self

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        dev = next(model.parameters()).device
        # no buffer broadcast before every step: the only buffer (a fixed Gaussian scale) never changes,
        # and DDP copies rank 0's parameters and buffers to every rank when it wraps the model
        return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                       forward_sync_buffers=False)

    def shard(self, perm: torch.Tensor) -> torch.Tensor:
        # every rank the same number of items, so every rank takes the same number of steps; the last
        # N mod world_size items of this permutation sit out this epoch (the next one draws others)
        return perm[self.rank:self.shard_size(perm.shape[0]) * self.world_size:self.world_size]

    def per_rank(self, batch_size: int) -> int:
        each = max(1, batch_size // self.world_size)
        if each * self.world_size != batch_size and self.is_main:
            log.warning("a batch of %d does not divide among %d processes: each takes %d items per step, a "
                        "global batch of %d", batch_size, self.world_size, each, each * self.world_size)
        return each

    def sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def agree(self, fn: Callable[[], T]) -> T:
        error: Exception | None = None
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - every rank must reach the all_reduce below
            error = e
        failed = torch.zeros(self.world_size)
        failed[self.rank] = error is not None
        dist.all_reduce(failed)
        first = int(failed.nonzero()[0]) if failed.any() else None
        if first is None:
            return result
        if first == self.rank:
            raise error  # type: ignore[misc]
        raise Stopped(f"rank {first} failed")

    def close(self) -> None:
        if not dist.is_initialized():
            return
        # Every rank reaches this point before any tears its group down: a rank that destroyed its group
        # and exited while another was still leaving its last collective was seen to abort that rank
        # (SIGABRT, "terminate called without an active exception") after the run was written. A rank
        # that never comes (it died) is waited for CLOSE_WAIT_S at most, then this one leaves anyway.
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=datetime.timedelta(seconds=CLOSE_WAIT_S))
            else:
                dist.barrier()
        except RuntimeError as e:  # a rank that never came: nothing left to agree on
            log.warning("leaving the process group without every rank: %s", str(e).splitlines()[0] if str(e) else e)
        dist.destroy_process_group()


def from_env(environ: Mapping[str, str] = os.environ) -> Single:
    """A Torchrun group when torchrun started this process for a job of 2 or more ranks, else Single().

    Not started: call `.start()` to join the process group.
    """
    if "WORLD_SIZE" not in environ:
        return Single()
    try:
        world, rank, local = (int(environ[k]) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))
    except (KeyError, ValueError):
        raise ValueError("WORLD_SIZE is set but RANK and LOCAL_RANK are not both whole numbers; start several "
                         "processes with torchrun, or unset WORLD_SIZE for one") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"RANK {rank} does not fit WORLD_SIZE {world}; start several processes with torchrun")
    return Single() if world == 1 else Torchrun(rank, world, local)


def job_rank(environ: Mapping[str, str] = os.environ) -> int | None:
    """This process's rank in a torchrun job of 2 or more processes, None outside one."""
    try:
        return int(environ["RANK"]) if int(environ.get("WORLD_SIZE", "1")) > 1 else None
    except (KeyError, ValueError):
        return None


def lost_peer(e: BaseException) -> bool:
    """Whether e says another process of the job went away: that process, or torchrun, says why.

    NCCL raises a DistError; gloo a plain RuntimeError whose text names gloo ("[.../gloo/transport/
    tcp/pair.cc] Read error ... Connection reset by peer").
    """
    return isinstance(e, dist.DistError) or (isinstance(e, RuntimeError) and "/gloo/" in str(e))
