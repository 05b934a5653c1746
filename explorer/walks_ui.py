"""Explore's grids: traversals of one dimension at a time, interpolation between two codes, prior samples.

Each `*_ui()` decodes through `cache.decode` and offers its grid as PNG (and GIF where it moves).
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from . import cache, images, widgets


def traversal_ui(mdl, enc, order: np.ndarray, sel: int | None) -> None:
    """Rows: dimensions (by KL); columns: values of that dimension, the others held fixed; from the code
    of the page's selected point sel (the origin when None)."""
    base = enc.mu[sel] if sel is not None else np.zeros(enc.mu.shape[1], np.float32)
    c1, c2 = st.columns(2)
    dims = c1.multiselect("Dimensions", order.tolist(), default=order[:8].tolist(), key="trav_dims")
    span = c2.slider("Range", 0.5, 4.0, 3.0, 0.5, key="trav_span")
    if not dims:
        st.info("Pick at least one dimension.")
        return
    vals = np.linspace(-span, span, 9, dtype=np.float32)
    zs = np.repeat(base[None], len(dims) * len(vals), 0)
    for r, j in enumerate(dims):
        zs[r * len(vals):(r + 1) * len(vals), j] = vals
    tiles = cache.decode(mdl, zs, scale=2)  # (dims * values, H, W[, 3]), row-major
    img = images.grid(tiles, ncol=len(vals), pad=2)
    st.image(img, caption=f"Rows: z{', z'.join(map(str, dims))}; columns: {vals[0]:.1f} to {vals[-1]:.1f}; "
                          f"the other dimensions held at {'the selected point' if sel is not None else '0'}.")
    # the GIF plays the columns: frame v shows every chosen dimension at value v, side by side
    by_value = tiles.reshape(len(dims), len(vals), *tiles.shape[1:]).swapaxes(0, 1)
    widgets.image_downloads_ui("traversal", png=lambda: images.png_bytes(img),
                gif=lambda: images.gif_bytes([images.grid(f, ncol=len(dims), pad=2) for f in by_value]))



def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (falls back to linear when a and b are parallel): (T, D)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = np.clip(a @ b / max(na * nb, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    return (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)


def interpolation_ui(mdl, enc, n: int, sel: int | None) -> None:
    """A strip from point A to point B, linear or spherical, with a GIF download; A starts at the page's
    selected point sel."""
    c1, c2, c3, c4 = st.columns(4)
    a = c1.number_input("Point A", 0, n - 1, value=int(sel or 0), key="interp_a")
    b = c2.number_input("Point B", 0, n - 1, value=min(n - 1, 1000), key="interp_b")
    kind = c3.radio("Path", ["linear", "spherical"], horizontal=True, key="interp_kind",
                    help="Spherical (slerp) keeps the norm of z typical of the prior along the way.")
    steps = c4.slider("Steps", 3, 16, 10, key="interp_steps")
    t = np.linspace(0, 1, steps, dtype=np.float32)
    za, zb = enc.mu[int(a)], enc.mu[int(b)]
    zs = (1 - t)[:, None] * za + t[:, None] * zb if kind == "linear" else slerp(za, zb, t)
    frames = cache.decode(mdl, zs.astype(np.float32), scale=3)
    strip = images.grid(frames, ncol=steps, pad=2)
    st.image(strip, caption=f"{kind} path from point {a} to point {b}")
    widgets.image_downloads_ui("interpolation", png=lambda: images.png_bytes(strip),
                               gif=lambda: images.gif_bytes(list(frames)))


def prior_samples_ui(mdl) -> None:
    """A grid of decode(z), z ~ N(0, I): what the model generates."""
    seed = st.number_input("Seed", 0, 10_000, 0, key="prior_seed")
    d = mdl.latent_dim
    zs = np.random.default_rng(int(seed)).standard_normal((64, d)).astype(np.float32)
    img = images.grid(cache.decode(mdl, zs, scale=2), ncol=8, pad=2)
    st.image(img, caption="64 samples from the prior: holes in the aggregate posterior show up as odd images.")
    widgets.image_downloads_ui("prior_samples", png=lambda: images.png_bytes(img))
