"""The blur statistics of image sets given in chunks (`diagnose` decodes its reconstructions and
prior samples a bounded number at a time, so no (N, C, H, W) set of decoded images is ever held).
"""
from __future__ import annotations

import numpy as np
import torch

from ..blur import BlurStats, as_images, laplacian_variance, radial_spectrum


class BlurAccumulator:
    """The blur statistics of an image set given in chunks, never holding the set: per-pixel variance
    (chunk means and sums of squares merged, Chan et al.), the summed per-image Laplacian variance,
    and the summed radial spectrum; equal to blur.py's pixel_variance, laplacian_sharpness and
    radial_spectrum of the whole set up to float rounding."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None  # (C, H, W) float64
        self.m2: torch.Tensor | None = None  # sum of squared deviations from the mean
        self.lap = 0.0
        self.freqs: np.ndarray | None = None
        self.spec: np.ndarray | None = None  # sum over images of their radial spectra

    def add(self, images: torch.Tensor) -> None:
        t = as_images(images, "images")
        m = int(t.shape[0])
        freqs, spec = radial_spectrum(t)  # float32 FFT, as blur.radial_spectrum of the whole set
        if self.freqs is not None and freqs.shape != self.freqs.shape:
            raise ValueError(f"images must have the data's H and W, got spectra of {freqs.shape} and "
                             f"{self.freqs.shape} bins")
        td = t.double()
        cm = td.mean(0)
        cm2 = (td - cm).pow(2).sum(0)
        if self.mean is None:
            self.mean, self.m2 = cm, cm2
        else:
            delta, tot = cm - self.mean, self.n + m
            self.mean = self.mean + delta * (m / tot)
            self.m2 = self.m2 + cm2 + delta.pow(2) * (self.n * m / tot)
        self.lap += float(laplacian_variance(td).sum())
        self.freqs, self.spec = freqs, spec * m if self.spec is None else self.spec + spec * m
        self.n += m

    def stats(self) -> tuple[float, float, np.ndarray, np.ndarray]:
        """(pixel variance, Laplacian sharpness, frequencies, radial spectrum) of every image added."""
        if self.n < 1:
            raise ValueError("no images were added")
        return float((self.m2 / self.n).mean()), self.lap / self.n, self.freqs, self.spec / self.n


def blur_stats_of(data: BlurAccumulator, recon: BlurAccumulator, samples: BlurAccumulator) -> BlurStats:
    """BlurStats (as blur._blur_core) from the three accumulated image sets."""
    pv, sharp, freqs, spec_d = data.stats()
    upper = freqs > 0.25

    def ratio(num: float, den: float) -> float | None:
        return num / den if den > 0 else None

    out = []
    for acc in (recon, samples):
        pv_m, sharp_m, f_m, spec_m = acc.stats()
        if f_m.shape != freqs.shape:
            raise ValueError(f"images must have the data's H and W, got spectra of {f_m.shape} and {freqs.shape} bins")
        out.append(({"laplacian_ratio": ratio(sharp_m, sharp), "variance_loss": pv - pv_m,
                     "spectrum_ratio": ratio(float(spec_m[upper].sum()), float(spec_d[upper].sum()))}, spec_m))
    (rec, spec_r), (smp, spec_s) = out
    return BlurStats(reconstructions=rec, samples=smp, frequencies=freqs, spectrum_data=spec_d,
                     spectrum_reconstructions=spec_r, spectrum_samples=spec_s)
