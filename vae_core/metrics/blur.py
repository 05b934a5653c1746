"""Blurriness of reconstructions and prior samples against the data (Asperti 2019 and sharpness).

All image sets are (N, C, H, W); multi-channel images are averaged over channels.
- pixel variance: the variance of each pixel across the set (ddof=0), averaged over pixels;
  variance loss = pixel variance of the data minus that of the model's images (Asperti).
- Laplacian sharpness: each image's channels convolved with [[0,1,0],[1,-4,1],[0,1,0]] on the
  'valid' region ((H-2) x (W-2)); the variance over those pixels, per image and channel, then
  averaged. Reported as the ratio model/data (1 = as sharp as the data).
- Spectrum: |FFT2|^2 of each image and channel (orthonormal), averaged over images and channels,
  then radially averaged in bins of width 1/min(H, W) cycles per pixel from 0 to 0.5 (corners
  beyond 0.5 are left out). spectrum_ratio = model power / data power, both summed over the upper
  half of the frequencies (f > 0.25 cycles per pixel).
Reconstructions are decode(mu(x)) (the decoder mean at the posterior mean); prior samples are
decode(z) for z ~ N(0, I), as many as data points.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data import Dataset
from ._common import as_tensor, decode_all, encode_all, model_device

LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
KEYS = ("laplacian_ratio", "variance_loss", "spectrum_ratio")


@dataclass(frozen=True)
class BlurStats:
    """The three blur numbers for reconstructions and samples, and radial spectra for plotting."""

    reconstructions: dict[str, float | None]  # KEYS -> value (None when the data's is 0)
    samples: dict[str, float | None]
    frequencies: np.ndarray  # (F,) cycles per pixel, bin centres
    spectrum_data: np.ndarray  # (F,)
    spectrum_reconstructions: np.ndarray  # (F,)
    spectrum_samples: np.ndarray  # (F,)


def as_images(x: Any, name: str) -> torch.Tensor:
    t = as_tensor(x, name, 4)
    if t.shape[0] < 1 or t.shape[2] < 3 or t.shape[3] < 3:
        raise ValueError(f"{name} must be (N, C, H, W) with N >= 1 and H, W >= 3, got {tuple(t.shape)}")
    return t


def pixel_variance(x: Any) -> float:
    """Variance of each pixel across the set (ddof=0), averaged over pixels and channels."""
    t = as_images(x, "x").double()
    return float(t.var(0, unbiased=False).mean())


def laplacian_variance(x: Any) -> np.ndarray:
    """Per image (N,): the variance of the 'valid' 3x3 Laplacian response, averaged over channels."""
    t = as_images(x, "x").double()
    # the 3x3 kernel LAPLACIAN as shifted slices: 'valid' response (N, C, H-2, W-2)
    resp = (t[..., :-2, 1:-1] + t[..., 2:, 1:-1] + t[..., 1:-1, :-2] + t[..., 1:-1, 2:]
            - 4 * t[..., 1:-1, 1:-1])
    return resp.flatten(2).var(2, unbiased=False).mean(1).numpy()  # (N, C) -> (N,)


def laplacian_sharpness(x: Any) -> float:
    """Mean over images and channels of the variance of the 'valid' 3x3 Laplacian response."""
    return float(laplacian_variance(x).mean())  # every image has C channels: mean of means = mean


def radial_spectrum(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies (F,), radially averaged |FFT2|^2 (F,)), averaged over images and channels."""
    t = as_images(x, "x")  # float32 FFT, float64 accumulation
    _, _, h, w = t.shape
    power = torch.view_as_real(torch.fft.fft2(t, norm="ortho")).double().pow(2).sum(-1).mean((0, 1))  # (H, W)
    m = min(h, w)
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]  # cycles per pixel
    fx = torch.fft.fftfreq(w, dtype=torch.float64)[None, :]
    idx = torch.round(torch.sqrt(fy ** 2 + fx ** 2) * m).long()  # (H, W) radial bin index
    n_bins = m // 2 + 1
    keep = idx < n_bins  # drop the corners beyond 0.5 cycles per pixel
    sums = torch.zeros(n_bins, dtype=power.dtype).index_add_(0, idx[keep], power[keep])
    counts = torch.zeros(n_bins, dtype=power.dtype).index_add_(0, idx[keep], torch.ones_like(power[keep]))
    freqs = np.arange(n_bins) / m
    return freqs, (sums / counts.clamp(min=1)).numpy()


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _compare(data: Any, images: Any, *,
             data_stats: tuple | None = None) -> tuple[dict[str, float | None], np.ndarray]:
    """The three blur numbers of `images` against `data` (N, C, H, W), and the images' spectrum."""
    pv, sharp, (freqs, spec) = data_stats or (pixel_variance(data), laplacian_sharpness(data),
                                             radial_spectrum(data))
    f2, spec_m = radial_spectrum(images)
    if f2.shape != freqs.shape:
        raise ValueError(f"images must have the data's H and W, got spectra of {f2.shape} and {freqs.shape} bins")
    upper = freqs > 0.25
    return {"laplacian_ratio": _ratio(laplacian_sharpness(images), sharp),
            "variance_loss": pv - pixel_variance(images),
            "spectrum_ratio": _ratio(float(spec_m[upper].sum()), float(spec[upper].sum()))}, spec_m


def _blur_core(data: Any, recon: Any, samples: Any) -> BlurStats:
    """Blur numbers and spectra from three image sets (N, C, H, W)."""
    stats = (pixel_variance(data), laplacian_sharpness(data), radial_spectrum(data))
    freqs, spec_d = stats[2]
    rec, spec_r = _compare(data, recon, data_stats=stats)
    smp, spec_s = _compare(data, samples, data_stats=stats)
    return BlurStats(reconstructions=rec, samples=smp, frequencies=freqs, spectrum_data=spec_d,
                     spectrum_reconstructions=spec_r, spectrum_samples=spec_s)


@torch.inference_mode()
def blurriness(model: Any, data: Dataset, *, batch_size: int = 500, seed: int = 0) -> BlurStats:
    """Blur of `model`'s reconstructions (decode(mu)) and prior samples against `data`."""
    dev = model_device(model)
    x = data.x.to(dev)
    mu, _ = encode_all(model, x, batch_size)
    gen = torch.Generator(device=dev).manual_seed(seed)
    z = torch.randn(mu.shape, generator=gen, device=dev)
    return _blur_core(x.cpu(), decode_all(model.decode, mu, batch_size).cpu(),
                      decode_all(model.decode, z, batch_size).cpu())
