"""The latent map: a components-v2 element that draws the map with plotly.js and sends its N points once.

Why not `st.plotly_chart`: it sends the whole figure again whenever the figure changes, and on
this page it changes on every click (the selected point's ring and its cloud of posterior samples
are part of it), so each selection re-sent all N points (16 MB at 1,000,000 points: see
`benchmarks/scale_maps.py`). Streamlit's own re-use of unchanged elements (the browser keeps
elements it has seen and is sent a reference when the same bytes come again) only helps while
the figure stays byte-identical. Here the N points (the base figure, plotly's JSON with float32
"bdata" arrays) travel while the browser does not hold them, by content id, like the pad's
scatter; each rerun sends only the small overlay traces (the selected point, its samples).

plotly.js: Streamlit's own copy lives inside its private bundle, so the component loads the
plotly.min.js that ships with the plotly Python package, sent once per browser page (4.8 MB,
about what Streamlit's own chart element downloads) and kept on `window.Plotly`.

The browser reports what it holds under state key "cache" ({"plotly": version, "figure": id,
"thumbs": id, "density": id}) and a click under "click" ({index, seq}): `index` is the clicked
point's customdata (its row).

Layers held by content id like the figure (`MapLayer`): the thumbnails, every point's image in one
PNG sprite sheet (`vae_core.maps.map_plane.thumbnail_sheet`), so hovering a point shows its image with
no server round trip and the "thumbnails" view draws images in place of dots once at most
`THUMBS_IN_VIEW` points are in view; and the density contour. A box or lasso selection (plotly's
own tools and `plotly_selected`) comes back under "selection" as {rows, n, map, seq}: rows is the
sorted selected rows as base64 little-endian int32 (4 bytes a point, not a JSON list), map the
`selection_id` of the map it was made on (a selection on another map is stale).
"""
from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from vae_core.maps.map_plane import ThumbnailSheet

from .base import _joined, asset_css, held, noop

# Only the scaffold's helpers (mount, el, reportHeld) are needed: no decoder, no sender.
_map = st.components.v2.component("vae_latent_map", js=_joined(("scaffold.js", "map.js")),
                                  css=asset_css("map.css"), isolate_styles=False)
# isolate_styles=False: plotly.js puts its own styles (modebar, hover labels) in the document head,
# which would not reach inside a shadow root.


@lru_cache(maxsize=1)
def plotly_js() -> tuple[str, str]:
    """(version id, source) of the plotly.min.js shipped with the plotly Python package."""
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return f"plotly.py-{plotly.__version__}", path.read_text(encoding="utf-8")


def clicked(key: str) -> dict | None:
    """The last click the browser reported {index, seq}, or None."""
    raw = st.session_state.get(key)
    c = raw.get("click") if isinstance(raw, dict) else None
    if not isinstance(c, dict) or not isinstance(c.get("index"), int):
        return None
    return {"index": int(c["index"]), "seq": int(c.get("seq") or 0)}


THUMBS_IN_VIEW = 2000  # the "thumbnails" view draws images when at most this many points are in view


@dataclass(frozen=True)
class MapLayer:
    """A payload the browser keeps by content id: `build()` runs only while the browser lacks `id`."""

    id: str
    build: Callable[[], Any]


def map_data(have: dict, figure_id: str, figure: Callable[[], str], overlay: list[go.BaseTraceType],
             height: int, *, layers: dict[str, MapLayer | None] | None = None, selection_id: str = "",
             thumbnails_view: bool = False) -> dict[str, Any]:
    """The element's `data`: ids and the overlay always; plotly.js, the base figure (a plotly JSON
    string, built by `figure()` only when needed) and each layer ("thumbs", "density": None = off)
    only while the browser lacks them."""
    version, source = plotly_js()
    data: dict[str, Any] = {"plotly_id": version, "figure_id": figure_id, "height": int(height),
                            "overlay": go.Figure(data=overlay).to_json(), "selection_id": selection_id,
                            "thumbnails_view": bool(thumbnails_view), "thumbs_in_view": THUMBS_IN_VIEW}
    if have.get("plotly") != version:
        data["plotly_js"] = source
    if have.get("figure") != figure_id:
        data["figure"] = figure()
    for name, layer in (layers or {}).items():
        data[f"{name}_id"] = None if layer is None else layer.id
        if layer is not None and have.get(name) != layer.id:
            data[name] = layer.build()
    return data


def latent_map(key: str, *, figure_id: str, figure: Callable[[], str], overlay: list[go.BaseTraceType],
               on_click: Callable[[], None] | None = None, height: int = 520,
               layers: dict[str, MapLayer | None] | None = None, selection_id: str = "",
               thumbnails_view: bool = False) -> dict | None:
    """Draw the map; returns the last click {index, seq} (or None). figure_id names the base figure's
    content (a new id sends it again); on_click runs when the browser reports a click. layers:
    "thumbs" (a `thumbs_payload`) and "density" (a plotly trace's JSON), each None when off.
    selection_id names the points a box/lasso selection refers to (read it with `selected_rows`)."""
    _map(key=key, data=map_data(held(key), figure_id, figure, overlay, height, layers=layers,
                                selection_id=selection_id, thumbnails_view=thumbnails_view),
         on_click_change=on_click or noop, on_cache_change=noop, on_selection_change=noop,
         width="stretch", height="content")
    return clicked(key)


def thumbs_payload(ts: ThumbnailSheet, n: int) -> dict[str, Any]:
    """The thumbnails layer: the sheet as a PNG data URI with its layout, for a map of n points
    (rows >= count have none). PNG level 1: 3x faster than the default, 5% larger (benchmarks/map_hover.py)."""
    buf = io.BytesIO()
    Image.fromarray(ts.sheet).save(buf, format="PNG", compress_level=1)
    return {"src": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
            "count": ts.count, "th": ts.th, "tw": ts.tw, "ncol": ts.ncol, "factor": ts.factor, "n": int(n)}


def encode_rows(rows: np.ndarray) -> str:
    """Rows as the browser reports them: base64 of little-endian int32 (the JS side's encoding)."""
    return base64.b64encode(np.asarray(rows, dtype="<i4").tobytes()).decode("ascii")


def decode_rows(payload: Any, n: int) -> np.ndarray:
    """A reported selection {rows: base64 little-endian int32, n: count} -> sorted unique int64 rows in [0, n).

    Raises ValueError naming what is wrong (not base64, a count that disagrees, a row out of range)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("rows"), str):
        raise ValueError("the selection must be {rows: base64 int32, n: count}")
    try:
        raw = base64.b64decode(payload["rows"], validate=True)
    except ValueError:
        raise ValueError("the selection's rows are not base64") from None
    if len(raw) % 4:
        raise ValueError(f"the selection's rows are {len(raw)} bytes, not a whole number of int32")
    rows = np.frombuffer(raw, dtype="<i4").astype(np.int64)
    if payload.get("n") is not None and int(payload["n"]) != len(rows):
        raise ValueError(f"the selection says {payload['n']} rows but carries {len(rows)}")
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"the selection's rows must lie in [0, {n - 1}], got {rows.min()} to {rows.max()}")
    return np.unique(rows)


def selected_rows(key: str, n: int, selection_id: str) -> np.ndarray | None:
    """The rows of the box/lasso selection the browser reported on the map `selection_id` (of n
    points), or None: nothing selected, the selection cleared, or made on another map."""
    raw = st.session_state.get(key)
    sel = raw.get("selection") if isinstance(raw, dict) else None
    if not isinstance(sel, dict) or sel.get("map") != selection_id:
        return None
    try:
        rows = decode_rows(sel, n)
    except ValueError:
        return None
    return rows if rows.size else None


def payload_bytes(data: dict[str, Any]) -> int:
    """Bytes of `data` as JSON (what the element carries besides its JS/CSS): for the benchmark."""
    return len(json.dumps(data).encode())
