"""A small, well-behaved model of the TorchScript contract (docs/contracts.md), shared by the worker tests:
Bernoulli, 1x8x8 images (the digits dataset's shape), D = 3. Subclasses override encode or decode to
misbehave (hang, NaN, huge allocations)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn

SHAPE = (1, 8, 8)
D = 3

# torch 2.13 warns that TorchScript is deprecated upstream; the project still accepts it
TS_WARNINGS = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning",
                                         "ignore:`torch.jit.save` is deprecated:DeprecationWarning",
                                         "ignore:`torch.jit.load` is deprecated:DeprecationWarning")


class Good(nn.Module):
    """encode(x) -> (mu, logvar) of a linear layer, decode(z) -> sigmoid of a linear layer."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 2 * D)
        self.dec = nn.Linear(D, 64)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def set_worker_limits(monkeypatch, timeout_s: float, memory_mb: int = 1024) -> None:
    """The worker's batch time limit and memory limit, through the environment (what an operator sets)."""
    monkeypatch.setenv("VAE_EXPLORER_WORKER_TIMEOUT_S", str(timeout_s))
    monkeypatch.setenv("VAE_EXPLORER_WORKER_MEMORY_MB", str(memory_mb))


def pid_gone(pid: int) -> bool:
    """The process has exited: no /proc entry, or a zombie (read from /proc/PID/stat, proc(5))."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def wait_for(cond, within: float = 60.0) -> bool:
    """Poll cond until it holds or the deadline passes (no fixed sleep: returns as soon as it holds)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def save_ts(module: nn.Module, path: Path) -> Path:
    """The module scripted (eval mode, seeded weights... as built) and saved with torch.jit.save."""
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(module.eval()), str(path))
    return path
