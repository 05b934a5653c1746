"""Where the tensors live: `--device auto|cpu|cuda` resolved to a torch.device, and whether bf16 is native there.

`--device` is not part of a run (it changes how fast, not what is trained): it is no config field,
and a run trained on any device loads the same way (weights are saved from CPU copies).
"""
from __future__ import annotations

from typing import Any

import torch

CHOICES = ("auto", "cpu", "cuda")


def resolve(name: str = "auto", local_rank: int | None = None) -> torch.device:
    """The device `--device name` asks for: auto is CUDA when PyTorch can use a GPU here, else the CPU.

    Under torchrun (local_rank given) a CUDA device is the process's own GPU, cuda:LOCAL_RANK.
    Raises ValueError with one sentence saying what to do when the device cannot be used.
    """
    if name not in CHOICES:
        raise ValueError(f"--device must be one of {', '.join(CHOICES)}, got {name!r}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        why = "this PyTorch build has no CUDA support" if torch.version.cuda is None else \
            "PyTorch sees no CUDA GPU on this machine"
        raise ValueError(f"--device cuda was asked for, but {why}; use --device cpu (or auto, which takes a GPU "
                         "only when there is one)")
    count = torch.cuda.device_count()
    index = 0 if local_rank is None else local_rank
    if index >= count:
        raise ValueError(f"this process is LOCAL_RANK {index} but this machine has {count} CUDA GPU(s); start at "
                         f"most {count} processes per node (torchrun --nproc-per-node {count}) or use --device cpu")
    return torch.device("cuda", index)


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """True when `device` computes bfloat16 natively: a CUDA GPU that supports it (Ampere or newer),
    or a CPU with AVX512-BF16 or AMX. Elsewhere bf16 is emulated: about 10x slower than fp32 on an
    AVX2 CPU, as measured."""
    device = torch.device(device)
    if device.type == "cuda":  # Ampere (compute capability 8) or newer; not the emulated kind
        with torch.cuda.device(device):
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter or buffer (CPU if it has none: a user's TorchScript
    model runs in its sandboxed worker, on the CPU, and takes CPU tensors)."""
    for tensors in (getattr(model, "parameters", None), getattr(model, "buffers", None)):
        if tensors is not None:
            for t in tensors():
                return t.device
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """The device in words for a report: 'cpu', or 'cuda:0 (NVIDIA H200)'."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
