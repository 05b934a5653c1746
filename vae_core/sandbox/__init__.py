"""Users' models (TorchScript, or zips of torch.export / ONNX programs) run in a child worker process
(docs/architecture.md, "Trust boundary").

- `proxy.RemoteModel`: the model interface in the server; the worker behind it has a memory and
  a time limit per call, and tensors cross through shared memory, never pickle.
- `child`: the worker (`python -m vae_core.sandbox.child`).
- `allowlist`: the operations a model's methods may use, checked before any of them runs.
- `formats`: the worker's loaders and checks for torch.export programs and ONNX graphs.
- `onnx_export`: the decoder as a checked ONNX graph, made in a worker (`RemoteModel.decoder_onnx`).
- `landlock`: the worker's filesystem closed except its scratch directory, where the kernel allows.
"""
from __future__ import annotations

from . import landlock
from .proxy import RemoteModel


def fs_protection() -> str:
    """The filesystem protection a worker gets on this machine, in a few words."""
    return landlock.describe(landlock.abi())


__all__ = ["RemoteModel", "fs_protection"]
