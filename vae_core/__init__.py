"""VAE Latent Explorer's library: data, models, losses, training, diagnostics, checkpoints, CLI.

Imports no Streamlit and no plotly; usable from a notebook or a script. The names below load on
first use (PEP 562), so `import vae_core.limits` (the app server checks its settings at start)
does not import torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["ModelConfig", "TrainConfig", "VAE", "ScriptedVAE"]


def __getattr__(name: str) -> Any:
    if name in ("ModelConfig", "TrainConfig"):
        from . import config

        return getattr(config, name)
    if name in ("VAE", "ScriptedVAE"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
