"""The latent pad: a components-v2 drag pad over a 2-D latent plane (docs/live-decoding.md,
"The design", points 2-3).

Thin Python: it registers the JS/CSS in `assets/` once, keeps the per-update `data` small
(the scatter and the decoder weights are sent only while the browser lacks them), and returns
the position the browser reports. The scatter is a bounded, label-stratified sample of the map
(`MAX_DRAWN` points) as base64 typed arrays, so a 1,000,000-point map costs the pad what a
20,000-point one does (`benchmarks/pad_scale.py`).
"""
from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import streamlit as st

from vae_core.maps.map_arrays import stratified_sample

from .. import figures

from .base import decoder_fields, held, noop, register
from .browser_decoder import decoder_in_dim

_pad = register("vae_latent_pad", "pad.js", "pad.css")
# A faint background at ~300 px: 20,000 points fill it; more cost bytes and drawing, not information.
MAX_DRAWN = 20_000
PALETTE = tuple(figures.PALETTE)  # the one label palette of every page


def _points_id(points: np.ndarray, colors: Sequence[Any] | None) -> str:
    """Content hash of the scatter, so an unchanged map is never re-sent."""
    h = hashlib.sha1(points.tobytes())
    if colors is not None:
        h.update(np.asarray(colors).tobytes())
    return h.hexdigest()[:16]


def _b64(a: np.ndarray) -> str:
    """Base64 of an array's bytes (little-endian, what a JS typed array reads on every browser)."""
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def drawn_sample(n: int, strata: np.ndarray | None, cap: int = MAX_DRAWN, seed: int = 0) -> np.ndarray:
    """Sorted indices of the points the pad draws: all n up to `cap`, else `cap` of them, each label
    (stratum) in its share (`vae_core.maps.map_arrays.stratified_sample`), thinned to `cap` when there are
    more labels than `cap`."""
    pick = stratified_sample(n, cap, strata, seed)
    if pick.size > cap:
        pick = np.sort(np.random.default_rng(seed).choice(pick, size=cap, replace=False))
    return pick


def _colour_codes(colors: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(strata (M,), uint8 palette index per point (M,), palette): integer labels index `PALETTE`
    modulo its length; CSS colours index the list of their distinct values."""
    c = np.asarray(colors)
    if c.dtype.kind == "f" and np.all(np.isfinite(c)) and np.all(c == np.round(c)):
        c = c.astype(np.int64)  # integer labels that travelled as floats
    if c.dtype.kind in "iub":
        return c, (c.astype(np.int64) % len(PALETTE)).astype(np.uint8), list(PALETTE)
    if c.dtype.kind not in "USO":
        raise ValueError(f"colors must be integer labels or CSS colour strings, got {c.dtype} values; "
                         "pass the labels as integers.")
    names, inverse = np.unique(c.astype(str), return_inverse=True)
    if len(names) > 256:
        raise ValueError(f"colors must be at most 256 distinct CSS colours, got {len(names)}; "
                         "pass integer labels instead.")
    return inverse, inverse.astype(np.uint8), names.tolist()


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


def _scatter_fields(points, colors: Sequence[Any] | None, points_id: str | None, have: dict,
                    cap: int = MAX_DRAWN) -> dict:
    """`data` entries for the background map: its version and sizes always; the drawn points only
    while the browser does not hold them, as base64 float32 x, y pairs (`xy`) and uint8 indices into
    `palette` (`codes`), at most `cap` of them (`drawn_sample`)."""
    if points is None:
        return {"scatter_version": None}
    pts = np.asarray(points)  # converted to float32 only when sent: a rerun copies nothing
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (M, 2), got {pts.shape}")
    if colors is not None and len(colors) != len(pts):
        raise ValueError(f"colors must have one entry per point ({len(pts)}), got {len(colors)}")
    version = points_id or _points_id(pts, colors)
    fields: dict[str, Any] = {"scatter_version": version, "n_total": len(pts)}
    if have.get("scatter") == version:
        return fields
    strata, codes, palette = _colour_codes(colors) if colors is not None else (None, None, [])
    pick = drawn_sample(len(pts), strata, cap)
    fields.update(n_drawn=int(pick.size), xy=_b64(pts[pick].astype("<f4", copy=False)),
                  codes=None if codes is None else _b64(codes[pick]), palette=palette)
    return fields


def _plane_decoder_fields(decoder: dict | None, origin, axes, have: dict) -> dict:
    """`data` entries for decoding in the browser, z = origin + x*axes[0] + y*axes[1]."""
    if decoder is None:
        return {"decoder_id": None}
    if origin is None or axes is None:
        raise ValueError("decoder needs origin (D,) and axes (2, D) to turn a pad position into z")
    o = np.asarray(origin, dtype=np.float64).ravel()
    a = np.asarray(axes, dtype=np.float64)
    d_in = decoder_in_dim(decoder)
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
    max_drawn: int = MAX_DRAWN,
) -> dict:
    """Draw the pad and return its state {x, y, seq, down} (see module and docs/live-decoding.md).

    points (M, 2) and colors (M,: CSS colours or integer labels) draw a faint background map, at
    most `max_drawn` of its points (each label in its share; `drawn_sample`), sent once per map as
    base64 float32/uint8 arrays; bounds = (xmin, xmax, ymin, ymax); pos is where Python puts the marker when no drag is under
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
        **_scatter_fields(points, colors, points_id, have, max_drawn),
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
