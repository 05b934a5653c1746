"""Compare's "Two maps, one selection": the maps of two runs over the same points side by side.

A box, a lasso or a click on either map selects rows of the data; both maps then show that
selection (plotly's `selectedpoints`, the points outside it greyed), each legend entry counts the
selected points of its label ("47 / 412"), and under each map its own run decodes the mean code of
the selection (`cache.decode`: a user's model decodes in its sandboxed worker). The right map is
aligned to the left one by an orthogonal Procrustes fit (`vae_core.maps.map_align`, scipy) when the box
says so: PCA, t-SNE and UMAP maps are all free to turn and mirror, so the fit removes only what
means nothing; its residual is said under the maps.

The maps are the Explore page's (`cache.map_job`: PCA at once, t-SNE/UMAP on the job queue, shared
with any session asking the same), drawn with `figures.map_base_figure` (WebGL, every point's row
as customdata); a selection is kept as a boolean mask over the rows, so 100,000 points cost numpy
work only. Hover is not linked: Streamlit sends a chart's selections, not its hovers.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from . import cache, figures, images, state, widgets

METHODS = ("pca", "tsne", "umap")
DECODE_PX = 84  # the mean code's image is drawn about this wide


def trace_rows(labels: np.ndarray | None, n: int) -> list[np.ndarray]:
    """The rows of each trace of `figures.map_base_figure` (every point fitted), in trace order: one
    trace per distinct label (np.unique's order), or one of all rows when there are no labels."""
    if labels is None:
        return [np.arange(n)]
    y = np.asarray(labels)
    return [np.flatnonzero(y == v) for v in np.unique(y)]


def rows_of_points(points: Sequence[dict], groups: Sequence[np.ndarray], n: int) -> np.ndarray:
    """A plotly selection's points (each with curve_number and point_index, as `st.plotly_chart` reports
    them) as a mask (n,) over the rows; points of other traces (none here) are ignored."""
    mask = np.zeros(n, dtype=bool)
    if not points:
        return mask
    curve = np.fromiter((p.get("curve_number", -1) for p in points), dtype=np.int64, count=len(points))
    index = np.fromiter((p.get("point_index", p.get("point_number", -1)) for p in points), dtype=np.int64,
                        count=len(points))
    for c, rows in enumerate(groups):
        i = index[(curve == c) & (index >= 0) & (index < len(rows))]
        mask[rows[i]] = True
    return mask


def linked_figure(coords: np.ndarray, labels: np.ndarray | None, class_names: Sequence[str] | None,
                  mask: np.ndarray | None, revision: int, height: int = 460) -> go.Figure:
    """One side's map: `figures.map_base_figure` with the shared selection as each trace's
    selectedpoints and its count in the legend ("label 7: 47 / 412"; no selection: "label 7: 412")."""
    fig = figures.map_base_figure(coords, labels, categorical=labels is not None, color_name="label",
                                  class_names=class_names, height=height)
    for tr, rows in zip(fig.data, trace_rows(labels, len(coords))):
        if mask is None:
            tr.name = f"{tr.name}: {len(rows):,}"
        else:
            picked = mask[rows]
            tr.selectedpoints = np.flatnonzero(picked).astype(np.int32)
            tr.name = f"{tr.name}: {int(picked.sum()):,} / {len(rows):,}"
    # a new selection (either side) replaces what the chart holds; zoom and pan stay (uirevision)
    fig.update_layout(dragmode="lasso", clickmode="event+select", selectionrevision=f"sel{revision}",
                      margin=dict(l=0, r=0, t=30, b=0),  # t: the modebar's band
                      # the legend in rows under the map (above, the modebar covers it): the map keeps the width
                      legend=dict(orientation="h", x=0, y=-0.08, yanchor="top", font=dict(size=11)))
    return fig


def _on_select(side: int, groups: list[np.ndarray], n: int) -> None:
    """A chart's selection changed: it becomes the selection of both."""
    ss = st.session_state
    sel = (ss.get(f"{state.LINK_CHART}{side}") or {}).get("selection") or {}
    mask = rows_of_points(sel.get("points") or [], groups, n)
    ss[state.LINK_SEL] = mask if mask.any() else None
    ss[state.LINK_FROM] = side if mask.any() else None
    ss[state.LINK_REV] = ss.get(state.LINK_REV, 0) + 1


def _clear() -> None:
    ss = st.session_state
    ss[state.LINK_SEL], ss[state.LINK_FROM] = None, None
    ss[state.LINK_REV] = ss.get(state.LINK_REV, 0) + 1


def _pick_ui(entries: list) -> tuple[Any, Any, str, bool]:
    """(left entry, right entry, method, align) from the section's controls."""
    labels = [e.label for e in entries]
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2], vertical_alignment="bottom")
    left = c1.selectbox("Left map", range(len(entries)), index=0, format_func=labels.__getitem__,
                        key=f"{state.LINK_PICK}0")
    right = c2.selectbox("Right map", range(len(entries)), index=len(entries) - 1, format_func=labels.__getitem__,
                         key=f"{state.LINK_PICK}1", help="Runs are sorted by beta: by default the smallest on the "
                         "left and the largest on the right")
    method = c3.selectbox("Map", METHODS, format_func=cache.MAP_NAMES.get, key=state.LINK_METHOD,
                          help="PCA at once; t-SNE and UMAP are computed on the server's queue (as on Explore, and "
                               "shared with it)")
    align = c4.checkbox("Align right to left", value=True, key=state.LINK_ALIGN,
                        help="Turn, mirror, shift and scale the right map onto the left one (orthogonal Procrustes, "
                             "least squares over every point): only what a map is free to choose is removed")
    return entries[left], entries[right], method, align


def _alignment_words(fit, method: str) -> str:
    turn = float(np.degrees(np.arctan2(fit.rotation[0, 1], fit.rotation[0, 0])))
    how = f"{'mirrored, then ' if fit.reflects else ''}turned by {turn:.0f}°, scaled by {fit.scale:.3g} and shifted"
    return (f"The right map is aligned to the left one by an orthogonal Procrustes fit of the two "
            f"{cache.MAP_NAMES[method]} maps (scipy): {how}. Residual (Procrustes disparity, 0 = the same shape, "
            "1 = nothing in common): "
            f"{fit.disparity:.3f}.")


def _decode_ui(e, enc, mask: np.ndarray | None) -> None:
    if mask is None:
        return
    z = enc.mu[mask].mean(0, keepdims=True)
    img = cache.decode(e.model, z, scale=max(1, DECODE_PX // e.model.input_shape[-1]))
    st.image(images.grid(img, ncol=1, pad=0), width=2 * DECODE_PX, caption=f"{e.label}: the decoded mean code of "
             f"the {int(mask.sum()):,} selected points")


def maps_ui(titles: Sequence[str], coords: Sequence[np.ndarray], labels: np.ndarray | None,
            names: Sequence[str] | None) -> tuple[list, np.ndarray | None]:
    """Two maps of the same N points side by side with one selection, the count and a Clear button under
    them; returns the two columns (for what each side adds under its map) and the selection mask."""
    n, ss = len(coords[0]), st.session_state
    groups = trace_rows(labels, n)
    mask = ss.get(state.LINK_SEL)
    if mask is not None and len(mask) != n:  # the data changed under a kept selection
        mask = ss[state.LINK_SEL] = None
    rev = ss.get(state.LINK_REV, 0)
    cols = st.columns(2)
    for side, (col, title, xy) in enumerate(zip(cols, titles, coords)):
        with col:
            st.markdown(title)
            st.plotly_chart(linked_figure(xy, labels, names, mask, rev), key=f"{state.LINK_CHART}{side}",
                            on_select=partial(_on_select, side, groups, n), selection_mode=("points", "box", "lasso"),
                            config={"scrollZoom": True})
    picked, side_from = 0 if mask is None else int(mask.sum()), ss.get(state.LINK_FROM)
    c1, c2 = st.columns([4, 1], vertical_alignment="center")
    c1.caption(("Draw a lasso or a box on either map (a click picks one point): the same points light up on the "
                "other, the legends count them, and each run decodes their mean code. Hover is not linked."
                if mask is None else f"Selected {picked:,} of {n:,} points"
                + (f", on the {'left' if side_from == 0 else 'right'} map." if side_from is not None else ".")))
    c2.button("Clear selection", key="cmp_link_clear", on_click=_clear, disabled=mask is None)
    return cols, mask


def linked_maps_ui(entries: list, d: cache.Source, data) -> None:
    """The section: two runs' maps side by side, one selection, each side's decode of its mean code."""
    left, right, method, align = _pick_ui(entries)
    if left.src == right.src:
        st.info("Pick two different runs to put their maps side by side.", icon=":material/info:")
        return
    pair = [left, right]
    encs = [widgets.job_result_ui(cache.encoded_job(e.source, d), note=f" {e.label}.") for e in pair]
    projs = [widgets.job_result_ui(cache.map_job(e.source, d, method, 2), words=None, note=f" {e.label}.")
             for e in pair]
    coords = [np.asarray(p.embedding_, dtype=np.float64) for p in projs]
    fit = None
    if align:
        from vae_core.maps.map_align import procrustes_align

        fit = procrustes_align(coords[0], coords[1])
        coords[1] = fit.aligned
    titles = [f"**{e.label}**" + (f" (beta {e.beta:g})" if e.beta is not None else "") for e in pair]
    cols, mask = maps_ui(titles, coords, data.y, data.meta.get("classes"))
    for col, e, enc in zip(cols, pair, encs):
        with col:
            _decode_ui(e, enc, mask)
    if fit is not None:
        st.caption(_alignment_words(fit, method))
    else:
        st.caption("The right map is drawn as computed (not aligned to the left one).")
