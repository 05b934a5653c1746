"""Plotly figures: arrays in, `go.Figure` out. No Streamlit; testable on their own."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def map_figure(coords: np.ndarray, color: np.ndarray | None, *, categorical: bool, color_name: str,
               class_names: Sequence[str] | None = None, selected: int | None = None,
               posterior: np.ndarray | None = None, height: int = 520) -> go.Figure:
    """Scatter of map coordinates (N, 2|3), WebGL; every point carries its index as customdata.

    posterior: (S, 2|3) map positions of samples z ~ q(z|x) of the selected point, drawn as a cloud.
    """
    three = coords.shape[1] == 3
    idx = np.arange(len(coords))
    fig = go.Figure()

    def scatter(sel: np.ndarray, **kw) -> go.BaseTraceType:
        common = dict(mode="markers", customdata=idx[sel], hovertemplate=f"point %{{customdata}}<extra>%{{fullData.name}}</extra>", **kw)
        if three:
            return go.Scatter3d(x=coords[sel, 0], y=coords[sel, 1], z=coords[sel, 2], **common)
        return go.Scattergl(x=coords[sel, 0], y=coords[sel, 1], **common)

    size = 3 if three else 5
    if color is None:
        fig.add_trace(scatter(idx, name="points", marker=dict(size=size, color=PALETTE[0], opacity=0.7)))
    elif categorical:
        for k, c in enumerate(np.unique(color)):
            name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) else str(c)
            fig.add_trace(scatter(color == c, name=f"{color_name} {name}",
                                  marker=dict(size=size, color=PALETTE[k % len(PALETTE)], opacity=0.75)))
    else:
        fig.add_trace(scatter(idx, name=color_name, marker=dict(
            size=size, color=color, colorscale="Viridis", opacity=0.8, showscale=True,
            colorbar=dict(title=dict(text=color_name, side="right"), thickness=12))))
    if posterior is not None and len(posterior):
        kw = dict(mode="markers", name="samples z ~ q(z|x)", hoverinfo="skip",
                  marker=dict(size=4, color="rgba(0,0,0,0.35)"))
        fig.add_trace(go.Scatter3d(x=posterior[:, 0], y=posterior[:, 1], z=posterior[:, 2], **kw) if three
                      else go.Scattergl(x=posterior[:, 0], y=posterior[:, 1], **kw))
    if selected is not None:
        p = coords[selected]
        kw = dict(mode="markers", name="selected", hoverinfo="skip",
                  marker=dict(size=14 if not three else 7, color="rgba(0,0,0,0)", line=dict(color="black", width=3)))
        fig.add_trace(go.Scatter3d(x=[p[0]], y=[p[1]], z=[p[2]], **kw) if three
                      else go.Scattergl(x=[p[0]], y=[p[1]], **kw))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0), legend=dict(itemsizing="constant"),
                      clickmode="event+select", dragmode="pan" if not three else "orbit")
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


def kl_figure(kl_per_dim: np.ndarray, threshold: float = 0.01) -> go.Figure:
    """KL per latent dimension (nats), with the collapse threshold as a line."""
    d = np.arange(len(kl_per_dim))
    fig = go.Figure(go.Bar(x=d, y=kl_per_dim, marker_color=[PALETTE[3] if v < threshold else PALETTE[0]
                                                             for v in kl_per_dim]))
    fig.add_hline(y=threshold, line_dash="dash", annotation_text=f"{threshold} nats")
    fig.update_layout(height=220, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="latent dimension",
                      yaxis_title="KL (nats)", xaxis=dict(tickmode="linear"))
    return fig
