"""The latent slider panel: a components-v2 component with one range input per latent dimension
and the decoded image (docs/live-decoding.md, "The design", points 2-3).

Thin Python, like `pad.py`: the JS/CSS in `assets/` are registered once (`base.register`); the
labels and an MLP decoder's weights travel only while the browser lacks them (it reports what it
holds under state key "cache"); each rerun otherwise sends a few hundred bytes (z, its version, the
ack) plus, on the Python path, the PNG data URI of the answer.

The browser reports z under state key "z" as {values, version, seq, final}: `version` is the
`Z_VERSION` its values started from, `seq` numbers the vectors it sent (flow control: Python echoes
the last one it handled as `ack`), `final` is true for a release on the browser path.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from .base import decoder_fields, held, noop, register
from .browser_decoder import decoder_in_dim

_panel = register("vae_latent_sliders", "sliders.js", "sliders.css")
# The same panel under its own name for one strength slider (Explore's attribute vector: the decoder
# given to it takes the strength alone, see latent_tools_ui), so each keeps its own test id.
_strength_panel = register("vae_strength_sliders", "sliders.js", "sliders.css")


def slider_state(key: str) -> dict | None:
    """The panel's last reported vector {values, version, seq, final}, or None before it sent any."""
    raw = st.session_state.get(key)
    z = raw.get("z") if isinstance(raw, dict) else None
    if not isinstance(z, dict) or not isinstance(z.get("values"), list):
        return None
    try:
        values = [float(v) for v in z["values"]]
    except (TypeError, ValueError):
        return None
    version = z.get("version")
    return {"values": values, "version": None if version is None else int(version),
            "seq": int(z.get("seq") or 0), "final": bool(z.get("final", False))}


def slider_meta(dims: Sequence[dict]) -> dict:
    """The rows' description with a content id, so an unchanged panel is never re-sent."""
    rows = [{"j": int(d["j"]), "label": str(d["label"]), "collapsed": bool(d.get("collapsed", False)),
             "help": str(d.get("help", ""))} for d in dims]
    digest = hashlib.sha1(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]
    return {"id": digest, "dims": rows}


def latent_sliders(
    key: str,
    *,
    dims: Sequence[dict],
    z: Sequence[float],
    z_version: int,
    image: str | None = None,
    decoder: dict | None = None,
    ack: int | None = None,
    on_change: Callable[[], None] | None = None,
    view_size: int = 224,
    kind: str = "latent",
    caption: str | None = None,
) -> None:
    """Draw the panel (see the module docstring).

    dims: one dict per row, in display order: {"j": latent index, "label": "z8 (collapsed)",
    "collapsed": bool, "help": tooltip}. z (D,) and z_version: the values Python holds; the browser
    adopts them whenever z_version changes (after a drag ends, never during one). image: a PNG data
    URI of decode(z) (Python path); decoder: `mlp_decoder_payload(model)` or `onnx_decoder_ref(...)` (its
    session made by the page's ONNX loader) to decode in the browser instead. ack: the `seq` of the last vector Python handled.
    kind: "latent" (the latent sliders, test id latent-sliders) or "strength" (another panel, test id
    strength-sliders, for a decoder of a strength rather than of z). caption: under the image
    (default "decode(z)").
    """
    if kind not in ("latent", "strength"):
        raise ValueError(f"kind must be 'latent' or 'strength', got {kind!r}")
    meta = slider_meta(dims)
    d = len(z)
    if sorted(r["j"] for r in meta["dims"]) != list(range(d)):
        raise ValueError(f"dims must name each of the {d} latent dimensions once")
    have = held(key)
    data: dict[str, Any] = {
        "meta_id": meta["id"],
        "z": [float(v) for v in z],
        "z_version": int(z_version),
        "ack": None if ack is None else int(ack),
        "image": None,
        "view_size": int(view_size),
        "decoder_id": None,
    }
    if have.get("meta") != meta["id"]:
        data["meta"] = meta
    if decoder is not None:
        if decoder_in_dim(decoder) != d:
            raise ValueError(f"the decoder takes {decoder_in_dim(decoder)} latent dims, z has {d}")
        data.update(decoder_fields(decoder, have))
    else:
        data["image"] = image
    if kind != "latent":  # the latent panel's data stays as it was
        data.update(testid=f"{kind}-sliders", caption=caption)
    elif caption is not None:
        data["caption"] = caption

    (_panel if kind == "latent" else _strength_panel)(
        key=key,
        data=data,
        on_z_change=on_change or noop,
        on_cache_change=noop,
        width="stretch",
        height="content",
    )
