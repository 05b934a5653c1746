"""Plotly figures: arrays in, `go.Figure` out. No Streamlit; testable on their own."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

# The one palette of labels on every page and figure (the map, the pad, the training replay): label v
# is PALETTE[v % 10]. matplotlib's tab10 with its grey (label 7) made indigo: a selection greys the
# points outside it, and a grey label read as unselected. Every figure sets its colours from here:
# left to plotly, a figure took Streamlit's theme colours, whose tenth (label 9) is a near-white grey.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#393b79", "#bcbd22", "#17becf"]


def _category_color(v, j: int) -> str:
    """An integer category's label colour; any other category (a string) by its place j."""
    try:
        if float(v) == int(v):
            return label_color(v)
    except (TypeError, ValueError):
        pass
    return PALETTE[j % len(PALETTE)]


def label_color(value) -> str:
    """The colour of integer label `value` on every page (PALETTE, cycling past 10 labels)."""
    return PALETTE[int(value) % len(PALETTE)]


# --- log axes: every tick labelled with its full value ------------------------------------------
# Plotly's automatic log ticks label the minor ticks with their mantissa only ("0.01, 2, 5, 0.1"),
# which reads as 2 and 5 nats. Every log axis here sets its ticks itself (tickmode "array").

def full_number(v: float, digits: int = 3) -> str:
    """v with `digits` significant digits, written out in full: 0.01, 0.02, 0.5, 2, 1000 (1e-05 and 2e+06
    beyond 1e-4..1e6)."""
    v = float(v)
    if v == 0 or not np.isfinite(v):
        return "0" if v == 0 else str(v)
    if 1e-4 <= abs(v) < 1e6:
        return np.format_float_positional(float(f"{v:.{digits}g}"), trim="-")
    return f"{v:.{digits}g}".replace("e-0", "e-").replace("e+0", "e+")


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Tick values from lo to hi (both > 0) for a log axis, and their full-value labels.

    1-2-5 in each decade up to 2.5 decades, 1-3 up to 5 decades, whole decades beyond (so the
    labels never crowd); at least two ticks (1..9 in the decade when the range is narrower)."""
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    if not (lo > 0 and np.isfinite(hi)):
        raise ValueError(f"a log axis needs 0 < lo <= hi, got {lo}, {hi}")
    decades = np.log10(hi / lo)

    def pick(mant: tuple[int, ...]) -> list[float]:
        e0, e1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
        vals = [float(f"{m * 10.0 ** e:.12g}") for e in range(e0, e1 + 1) for m in mant]
        return [v for v in vals if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]

    vals = pick((1, 2, 5) if decades <= 2.5 else (1, 3) if decades <= 5 else (1,))
    if len(vals) < 2:
        vals = pick(tuple(range(1, 10)))
    if len(vals) < 2:
        vals = sorted({lo, hi})
    return vals, [full_number(v) for v in vals]


def log_axis(lo: float, hi: float, *, below: float = 0.0) -> dict:
    """Layout of a log axis shown from lo to hi, every tick labelled in full; `below` decades of
    room under lo (so bars drawn at a floor lo still show a stub)."""
    vals, text = log_ticks(lo, hi)
    return dict(type="log", range=[float(np.log10(lo)) - below, float(np.log10(hi))], tickmode="array",
                tickvals=vals, ticktext=text)


# --- the latent map: the N points (built once per map) and the small overlays (every rerun) -------
# Arrays go to plotly as numpy float32 / int32, which plotly 7 writes as base64 typed arrays
# ("bdata") rather than JSON lists of numbers: 12 bytes per 2-D point before base64 (x, y, index).

FITTED_NAME = "fitted"  # the points a t-SNE/UMAP map was computed from
PLACED_NAME = "placed afterwards"  # the points placed into the finished map with its transform


def _kinds(fitted: np.ndarray | None, n: int) -> list[tuple[str | None, np.ndarray]]:
    """[(kind name or None, mask)]: one entry (None) when every point was fitted, else fitted and placed."""
    if fitted is None or bool(np.all(fitted)):
        return [(None, np.ones(n, dtype=bool))]
    f = np.asarray(fitted, dtype=bool)
    return [(FITTED_NAME, f), (PLACED_NAME, ~f)]


def map_base_figure(coords: np.ndarray, color: np.ndarray | None, *, categorical: bool, color_name: str,
                    class_names: Sequence[str] | None = None, fitted: np.ndarray | None = None,
                    height: int = 520, shown: np.ndarray | None = None, highlight: bool = False) -> go.Figure:
    """Scatter of map coordinates (N, 2|3), WebGL; every point carries its index as customdata.

    shown (N,) bool: the rows a filter keeps (`explorer/map_filter.py`); the others are left out, or with
    highlight drawn as one grey trace behind (no hover, no click). Each legend entry then says how many of
    its points the filter keeps ("label 7 (47 / 412)").

    fitted (N,) bool: where some points were placed into a fitted map (t-SNE/UMAP beyond the fit
    sample), each colour splits into a "fitted" and a "placed afterwards" trace, grouped so in the
    legend (a click on a group hides it) and named in the hover; placed points are drawn fainter.
    """
    three = coords.shape[1] == 3
    xyz = np.asarray(coords, dtype=np.float32)
    idx = np.arange(len(xyz), dtype=np.int32)
    kinds = _kinds(fitted, len(xyz))
    fig = go.Figure()
    size = 3 if three else 5
    keep = None if shown is None else np.asarray(shown, dtype=bool)
    if keep is not None and highlight and (~keep).any():
        rest = ~keep
        grey = dict(mode="markers", name=f"filtered out ({int(rest.sum()):,})", hoverinfo="skip",
                    marker=dict(size=size, color="#c8c8c8", opacity=0.35))
        if three:
            fig.add_trace(go.Scatter3d(x=xyz[rest, 0], y=xyz[rest, 1], z=xyz[rest, 2], **grey))
        else:
            fig.add_trace(go.Scattergl(x=xyz[rest, 0], y=xyz[rest, 1], **grey))

    def add(sel: np.ndarray, name: str, kind: str | None, marker: dict) -> None:
        """One trace of the points `sel`, in legend group `kind` (titled with the group's size)."""
        if kind is not None and not sel.any():
            return
        if keep is not None:  # the legend says how many of this entry's points the filter keeps
            name = f"{name} ({int((sel & keep).sum()):,} / {int(sel.sum()):,})"
            sel = sel & keep
        if isinstance(marker.get("color"), np.ndarray):  # a colour per point: this trace's points'
            marker["color"] = marker["color"][sel]
        opacity = marker.pop("opacity") * (0.55 if kind == PLACED_NAME else 1.0)
        common = dict(mode="markers", customdata=idx[sel], name=name, marker=dict(size=size, opacity=opacity, **marker),
                      hovertemplate="point %{customdata}<extra>%{fullData.name}"
                                    + ("" if kind is None else f" ({kind})") + "</extra>")
        if not three:  # a box/lasso selection greys the points outside it, which stay visible
            common.update(unselected=UNSELECTED)
        if kind is not None:
            size_of = dict((k, int(m.sum())) for k, m in kinds)[kind]
            common.update(legendgroup=kind, legendgrouptitle_text=f"{kind} ({size_of:,})")
        if three:
            fig.add_trace(go.Scatter3d(x=xyz[sel, 0], y=xyz[sel, 1], z=xyz[sel, 2], **common))
        else:
            fig.add_trace(go.Scattergl(x=xyz[sel, 0], y=xyz[sel, 1], **common))

    if color is not None and not categorical:
        c = np.asarray(color, dtype=np.float32)
        finite = c[np.isfinite(c)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    for k, (kind, part) in enumerate(kinds):
        if color is None:
            add(part, "points", kind, dict(color=PALETTE[0], opacity=0.7))
        elif categorical:
            for j, v in enumerate(np.unique(color)):
                label = class_names[int(v)] if class_names is not None and int(v) < len(class_names) else str(v)
                # by the label's value, as the pad and the replay: a label keeps its colour whatever is shown
                add(part & (color == v), f"{color_name} {label}", kind,
                    dict(color=_category_color(v, j), opacity=0.75))
        else:
            add(part, color_name, kind, dict(
                color=c, colorscale="Viridis", cmin=lo, cmax=hi, opacity=0.8, showscale=k == 0,
                colorbar=dict(title=dict(text=color_name, side="right"), thickness=12)))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=34, b=0),  # t: the modebar's own band above the legend
                      legend=dict(itemsizing="constant", groupclick="toggleitem"),
                      clickmode="event", dragmode="pan" if not three else "orbit", uirevision="map")
    return fig


UNSELECTED = dict(marker=dict(color="#b4b4b4", opacity=0.25))  # points outside a box/lasso selection


def map_density_trace(xs: np.ndarray, ys: np.ndarray, density: np.ndarray, levels: int = 8) -> go.Contour:
    """Contour lines of point density over the 2-D map (`map_plane.density_grid`'s output): the
    lines only, so the points stay visible; no hover, no legend click needed to read it."""
    return go.Contour(x=np.asarray(xs, np.float32), y=np.asarray(ys, np.float32),
                      z=np.asarray(density, np.float32), ncontours=levels, showscale=False,
                      contours=dict(coloring="lines"), line=dict(width=1), colorscale="Greys",
                      hoverinfo="skip", name="density", showlegend=True)


def selection_kl_figure(kl_selected: np.ndarray, kl_rest: np.ndarray | None, height: int = 220) -> go.Figure:
    """KL per dimension (nats) of a map selection beside the rest of the points, grouped bars."""
    dims = [f"z{j}" for j in range(len(kl_selected))]
    fig = go.Figure(go.Bar(x=dims, y=kl_selected, name="selection", marker_color=PALETTE[0]))
    if kl_rest is not None:
        fig.add_trace(go.Bar(x=dims, y=kl_rest, name="the rest", marker_color="#b4b4b4"))
    fig.update_layout(barmode="group", height=height, margin=dict(l=0, r=0, t=10, b=0),
                      yaxis_title="KL (nats)", legend=dict(orientation="h", y=1.1))
    return fig


def map_overlay_traces(selected_at: np.ndarray | None, posterior: np.ndarray | None,
                       three: bool) -> list[go.BaseTraceType]:
    """The two small traces drawn over the map, always both (empty when there is nothing to show):
    the cloud of samples z ~ q(z|x) of the selected point (S, 2|3), and the selected point's ring."""
    def pts(a: np.ndarray | None) -> np.ndarray:
        return np.zeros((0, 3 if three else 2), np.float32) if a is None else np.atleast_2d(a).astype(np.float32)

    cloud, ring = pts(posterior), pts(selected_at)
    specs = [(cloud, dict(name="samples z ~ q(z|x)", marker=dict(size=4, color="rgba(0,0,0,0.35)"))),
             (ring, dict(name="selected", marker=dict(size=14 if not three else 7, color="rgba(0,0,0,0)",
                                                       line=dict(color="black", width=3))))]
    out = []
    for a, kw in specs:
        kw.update(mode="markers", hoverinfo="skip", showlegend=len(a) > 0)
        out.append(go.Scatter3d(x=a[:, 0], y=a[:, 1], z=a[:, 2], **kw) if three
                   else go.Scattergl(x=a[:, 0], y=a[:, 1], **kw))
    return out


def map_figure(coords: np.ndarray, color: np.ndarray | None, *, categorical: bool, color_name: str,
               class_names: Sequence[str] | None = None, selected: int | None = None,
               posterior: np.ndarray | None = None, fitted: np.ndarray | None = None,
               height: int = 520) -> go.Figure:
    """`map_base_figure` with its overlays, as one figure (for `st.plotly_chart` on small maps).

    posterior: (S, 2|3) map positions of samples z ~ q(z|x) of the selected point, drawn as a cloud.
    """
    fig = map_base_figure(coords, color, categorical=categorical, color_name=color_name,
                          class_names=class_names, fitted=fitted, height=height)
    at = None if selected is None else coords[selected]
    fig.add_traces(map_overlay_traces(at, posterior, coords.shape[1] == 3))
    fig.update_layout(clickmode="event+select")  # st.plotly_chart's on_select reads selections
    return fig


def code_figure(mu: np.ndarray, sigma: np.ndarray, collapsed: Sequence[int] = ()) -> go.Figure:
    """The selected point's code: mu_j with error bars +-sigma_j per dimension; prior +-1 shaded."""
    d = np.arange(len(mu))
    colors = ["#bbbbbb" if j in set(collapsed) else PALETTE[0] for j in d]
    fig = go.Figure(go.Bar(x=d, y=mu, marker_color=colors, error_y=dict(type="data", array=sigma, visible=True),
                           hovertemplate="z%{x}: mu=%{y:.3f}<extra></extra>", name="mu +- sigma"))
    fig.add_hrect(y0=-1, y1=1, fillcolor="lightgrey", opacity=0.25, line_width=0)
    fig.update_layout(height=220, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="latent dimension",
                      yaxis_title="mu (bar) +- sigma", xaxis=dict(tickmode="linear"))
    return fig


def training_curves_figure(epochs: Sequence[int], curves: dict[str, Sequence[float]],
                           beta: Sequence[float] | None = None, height: int = 300) -> go.Figure:
    """Per-epoch curves (nats) on the left axis; the KL weight beta on a right axis (dotted)."""
    fig = go.Figure()
    for k, (name, ys) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(epochs), y=list(ys), mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)]), marker=dict(size=4)))
    if beta is not None:
        fig.add_trace(go.Scatter(x=list(epochs), y=list(beta), mode="lines", name="beta (right axis)",
                                 yaxis="y2", line=dict(color="black", dash="dot", width=1.5)))
    top = max([b for b in (beta or []) if b is not None and np.isfinite(b)], default=1.0)
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="epoch",
                      yaxis_title="nats per data point", legend=dict(orientation="h", y=-0.25),
                      yaxis2=dict(title="beta", overlaying="y", side="right", range=[0, 1.1 * max(top, 1e-3)],
                                  showgrid=False, tickmode="array", tickvals=[0, top / 2, top],
                                  ticktext=[f"{v:.3g}" for v in (0, top / 2, top)]))
    return fig


# The Train page's KL heatmap: one colour scale for every run, so that a collapsed run (every
# dimension near 0 nats) is dark whatever its own largest value, and a log scale, so that 0.05 nats
# is told from 0 and from 2 nats. From a tenth of the collapse threshold (0.01 nats, the one in
# vae_core.metrics.collapse) to 10 nats, more than a dimension of the shipped runs carries.
KL_HEAT_FLOOR = 0.001
KL_HEAT_TOP = 10.0


def kl_heatmap_figure(kl: np.ndarray, epochs: Sequence[int], height: int = 260) -> go.Figure:
    """KL per dimension over epochs: kl (D, E) in nats; a dim fading to dark is collapsing.

    The colour is log10 of KL on one fixed range, KL_HEAT_FLOOR..KL_HEAT_TOP nats, the same for every
    run (values beyond take the end colours; the hover shows the value itself)."""
    kl = np.asarray(kl, dtype=float)
    d = np.arange(kl.shape[0])
    colour = np.log10(np.clip(kl, KL_HEAT_FLOOR, KL_HEAT_TOP))  # NaN (an epoch without it) stays a blank
    vals, ticktext = log_ticks(KL_HEAT_FLOOR, KL_HEAT_TOP)
    ticktext[0], ticktext[-1] = f"<={ticktext[0]}", f">={ticktext[-1]}"
    fig = go.Figure(go.Heatmap(z=colour, x=list(epochs), y=d, colorscale="Viridis", customdata=kl,
                               zmin=float(np.log10(KL_HEAT_FLOOR)), zmax=float(np.log10(KL_HEAT_TOP)),
                               colorbar=dict(title=dict(text="KL (nats, log)", side="right"), thickness=12,
                                             tickmode="array", tickvals=np.log10(vals).tolist(),
                                             ticktext=ticktext),
                               hovertemplate="epoch %{x}, z%{y}: %{customdata:.3g} nats<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="epoch",
                      yaxis_title="latent dimension", yaxis=dict(tickmode="linear" if len(d) <= 32 else "auto"))
    return fig


def compare_kl_figure(names: Sequence[str], kl_rows: Sequence[Sequence[float]], threshold: float = 0.01,
                      height: int | None = None) -> go.Figure:
    """KL per dimension, one row per run (runs x dims heatmap; shorter codes padded with blanks).

    The colour is log10 of KL, from threshold/10 (values below take the lowest colour) to the
    largest: on a linear scale a 0.03-nat dimension would be the same dark cell as a 0-nat one next
    to a 2-nat one. Each cell also shows its value (D <= 24), and the colour bar labels every tick
    with its full value."""
    width = max((len(r) for r in kl_rows), default=0)
    z = np.full((len(kl_rows), width), np.nan)
    for i, r in enumerate(kl_rows):
        z[i, :len(r)] = r
    floor = threshold / 10
    top = max(float(np.nanmax(z)) if np.isfinite(z).any() else 0.0, 10 * threshold)
    colour = np.log10(np.clip(z, floor, None))  # NaN (padding) stays NaN: a blank cell
    vals, ticktext = log_ticks(floor, top)
    text = [["" if not np.isfinite(v) else (f"<{full_number(floor)}" if v < floor else full_number(v, 2))
             for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=colour, x=np.arange(width), y=list(names), colorscale="Viridis",
                               zmin=float(np.log10(floor)), zmax=float(np.log10(top)), customdata=z,
                               text=text, texttemplate="%{text}" if width <= 24 else None,
                               colorbar=dict(title=dict(text="KL (nats, log)", side="right"), thickness=12,
                                             tickmode="array", tickvals=np.log10(vals).tolist(),
                                             ticktext=ticktext),
                               hovertemplate="%{y}, z%{x}: %{customdata:.4g} nats<extra></extra>"))
    fig.update_layout(height=height or 80 + 40 * len(kl_rows), margin=dict(l=0, r=0, t=10, b=0),
                      xaxis_title="latent dimension", xaxis=dict(tickmode="linear" if width <= 32 else "auto"),
                      yaxis=dict(autorange="reversed", type="category"))
    return fig


def history_overlay_figure(curves: dict[str, tuple[Sequence[float], Sequence[float]]], y_title: str,
                           height: int = 320) -> go.Figure:
    """One line per run: curves maps a run's name to (epochs, values)."""
    fig = go.Figure()
    for k, (name, (x, y)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)])))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="epoch", yaxis_title=y_title,
                      legend=dict(orientation="h", y=-0.25))
    return fig


# --- diagnose and blurriness -------------------------------------------------------------------

FLAG_COLOR = PALETTE[3]  # bars on the collapsed / flagged side of a rule
LOG_FLOOR_RATIO = 0.1  # a log bar chart's floor, as a fraction of its threshold: bars below are drawn there
TEXT_MAX_BARS = 32  # value labels on the bars up to this many dims (beyond, hover gives the value)


def threshold_line(x0: float, x1: float, y: float, name: str) -> go.Scatter:
    """A dashed horizontal line as a trace (works on log axes, and tests can find it by name)."""
    return go.Scatter(x=[x0, x1], y=[y, y], mode="lines", name=name, hoverinfo="name",
                      line=dict(color="black", dash="dash", width=1.5))


def threshold_bar_figure(values: np.ndarray, threshold: float, *, y_title: str, flag: str = "below",
                         log_y: bool = False, line_name: str | None = None, height: int = 240,
                         floor: float | None = None, value_text: bool = False) -> go.Figure:
    """One bar per latent dimension and a dashed line at `threshold`; bars on the `flag` side
    ("below" or "above") of the line in red.

    log_y: a log axis from `floor` (default threshold / 10) to above the largest value, every tick
    labelled with its full value; bars below the floor are drawn at it (a short stub) and keep their
    true value in the hover and the text. value_text: each bar's value written above it (up to
    TEXT_MAX_BARS bars), so a 0.03 next to a 2 reads as 0.03, not as nothing."""
    v = np.asarray(values, dtype=float)
    d = np.arange(len(v))
    flagged = v < threshold if flag == "below" else v > threshold
    lo = (floor if floor is not None else LOG_FLOOR_RATIO * threshold) if log_y else None
    shown = np.maximum(v, lo) if log_y else v
    text = None
    if value_text and len(v) <= TEXT_MAX_BARS:
        text = [f"<{full_number(lo)}" if lo is not None and x < lo else full_number(x, 2) for x in v]
    fig = go.Figure(go.Bar(x=d, y=shown, customdata=v, name=y_title, text=text,
                           textposition="outside" if text else None, cliponaxis=False,
                           textangle=-90 if text and len(v) > 12 else 0 if text else None,
                           marker_color=[FLAG_COLOR if f else PALETTE[0] for f in flagged],
                           hovertemplate="z%{x}: %{customdata:.4g}<extra></extra>"))
    fig.add_trace(threshold_line(-0.5, len(v) - 0.5, threshold, line_name or f"threshold {threshold:g}"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="latent dimension",
                      yaxis_title=y_title, xaxis=dict(tickmode="linear"), showlegend=False)
    if log_y:
        finite = v[np.isfinite(v)]
        top = max(float(finite.max()) if finite.size else threshold, threshold) * (3.0 if text else 1.5)
        fig.update_layout(yaxis=log_axis(lo, top, below=0.15))
    return fig


def variance_law_figure(variance_law: np.ndarray, low: float = 0.5, high: float = 1.5,
                        height: int = 240) -> go.Figure:
    """Var(mu_j) + E[sigma_j^2] per dimension: a line at 1 (the prior) and the [low, high] band shaded."""
    v = np.asarray(variance_law, dtype=float)
    d = np.arange(len(v))
    off = (v < low) | (v > high)
    fig = go.Figure(go.Bar(x=d, y=v, name="Var(mu) + E[sigma^2]",
                           marker_color=[FLAG_COLOR if o else PALETTE[0] for o in off],
                           hovertemplate="z%{x}: %{y:.3f}<extra></extra>"))
    fig.add_hrect(y0=low, y1=high, fillcolor="lightgreen", opacity=0.2, line_width=0, layer="below")
    fig.add_trace(threshold_line(-0.5, len(v) - 0.5, 1.0, "prior N(0, 1): 1"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="latent dimension",
                      yaxis_title="Var(mu) + E[sigma^2]", xaxis=dict(tickmode="linear"), showlegend=False)
    return fig


def aggregate_hist_figure(edges: np.ndarray, density: np.ndarray, dim: int, height: int = 220) -> go.Figure:
    """Histogram (density) of samples z_j ~ q(z|x) over the data, beside the N(0, 1) density."""
    e = np.asarray(edges, dtype=float)
    centres, widths = 0.5 * (e[1:] + e[:-1]), np.diff(e)
    grid = np.linspace(e[0], e[-1], 200)
    fig = go.Figure(go.Bar(x=centres, y=density, width=widths, name=f"q(z{dim})",
                           marker_color=PALETTE[0], opacity=0.7))
    fig.add_trace(go.Scatter(x=grid, y=np.exp(-0.5 * grid ** 2) / np.sqrt(2 * np.pi), mode="lines",
                             name="N(0, 1)", line=dict(color="black")))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30, b=0), title=dict(text=f"z{dim}", x=0.5),
                      xaxis_title=f"z{dim}", yaxis_title="density", bargap=0, showlegend=False)
    return fig


def mutual_info_figure(mi: float, log_b: float, height: int = 140) -> go.Figure:
    """I(x; z) as a bar beside its ceiling log B (the estimator cannot exceed it)."""
    fig = go.Figure(go.Bar(x=[mi], y=["I(x; z)"], orientation="h", name="I(x; z)", marker_color=PALETTE[0],
                           hovertemplate="%{x:.3f} nats<extra></extra>"))
    fig.add_trace(go.Scatter(x=[log_b], y=["I(x; z)"], mode="markers", name="ceiling log B",
                             marker=dict(symbol="line-ns-open", size=48, line=dict(color="black", width=3)),
                             hovertemplate="ceiling log B = %{x:.3f} nats<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="nats",
                      xaxis=dict(range=[0, 1.1 * max(log_b, mi, 1e-9)]), showlegend=False)
    return fig


def spectrum_figure(freqs: np.ndarray, curves: dict[str, np.ndarray], height: int = 320) -> go.Figure:
    """Radially averaged power spectra (log y) of several image sets, e.g. data / reconstructions / samples."""
    fig = go.Figure()
    for k, (name, power) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=freqs, y=power, mode="lines+markers", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)])))
    fig.add_vline(x=0.25, line_dash="dot", line_color="grey")
    pos = np.concatenate([np.asarray(p, dtype=float).ravel() for p in curves.values()] or [np.zeros(0)])
    pos = pos[np.isfinite(pos) & (pos > 0)]
    if pos.size:
        fig.update_layout(yaxis=log_axis(float(pos.min()) / 1.5, float(pos.max()) * 1.5))
    else:
        fig.update_yaxes(type="log")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="frequency (cycles per pixel)",
                      yaxis_title="power |FFT|^2", legend=dict(orientation="h", y=1.1))
    return fig


def mig_heatmap_figure(mi_matrix: np.ndarray, factor_names: Sequence[str], height: int = 260) -> go.Figure:
    """MI (nats) between each ground-truth factor (rows) and each latent mean (columns)."""
    m = np.asarray(mi_matrix, dtype=float)
    fig = go.Figure(go.Heatmap(z=m, x=[f"z{j}" for j in range(m.shape[1])], y=list(factor_names),
                               colorscale="Viridis", colorbar=dict(title=dict(text="MI (nats)", side="right")),
                               hovertemplate="%{y} vs %{x}: %{z:.3f} nats<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0))
    return fig


def theory_spectrum_figure(spectrum: np.ndarray, threshold: float, kl_sorted: np.ndarray,
                           kl_pred: Sequence[float], *, threshold_name: str, top: int = 30,
                           height: int = 320) -> go.Figure:
    """The linear theory beside the model (docs/science.md, "Theory checks"): the data's covariance
    eigenvalues lambda_i (the largest `top`, bars on a log axis; those above the line in blue, the
    others grey), beta sigma^2 as a dashed line, and on a second axis (nats) each latent's measured
    KL sorted from the largest (filled diamonds) beside the KL the theory predicts for direction i
    (open circles), so the i-th largest KL sits over the i-th eigenvalue."""
    lam = np.asarray(spectrum, dtype=float)[:top]
    k = len(lam)
    i = np.arange(1, k + 1)
    above = lam > threshold
    fig = go.Figure(go.Bar(x=i, y=lam, name="eigenvalue lambda_i", marker_color=[PALETTE[0] if a else "#b0b0b0"
                                                                                    for a in above],
                           hovertemplate="lambda_%{x} = %{y:.4g}<extra></extra>"))
    fig.add_trace(threshold_line(0.5, k + 0.5, threshold, threshold_name))
    kl = np.asarray(kl_sorted, dtype=float)[:k]
    fig.add_trace(go.Scatter(x=np.arange(1, len(kl) + 1), y=kl, yaxis="y2", mode="markers",
                             name="measured KL (sorted)", marker=dict(symbol="diamond", size=9, color=PALETTE[1]),
                             hovertemplate="%{x}th largest KL: %{y:.3f} nats<extra></extra>"))
    pred = np.asarray(kl_pred, dtype=float)[:k]
    fig.add_trace(go.Scatter(x=np.arange(1, len(pred) + 1), y=pred, yaxis="y2", mode="markers",
                             name="predicted KL", marker=dict(symbol="circle-open", size=11, color="black",
                                                               line=dict(width=2)),
                             hovertemplate="predicted for lambda_%{x}: %{y:.3f} nats<extra></extra>"))
    pos = lam[lam > 0]
    lo = min(float(pos.min()) if pos.size else threshold, threshold) / 2
    hi = max(float(lam.max()) if k else threshold, threshold) * 2
    kl_top = max([1.0, *kl.tolist(), *pred.tolist()]) * 1.15
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="i (eigenvalues, largest first)",
                      yaxis=dict(log_axis(lo, hi), title="covariance eigenvalue (pixel variance)"),
                      yaxis2=dict(title="KL (nats)", overlaying="y", side="right", range=[0, kl_top],
                                  showgrid=False, tickmode="linear", tick0=0,
                                  dtick=0.25 if kl_top <= 2 else 0.5 if kl_top <= 5 else None),
                      xaxis=dict(tickmode="linear" if k <= 30 else "auto", range=[0.5, k + 0.5]),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig
