"""The VAE (pytorch/examples `vae/main.py` shape: encode, reparameterize, decode, forward),
and a wrapper giving a user's TorchScript model the same interface.

Both expose: `encode(x) -> (mu, logvar)` with x (B, C, H, W) in [0, 1] and mu, logvar (B, D);
`decode(z) -> mean of p(x|z)` (B, C, H, W); `nll(x, z) -> -log p(x|z)` (B,), summed over pixels;
attributes `latent_dim`, `likelihood`, `input_shape`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import losses

if TYPE_CHECKING:  # annotations only: config imports this module (count_params) to check a config
    from .config import ModelConfig


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return layers


class VAE(nn.Module):
    """A VAE with a diagonal Gaussian posterior and an MLP or convolutional encoder/decoder.

    The decoder's last layer gives logits (B, C, H, W); `decode` returns sigmoid(logits), the
    mean of p(x|z) in data space, for both likelihoods (a Gaussian decoder's mean is kept in [0, 1]).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg  # validated, parameter count within VAE_EXPLORER_MAX_PARAMS (ModelConfig)
        c, h, w = cfg.input_shape
        d = cfg.latent_dim
        n_in = c * h * w
        if cfg.arch == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), *_mlp([n_in, *cfg.hidden]))
            feat = cfg.hidden[-1] if cfg.hidden else n_in
            self.enc_out = nn.Linear(feat, 2 * d)
            dec_sizes = [d, *reversed(cfg.hidden)]
            # decoder is one flat Sequential of Linear/ReLU ending in a Linear: the browser decoder
            # (explorer) reads its weights in this order.
            self.decoder = nn.Sequential(*_mlp(dec_sizes), nn.Linear(dec_sizes[-1], n_in),
                                         nn.Unflatten(1, (c, h, w)))
        else:
            chans = [c, *cfg.conv_channels]
            enc: list[nn.Module] = []
            for a, b in zip(chans[:-1], chans[1:]):
                enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.ReLU()]
            f = 2 ** len(cfg.conv_channels)
            self._feat_shape = (chans[-1], h // f, w // f)
            n_feat = chans[-1] * (h // f) * (w // f)
            self.encoder = nn.Sequential(*enc, nn.Flatten(), *_mlp([n_feat, *cfg.hidden]))
            self.enc_out = nn.Linear(cfg.hidden[-1] if cfg.hidden else n_feat, 2 * d)
            dec: list[nn.Module] = [*_mlp([d, *reversed(cfg.hidden)]),
                                    nn.Linear(cfg.hidden[0] if cfg.hidden else d, n_feat), nn.ReLU(),
                                    nn.Unflatten(1, self._feat_shape)]
            rev = list(reversed(chans))
            for i, (a, b) in enumerate(zip(rev[:-1], rev[1:])):
                dec.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))
                if i < len(rev) - 2:
                    dec.append(nn.ReLU())
            self.decoder = nn.Sequential(*dec)
        # log of the Gaussian decoder's std s; a buffer when fixed so it is saved either way
        log_s = torch.tensor(math.log(cfg.gaussian_scale))
        if cfg.likelihood == "gaussian" and cfg.learn_scale:
            self.log_scale = nn.Parameter(log_s)
        else:
            self.register_buffer("log_scale", log_s)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    @property
    def likelihood(self) -> str:
        return self.cfg.likelihood

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.cfg.input_shape

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (mu, logvar), each (B, D)."""
        mu, logvar = self.enc_out(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I): the reparameterisation trick."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D) -> decoder output before the sigmoid, (B, C, H, W)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D) -> mean of p(x|z) in [0, 1], (B, C, H, W)."""
        return torch.sigmoid(self.decode_logits(z))

    def nll_from_logits(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) given decoder logits, summed over pixels: (B,)."""
        if self.cfg.likelihood == "bernoulli":
            return losses.bernoulli_nll(x, logits)
        return losses.gaussian_nll(x, torch.sigmoid(logits), self.log_scale)

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x|z), summed over pixels: x (B, C, H, W), z (B, D) -> (B,)."""
        return self.nll_from_logits(x, self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x -> (decoder logits for one z ~ q(z|x), mu, logvar)."""
        mu, logvar = self.encode(x)
        return self.decode_logits(self.reparameterize(mu, logvar)), mu, logvar


def meta_state(cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """The state dict a VAE of cfg has, as meta tensors: shapes and dtypes, no memory allocated."""
    with torch.device("meta"):
        return VAE(cfg).state_dict()


def count_params(cfg: ModelConfig) -> int:
    """Number of weights (parameters and buffers) of VAE(cfg), counted without allocating them."""
    return sum(t.numel() for t in meta_state(cfg).values())


class TorchScriptInterface(nn.Module):
    """What `ScriptedVAE` (in this process) and `sandbox.RemoteModel` (in a worker) share: the
    likelihood and input shape they hold, and the loss and forward pass built on `encode`/`decode`.

    Subclasses set `_likelihood`, `_input_shape`, a `log_scale` buffer and `_error` (the exception
    class their messages use), and define `encode`, `decode`, `latent_dim` and `set_input_shape`.
    """

    _error: type[Exception] = ValueError
    reparameterize = staticmethod(VAE.reparameterize)

    @property
    def likelihood(self) -> str:
        return self._likelihood

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        return self._input_shape

    def _what(self) -> str:
        return "TorchScript"

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x|z), summed over pixels: x (B, C, H, W), z (B, D) -> (B,); computed here, not by the module."""
        mean = self.decode(z)
        if mean.shape != x.shape:
            raise self._error(f"{self._what()}: decode(z) gave shape {tuple(mean.shape)}, the data is {tuple(x.shape)}")
        x = x.to(mean.dtype)
        if self._likelihood == "bernoulli":
            return losses.bernoulli_nll_from_mean(x, mean)
        return losses.gaussian_nll(x, mean, self.log_scale)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class ScriptedVAE(TorchScriptInterface):
    """A TorchScript module behind the same interface as `VAE`, in this process.

    The contract: docs/contracts.md, "Bring your own model".

    For modules scripted in this process (tests, notebooks): the app and the CLI load a user's
    file through `vae_core.runs.model_files.load_torchscript`, which runs it in a child worker
    (`vae_core.sandbox.RemoteModel`, same interface) and never in the server.

    The module needs `encode(x) -> (mu, logvar)` and `decode(z) -> mean`; optional attributes
    `likelihood` ("bernoulli" default, or "gaussian") and `scale` (the Gaussian std, default 1.0;
    `declared_scale` is None when the module has none, so diagnostics can calibrate it).
    `input_shape` and `latent_dim` are not stored in TorchScript: pass the input shape (the data's)
    and the latent size is read off one encode.
    """

    def __init__(self, module: torch.jit.ScriptModule, input_shape: tuple[int, int, int] | None = None):
        super().__init__()
        self.module = module
        lik = getattr(module, "likelihood", "bernoulli")
        if lik not in ("bernoulli", "gaussian"):
            raise ValueError(f"TorchScript attribute likelihood must be 'bernoulli' or 'gaussian', got {lik!r}")
        self._likelihood = str(lik)
        declared = getattr(module, "scale", None)
        scale = 1.0 if declared is None else float(declared)
        if not scale > 0:
            raise ValueError(f"TorchScript attribute scale must be > 0, got {scale!r}")
        # None when the file declares no scale: diagnostics then score it with the calibrated scale
        self.declared_scale: float | None = None if declared is None else scale
        self.register_buffer("log_scale", torch.tensor(math.log(scale)))
        self._input_shape = tuple(input_shape) if input_shape is not None else None
        self._latent_dim: int | None = None

    @property
    def latent_dim(self) -> int:
        if self._latent_dim is None:
            if self._input_shape is None:
                raise ValueError("latent_dim of a TorchScript model is unknown until an input shape is set")
            with torch.inference_mode():
                mu, _ = self.encode(torch.zeros(1, *self._input_shape))
            self._latent_dim = int(mu.shape[1])
        return self._latent_dim

    def set_input_shape(self, shape: tuple[int, int, int]) -> None:
        self._input_shape = tuple(int(s) for s in shape)
        self._latent_dim = None

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.module.encode(x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError("TorchScript encode(x) must return a tuple (mu, logvar)")
        mu, logvar = out
        if mu.dim() != 2 or mu.shape != logvar.shape or mu.shape[0] != x.shape[0]:
            raise ValueError(f"TorchScript encode(x) must give mu, logvar of shape (B, D); got "
                             f"{tuple(mu.shape)} and {tuple(logvar.shape)} for B={x.shape[0]}")
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.module.decode(z)
