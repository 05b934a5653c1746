"""The small seeded MLP VAE shared by the demo app and the tests (same weights in both processes)."""
from __future__ import annotations

import torch

from vae_core.config import ModelConfig
from vae_core.models import VAE

SEED = 1234


def build_model() -> VAE:
    """A random (untrained) 2-D MLP VAE; the seed makes its weights identical everywhere."""
    torch.manual_seed(SEED)
    return VAE(ModelConfig(input_shape=(1, 28, 28), latent_dim=2, hidden=(64,))).eval()
