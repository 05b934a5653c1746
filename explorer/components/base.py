"""What the pad and the slider panel share on the Python side: registering a component from its
files in `assets/`, and the cached-payload handshake.

Assembling the JS: components v2 loads an inline `js` string as one ES module through a blob URL,
where relative `import`s cannot resolve (asset paths only work for components installed as
packages with a manifest). So each component's module is the shared files, in `SHARED_JS` order,
followed by its own file, joined into one string; its CSS likewise (`SHARED_CSS`, then its own).

The handshake: the browser reports under state key "cache" which payloads it holds (the scatter,
the slider labels, the decoder weights, each by content id); Python sends a payload only while the
browser's report differs from it, so an unchanged payload travels once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

ASSETS = Path(__file__).parent / "assets"
# decoder.js: weights -> image; sender.js: requests in flight, acks, timeout; scaffold.js: mount,
# DOM helpers and the per-component state both components keep the same way.
SHARED_JS = ("decoder.js", "sender.js", "scaffold.js")
SHARED_CSS = ("scaffold.css",)  # the decoded image's view, made by scaffold.js's addView


def _joined(files: tuple[str, ...]) -> str:
    return "\n".join((ASSETS / f).read_text(encoding="utf-8") for f in files)


def asset_js(name: str) -> str:
    """A component's ES module: the shared JS files in front of its own file `name`."""
    return _joined((*SHARED_JS, name))


def asset_css(name: str) -> str:
    """A component's CSS: the shared CSS in front of its own file `name`."""
    return _joined((*SHARED_CSS, name))


def register(name: str, js: str, css: str):
    """Register component `name` with its own JS and CSS files; returns the callable that draws it."""
    # Inline strings: asset paths only work for components installed as packages with a manifest.
    return st.components.v2.component(name, js=asset_js(js), css=asset_css(css))


def noop() -> None:
    """Callback for state keys Python reads in the script body but does not react to."""


def held(key: str) -> dict:
    """What the browser says component `key` holds ({payload: content id}); empty before it said."""
    raw = st.session_state.get(key)
    have = raw.get("cache") if isinstance(raw, dict) else None
    return have if isinstance(have, dict) else {}


def decoder_fields(decoder: dict, have: dict) -> dict[str, Any]:
    """`data` entries for an in-browser decoder: its id always, its weights only while not held.

    A decoder derived from a model's (one with a `base_id`, the model payload's id: a new first
    layer over the model's own deeper layers) travels as its first layer alone,
    {"id", "base_id", "output", "first"}, while the browser reports under "base" that it holds a
    decoder of that base_id; the browser keeps the deeper layers it has. Decoders without a
    `base_id` (the latent sliders', the pad's) travel whole, as always.
    """
    fields: dict[str, Any] = {"decoder_id": decoder["id"]}
    if decoder.get("kind") == "onnx":  # a reference to the page's session: small, sent every time
        return {**fields, "decoder": decoder}
    if have.get("decoder") == decoder["id"]:
        return fields
    base_id = decoder.get("base_id")
    if base_id is not None and have.get("base") == base_id:
        fields["decoder"] = {"id": decoder["id"], "base_id": base_id, "output": decoder["output"],
                             "first": decoder["layers"][0]}
    else:
        fields["decoder"] = decoder
    return fields
