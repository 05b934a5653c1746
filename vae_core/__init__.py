"""VAE Latent Explorer's library: data, models, losses, training, diagnostics, checkpoints, CLI.

Imports no Streamlit and no plotly; usable from a notebook or a script.
"""
from .config import ModelConfig, TrainConfig
from .models import VAE, ScriptedVAE

__all__ = ["ModelConfig", "TrainConfig", "VAE", "ScriptedVAE"]
