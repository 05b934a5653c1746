"""The Home page's panels: the active model at work on one image, the active pair, where to go.

The picture (an image, its code, the image rebuilt from it) and the pair's facts are kept on disk
by content (`picture_path`: the model's and the data's fingerprints), so a later start of the server
draws Home from that file, with no torch imported; only the first visit of a (model, data) pair
loads the model and encodes the data (`sidebar.encoded_ui`), then writes the file.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from . import cache, figures, selection, sidebar
from .navigation import PAGES

PICTURE_FORMAT = 1  # bump when what `Picture` holds or how it is drawn changes: older files are ignored
SCALE = 6  # nearest-neighbour upscale of the two images


@dataclass(frozen=True)
class Picture:
    """What Home draws of a (model, data) pair: plain arrays and text, no model needed."""

    image: np.ndarray  # (H*SCALE, W*SCALE[, 3]) uint8: a well reconstructed example x
    rebuilt: np.ndarray  # the same shape: decode(mu(x))
    mu: np.ndarray  # (D,) its code's mean
    sigma: np.ndarray  # (D,) and standard deviation
    facts: str  # the "Active model and data" list, markdown


def picture_path(m: cache.Source, d: cache.Source) -> Path:
    key = hashlib.sha256(f"{PICTURE_FORMAT}|{m.src}|{m.fp}|{d.src}|{d.fp}".encode()).hexdigest()[:24]
    return cache.cache_dir("home") / f"{key}.npz"


def load_picture(path: Path) -> Picture | None:
    """Our own file (plain arrays, no pickle); None when absent or unreadable (then it is made again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return Picture(image=z["image"], rebuilt=z["rebuilt"], mu=z["mu"], sigma=z["sigma"], facts=str(z["facts"]))
    except (OSError, ValueError, KeyError):
        return None


def save_picture(path: Path, pic: Picture) -> None:
    """`cache.save_npz`: a reader never sees half a file; a full disk only costs the next start a model load."""
    cache.save_npz(path, image=pic.image, rebuilt=pic.rebuilt, mu=pic.mu, sigma=pic.sigma, facts=np.array(pic.facts))


FILE_KINDS = {"torchscript": "TorchScript model", "export": "torch.export programs", "onnx": "ONNX graphs"}


def make_picture(m: cache.Source, mdl, data, enc: cache.Encoded) -> Picture:
    """Home's picture from the loaded model, its data and their encoding (imports torch)."""
    from . import images

    n_enc = len(enc.mu)  # fewer than len(data) while a slow model still encodes (enc.total: all of them)
    idx = int(np.argmin(enc.recon_err[: min(n_enc, 200)]))  # a well reconstructed example
    cfg = getattr(mdl, "cfg", None)
    arch = (f"{cfg.arch.upper()} {cfg.input_shape} -> {cfg.hidden} -> {cfg.latent_dim}" if cfg
            else FILE_KINDS.get(getattr(mdl, "format", ""), "a model file"))
    facts = (f"- Model: **{selection.label(m.src)}** ({arch}, {mdl.likelihood} decoder)\n"
             f"- Data: **{data.name}**, {len(data):,} images of {'x'.join(map(str, data.shape))}\n"
             f"- Mean KL {enc.kl.mean():.1f} nats, mean reconstruction error {enc.recon_err.mean():.1f} nats "
             f"(-log p(x | z = mu), decoding the mean code{'; ' + enc.scale_words() if enc.scale_source else ''})"
             + (f", **so far over the first {n_enc:,} of {enc.total:,} images** (the rest are being encoded)"
                if enc.total else ""))
    return Picture(image=images.upscale(images.to_uint8(data.x[idx:idx + 1])[0], SCALE),
                   rebuilt=cache.decode(mdl, enc.mu[idx][None], scale=SCALE)[0],
                   mu=enc.mu[idx].astype(np.float32), sigma=np.exp(0.5 * enc.logvar[idx]).astype(np.float32),
                   facts=facts)


def picture_ui(m: cache.Source, d: cache.Source) -> None:
    """The active model at work on one image, and the pair's facts: from disk when this pair was
    drawn before, else after loading and encoding (drawn from the first encoded images while the rest
    encode, under the encoding's progress bar)."""
    path = picture_path(m, d)
    pic = load_picture(path) if path.exists() else None
    if pic is None:
        mdl, data = sidebar.active_model_ui(m, d)
        # draws from the first images' codes while a slow model encodes the rest (drawn again when it ends)
        enc = sidebar.encoded_ui(m, d, partial=True)
        pic = make_picture(m, mdl, data, enc)
        if not enc.total:  # kept on disk only when made from every image
            save_picture(path, pic)
    c1, c2, c3, c4, c5 = st.columns([2, 1, 4, 1, 2])
    c1.image(pic.image, caption="image x")
    c2.markdown("### →\nencoder")
    c3.plotly_chart(figures.code_figure(pic.mu, pic.sigma), key="home_code")
    c3.caption(f"its code: {len(pic.mu)} numbers (bars: mu, whiskers: sigma)")
    c4.markdown("### →\ndecoder")
    c5.image(pic.rebuilt, caption="rebuilt image")
    st.subheader("Active model and data")
    st.markdown(pic.facts)
    if Path(m.src).is_dir():
        st.download_button("Download this run (zip)", on_click="ignore", mime="application/zip",
                           file_name=f"{Path(m.src).name}.zip", data=lambda: _run_zip(m.src),
                           help="config.json, model.safetensors and history.csv; upload it in the sidebar elsewhere")


def _run_zip(src: str) -> bytes:
    from vae_core.runs.checkpoints import run_zip  # imports torch: only when the button is pressed

    return run_zip(src)


def where_to_go_ui() -> None:
    st.subheader("Where to go")
    for page in PAGES[1:]:
        st.page_link(page.path, label=f"{page.title}: {page.blurb}", icon=page.icon)
