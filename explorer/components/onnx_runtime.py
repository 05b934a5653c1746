"""The ONNX loader: an invisible components-v2 element that makes a decoder's onnxruntime-web session in
the browser, once per page, for the pad and the slider panels to decode with.

Python sends the decoder's ONNX bytes (base64) only while the browser's status names another decoder,
so they travel once per model per browser session, however many components decode with them and
however often the page reruns. onnxruntime-web itself (static/onnxruntime-web/, served by Streamlit's
static serving at /app/static/) is loaded by the browser once per page, from this server: nothing is
downloaded from anywhere else.
"""
from __future__ import annotations

import streamlit as st

from .base import noop, register

_loader = register("vae_onnx_runtime", "onnx_runtime.js", "onnx_runtime.css")
VENDOR_DIR = "onnxruntime-web"  # under static/, next to streamlit_app.py


def ort_base_url() -> str:
    """The URL folder the browser loads onnxruntime-web from (honours server.baseUrlPath)."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"{'/' + base if base else ''}/app/static/{VENDOR_DIR}/"


def onnx_status(key: str) -> dict | None:
    """The browser's last status {id, state, reason, ms} for loader `key`, or None before it said any."""
    raw = st.session_state.get(key)
    status = raw.get("status") if isinstance(raw, dict) else None
    return status if isinstance(status, dict) else None


def onnx_runtime(key: str, decoder: dict) -> dict | None:
    """Draw the loader for `decoder` (`browser_decoder.onnx_decoder_payload`); returns the browser's status
    for this decoder ({id, state: "loading" | "ready" | "error", reason, ms}), or None before it has one."""
    status = onnx_status(key)
    mine = status if status is not None and status.get("id") == decoder["id"] else None
    data = {"id": decoder["id"], "ort_base": ort_base_url(), "latent_dim": int(decoder["latent_dim"])}
    if mine is None:
        data["onnx"] = decoder["onnx"]
    _loader(key=key, data=data, on_status_change=noop, width="stretch", height="content")
    return mine
