"""The Blurriness page's panels: image grids, the three blur numbers, spectra, extremes, error map.

The numbers and spectra come from the diagnose `Report` (`cache.report_job`, computed once and shared with
the Diagnose page: the same options); the images and per-image sharpness from `cache.blur_job` on the same points.
"""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from vae_core.metrics import Report

from . import cache, figures, images, sidebar

N_GRID = 32  # images per grid (4 rows of 8)
N_EXTREMES = 8

HELP = {
    "laplacian_ratio": "Fine detail (edges) compared with the data: the variance of the image after a "
                       "Laplacian edge filter, model / data. 1 = as sharp as the data; 0.3 = 30% of the detail.",
    "variance_loss": "How much less the pixels vary across the set than in the data (Asperti): data pixel "
                     "variance minus the model's. 0 = the same variety as the data; higher = more washed out.",
    "spectrum_ratio": "Power in the upper half of the spatial frequencies (fine texture), model / data. "
                      "1 = as much fine texture as the data.",
}
LABELS = {"laplacian_ratio": "Laplacian ratio", "variance_loss": "Variance loss", "spectrum_ratio": "Spectrum ratio"}


def _scale(imgs: np.ndarray) -> int:
    return max(1, 56 // imgs.shape[1])  # small images (8x8, 28x28) upscaled so they are visible


def _grid(imgs: np.ndarray, ncol: int = 8) -> np.ndarray:
    s = _scale(imgs)
    return images.grid(np.stack([images.upscale(im, s) for im in imgs]), ncol=ncol, pad=2)


def grids_ui(bi: cache.BlurImages) -> None:
    """Originals, their reconstructions and prior samples, each a grid with a PNG download."""
    st.caption("Left: held-out images. Middle: the same images after going through the encoder and back "
               "(decode the mean code). Right: new images decoded from random codes z ~ N(0, I).")
    idx = np.unique(np.linspace(0, len(bi.originals) - 1, N_GRID).round().astype(int))  # spread over the set
    cols = st.columns(3)
    for col, (name, arr, file) in zip(cols, [("Originals", bi.originals[idx], "originals.png"),
                                             ("Reconstructions", bi.reconstructions[idx], "reconstructions.png"),
                                             ("Prior samples", bi.samples[:N_GRID], "prior_samples.png")]):
        img = _grid(arr)
        col.image(img, caption=f"{name} ({len(arr)})")
        col.download_button("Download PNG", images.png_bytes(img), file, "image/png", key=f"blur_png_{file}")


def blur_numbers_ui(rep: Report) -> dict[str, float | None]:
    """Laplacian ratio, variance loss and spectrum ratio for reconstructions and samples; returns the
    reconstructions' values."""
    st.caption("1 = as sharp as the data for both ratios; a ratio of 0.3 keeps 30% of the data's fine detail. "
               "For scale, this project measured about 0.32 at beta = 1 and 0.014 at beta = 16 (MNIST, 30 epochs).")
    for part, title in (("reconstructions", "Reconstructions"), ("samples", "Prior samples")):
        st.markdown(f"**{title}**")
        cols = st.columns(3)
        for col, key in zip(cols, LABELS):
            v = rep.blur[part][key]
            col.metric(f"{LABELS[key]} ({part})", "n/a" if v is None or not math.isfinite(v) else
                       (f"{v:.4f}" if key == "variance_loss" else f"{v:.3f}"), help=HELP[key])
    return rep.blur["reconstructions"]


def spectrum_ui(rep: Report) -> None:
    """Radially averaged power spectra of data, reconstructions and samples (log y)."""
    sp = rep.blur_detail
    st.caption("How much of each image's 'energy' sits at each scale: left = coarse shapes, right = fine edges "
               "(cycles per pixel). Blur shows as the model's curves dropping below the data's at high "
               "frequencies; the spectrum ratio compares the part right of the dotted line (0.25).")
    st.plotly_chart(figures.spectrum_figure(np.asarray(sp.frequencies, float), {
        "data": np.asarray(sp.spectrum_data, float), "reconstructions": np.asarray(sp.spectrum_reconstructions, float),
        "prior samples": np.asarray(sp.spectrum_samples, float)}), key="blur_spectrum")


def extremes_ui(bi: cache.BlurImages) -> None:
    """The 8 sharpest and 8 blurriest reconstructions (per-image Laplacian ratio), originals above."""
    r = bi.sharpness_ratio
    ok = np.flatnonzero(np.isfinite(r))
    if len(ok) < 2:
        st.caption("Too few images with any edges to rank.")
        return
    order = ok[np.argsort(r[ok])]
    n = min(N_EXTREMES, len(order) // 2)
    st.caption("Each reconstruction's Laplacian variance divided by its original's: which images keep their "
               "detail, which lose it? Top row: the originals; bottom row: the reconstructions.")
    cols = st.columns(2)
    for col, (title, idx) in zip(cols, [("Sharpest", order[::-1][:n]), ("Blurriest", order[:n])]):
        pair = np.concatenate([bi.originals[idx], bi.reconstructions[idx]])
        img = _grid(pair, ncol=n)
        col.markdown(f"**{title}**")
        col.image(img, caption=f"{title}: ratios " + ", ".join(f"{v:.2f}" for v in r[idx]))
        col.download_button("Download PNG", images.png_bytes(img), f"{title.lower()}.png", "image/png",
                            key=f"blur_png_{title}")


def error_map_ui(m: cache.Source, d: cache.Source, data) -> None:
    """The PCA map of the codes coloured by each image's reconstruction error."""
    st.caption("Each dot is one image placed by its code (PCA of mu), coloured by how badly it is rebuilt: "
               "-log p(x | z = mu) in nats. Bright regions are the images the model finds hard.")
    err = sidebar.encoded_ui(m, d).recon_err
    proj = cache.map_job(m, d, "pca", 2).result
    st.plotly_chart(figures.map_figure(proj.embedding_, err, categorical=False,
                                       color_name="reconstruction error (nats)", height=460), key="blur_map")
