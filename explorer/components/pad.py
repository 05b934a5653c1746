"""The latent pad: a components-v2 drag pad over a 2-D latent plane (REALTIME.md, points 2-3).

Thin Python: it registers the JS/CSS in `assets/` once, keeps the per-update `data` small
(the scatter and the decoder weights are sent only while the browser lacks them), and returns
the position the browser reports.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

_ASSETS = Path(__file__).parent / "assets"



def asset_js(name: str) -> str:
    """A component's ES module: the shared decoder/sender code (`decoder.js`) in front of `name`."""
    return "\n".join((_ASSETS / f).read_text(encoding="utf-8") for f in ("decoder.js", name))


def asset_css(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


# Inline strings: asset paths only work for components installed as packages with a manifest.
_pad = st.components.v2.component(
    "vae_latent_pad",
    js=asset_js("pad.js"),
    css=asset_css("pad.css"),
)


def _noop() -> None:
    """Callback for state keys Python reads but does not react to."""


def _points_id(points: np.ndarray, colors: Sequence[Any] | None) -> str:
    """Content hash of the scatter, so an unchanged map is never re-sent."""
    h = hashlib.sha1(points.tobytes())
    if colors is not None:
        h.update(repr(list(colors)).encode())
    return h.hexdigest()[:16]


def _compact(a: np.ndarray) -> list[float]:
    """4 significant digits: plenty for a faint background scatter, a third of the JSON."""
    return [float(f"{v:.4g}") for v in a.ravel().tolist()]


def pad_state(key: str) -> dict | None:
    """The pad's last reported state {x, y, seq, down}, or None before the browser sent any."""
    raw = st.session_state.get(key)
    pos = raw.get("pos") if isinstance(raw, dict) else None
    if not isinstance(pos, dict) or "x" not in pos:
        return None
    return {"x": float(pos["x"]), "y": float(pos["y"]), "seq": int(pos.get("seq", 0)),
            "down": bool(pos.get("down", False))}


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

    # What the browser says it holds (reported by the JS under state key "cache").
    raw = st.session_state.get(key)
    have = raw.get("cache") if isinstance(raw, dict) else None
    have = have if isinstance(have, dict) else {}

    data: dict[str, Any] = {
        "bounds": [x0, x1, y0, y1],
        "pos": [float(pos[0]), float(pos[1])],
        "ack": None if ack is None else int(ack),
        "image": image,
        "size": int(size),
        "view_size": int(view_size),
        "scatter_version": None,
        "decoder_id": None,
    }
    if points is not None:
        pts = np.asarray(points, dtype=np.float32)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points must have shape (M, 2), got {pts.shape}")
        if colors is not None and len(colors) != len(pts):
            raise ValueError(f"colors must have one entry per point ({len(pts)}), got {len(colors)}")
        version = points_id or _points_id(pts, colors)
        data["scatter_version"] = version
        if have.get("scatter") != version:
            data["points"] = _compact(pts)
            if colors is not None:
                data["colors"] = [c if isinstance(c, str) else int(c) for c in colors]

    if decoder is not None:
        if origin is None or axes is None:
            raise ValueError("decoder needs origin (D,) and axes (2, D) to turn a pad position into z")
        o = np.asarray(origin, dtype=np.float64).ravel()
        a = np.asarray(axes, dtype=np.float64)
        d_in = decoder["layers"][0]["shape"][1]
        if o.shape != (d_in,) or a.shape != (2, d_in):
            raise ValueError(f"origin must be ({d_in},) and axes (2, {d_in}) for this decoder; "
                             f"got {o.shape} and {a.shape}")
        data["decoder_id"] = decoder["id"]
        data["origin"] = o.tolist()
        data["axes"] = a.tolist()
        if have.get("decoder") != decoder["id"]:
            data["decoder"] = decoder

    result = _pad(
        key=key,
        data=data,
        default={"pos": {"x": float(pos[0]), "y": float(pos[1]), "seq": 0, "down": False}},
        on_pos_change=on_change or _noop,
        on_cache_change=_noop,
        width="stretch",
        height="content",
    )
    p = result.get("pos") or {}
    return {"x": float(p.get("x", pos[0])), "y": float(p.get("y", pos[1])),
            "seq": int(p.get("seq", 0)), "down": bool(p.get("down", False))}
