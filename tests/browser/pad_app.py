"""Demo of the latent pad for the browser tests and benchmarks.

`?mode=browser` decodes in the browser; otherwise Python decodes every pad position.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st
import torch
from PIL import Image

from explorer.components.browser_decoder import mlp_decoder_payload
from explorer.components.pad import latent_pad, pad_state
from pad_model import build_model

st.set_page_config(page_title="Latent pad demo")


@st.cache_resource
def model():
    """Built once per server; eval mode, read-only."""
    return build_model()


@st.cache_resource
def decoder_payload() -> dict | None:
    return mlp_decoder_payload(model())


def decode(z: list[float]) -> np.ndarray:
    """z (D,) -> (H, W) uint8 image."""
    with torch.inference_mode():
        x = model().decode(torch.tensor([z], dtype=torch.float32))[0, 0]
    return (x.numpy() * 255).round().astype(np.uint8)


def png_uri(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@st.cache_data
def background(n: int = 500) -> tuple[np.ndarray, list[int]]:
    """A fixed faint scatter standing in for an encoded data set."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)).clip(-2.9, 2.9), rng.integers(0, 10, n).tolist()


mode = st.query_params.get("mode", "python")


@st.fragment
def pad_fragment() -> None:
    state = pad_state("pad")
    x, y = (state["x"], state["y"]) if state else (0.0, 0.0)
    pts, labels = background()
    common = dict(points=pts, colors=labels, bounds=(-3.0, 3.0, -3.0, 3.0), pos=(x, y),
                  ack=state["seq"] if state else 0)
    if mode == "browser":
        latent_pad("pad", decoder=decoder_payload(), origin=[0.0, 0.0],
                   axes=[[1.0, 0.0], [0.0, 1.0]], **common)
    else:
        latent_pad("pad", image=png_uri(decode([x, y])), **common)
    st.text(f"pad_z={x!r},{y!r} down={state['down'] if state else False}")


@st.fragment
def slider_fragment() -> None:
    z0 = st.slider("z_0", -3.0, 3.0, 0.0, 0.05, key="z0")
    st.image(decode([z0, 0.0]), width=112, caption="slider decode")


st.caption(f"mode: {mode}")
pad_fragment()
slider_fragment()
