"""The latent pad: a components-v2 drag pad over a 2-D latent plane (REALTIME.md, points 2-3).

Thin Python: it registers the JS/CSS in `assets/` once, keeps the per-update `data` small
(the scatter and the decoder weights are sent only while the browser lacks them), and returns
the position the browser reports.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import streamlit as st

from .base import decoder_fields, held, noop, register

_pad = register("vae_latent_pad", "pad.js", "pad.css")


def _points_id(points: np.ndarray, colors: Sequence[Any] | None) -> str:
    """Content hash of the scatter, so an unchanged map is never re-sent."""
    h = hashlib.sha1(points.tobytes())
    if colors is not None:
        h.update(repr(list(colors)).encode())
    return h.hexdigest()[:16]


def _compact(a: np.ndarray) -> list[float]:
    """4 significant digits: plenty for a faint background scatter, a third of the JSON."""
    return [float(f"{v:.4g}") for v in a.ravel().tolist()]


def _as_state(pos: dict, fallback: Sequence[float]) -> dict:
    """The browser's {x, y, seq, down} with types fixed; x and y from `fallback` where absent."""
    return {"x": float(pos.get("x", fallback[0])), "y": float(pos.get("y", fallback[1])),
            "seq": int(pos.get("seq", 0)), "down": bool(pos.get("down", False))}


def pad_state(key: str) -> dict | None:
    """The pad's last reported state {x, y, seq, down}, or None before the browser sent any."""
    raw = st.session_state.get(key)
    pos = raw.get("pos") if isinstance(raw, dict) else None
    if not isinstance(pos, dict) or "x" not in pos:
        return None
    return _as_state(pos, (0.0, 0.0))


def _scatter_fields(points, colors: Sequence[Any] | None, points_id: str | None, have: dict) -> dict:
    """`data` entries for the background map: its version always, the points only while not held."""
    if points is None:
        return {"scatter_version": None}
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (M, 2), got {pts.shape}")
    if colors is not None and len(colors) != len(pts):
        raise ValueError(f"colors must have one entry per point ({len(pts)}), got {len(colors)}")
    version = points_id or _points_id(pts, colors)
    fields: dict[str, Any] = {"scatter_version": version}
    if have.get("scatter") != version:
        fields["points"] = _compact(pts)
        if colors is not None:
            fields["colors"] = [c if isinstance(c, str) else int(c) for c in colors]
    return fields


def _plane_decoder_fields(decoder: dict | None, origin, axes, have: dict) -> dict:
    """`data` entries for decoding in the browser, z = origin + x*axes[0] + y*axes[1]."""
    if decoder is None:
        return {"decoder_id": None}
    if origin is None or axes is None:
        raise ValueError("decoder needs origin (D,) and axes (2, D) to turn a pad position into z")
    o = np.asarray(origin, dtype=np.float64).ravel()
    a = np.asarray(axes, dtype=np.float64)
    d_in = decoder["layers"][0]["shape"][1]
    if o.shape != (d_in,) or a.shape != (2, d_in):
        raise ValueError(f"origin must be ({d_in},) and axes (2, {d_in}) for this decoder; "
                         f"got {o.shape} and {a.shape}")
    return {**decoder_fields(decoder, have), "origin": o.tolist(), "axes": a.tolist()}


def latent_pad(
    key: str,
    *,
    points: Sequence[Sequence[float]] | np.ndarray | None = None,
    colors: Sequence[Any] | None = None,
    points_id: str | None = None,
    bounds: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
    pos: tuple[float, float] = (0.0, 0.0),
    image: str | None = None,
    decoder: dict | None = None,
    origin: Sequence[float] | None = None,
    axes: Sequence[Sequence[float]] | None = None,
    ack: int | None = None,
    on_change: Callable[[], None] | None = None,
    size: int = 280,
    view_size: int = 160,
) -> dict:
    """Draw the pad and return its state {x, y, seq, down} (see module and REALTIME.md).

    points (M, 2) and colors (M,: CSS colours or integer labels) draw a faint background map;
    bounds = (xmin, xmax, ymin, ymax); pos is where Python puts the marker when no drag is under
    way; image is a PNG data URI shown beside the pad (Python path); decoder is
    `mlp_decoder_payload(model)` to decode in the browser, with z = origin + x*axes[0] + y*axes[1];
    ack is the `seq` of the last position Python handled (flow control); on_change runs when the
    browser reports a new position.
    """
    x0, x1, y0, y1 = (float(b) for b in bounds)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"bounds must be (xmin, xmax, ymin, ymax) with xmin < xmax, ymin < ymax; got {bounds!r}")
    have = held(key)
    data: dict[str, Any] = {
        "bounds": [x0, x1, y0, y1],
        "pos": [float(pos[0]), float(pos[1])],
        "ack": None if ack is None else int(ack),
        "image": image,
        "size": int(size),
        "view_size": int(view_size),
        **_scatter_fields(points, colors, points_id, have),
        **_plane_decoder_fields(decoder, origin, axes, have),
    }
    result = _pad(
        key=key,
        data=data,
        default={"pos": {"x": float(pos[0]), "y": float(pos[1]), "seq": 0, "down": False}},
        on_pos_change=on_change or noop,
        on_cache_change=noop,
        width="stretch",
        height="content",
    )
    return _as_state(result.get("pos") or {}, pos)
