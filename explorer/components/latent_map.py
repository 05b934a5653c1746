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

The browser reports what it holds under state key "cache" ({"plotly": version, "figure": id}) and
a click under "click" ({index, seq}): `index` is the clicked point's customdata (its row).
More per-point payloads (thumbnails as one sprite sheet, say) can travel the same way, held by
content id, and plotly's own hover and box/lasso events can be reported like the click.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import streamlit as st

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


def map_data(have: dict, figure_id: str, figure: Callable[[], str], overlay: list[go.BaseTraceType],
             height: int) -> dict[str, Any]:
    """The element's `data`: ids and the overlay always; plotly.js and the base figure (a plotly JSON
    string, built by `figure()` only when needed) only while the browser lacks them."""
    version, source = plotly_js()
    data: dict[str, Any] = {"plotly_id": version, "figure_id": figure_id, "height": int(height),
                            "overlay": go.Figure(data=overlay).to_json()}
    if have.get("plotly") != version:
        data["plotly_js"] = source
    if have.get("figure") != figure_id:
        data["figure"] = figure()
    return data


def latent_map(key: str, *, figure_id: str, figure: Callable[[], str], overlay: list[go.BaseTraceType],
               on_click: Callable[[], None] | None = None, height: int = 520) -> dict | None:
    """Draw the map; returns the last click {index, seq} (or None). figure_id names the base figure's
    content (a new id sends it again); on_click runs when the browser reports a click."""
    _map(key=key, data=map_data(held(key), figure_id, figure, overlay, height),
         on_click_change=on_click or noop, on_cache_change=noop, width="stretch", height="content")
    return clicked(key)


def payload_bytes(data: dict[str, Any]) -> int:
    """Bytes of `data` as JSON (what the element carries besides its JS/CSS): for the benchmark."""
    return len(json.dumps(data).encode())
