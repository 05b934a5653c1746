"""The latent space learning, replayed: a run's recorded codes (epoch_codes.npz) as an animated map.

`train --record-codes N` (the Train form's "Record codes") keeps the codes of N held-out points
before training and after every epoch (vae_core.runs.epoch_codes). Here every epoch stays in one frame:
its codes are first aligned to the final epoch's by an orthogonal Procrustes fit in the latent
space (`vae_core.maps.map_align.align_epochs`: rotation/reflection and shift, no scale), so a turn or
mirror of the latent space during training does not read as motion, then drawn in one fixed basis,
the PCA of the final epoch's codes, so what moves is the codes, not the axes. Between two epochs the
figure plays ``STEPS`` frames interpolated linearly, so the points glide rather than jump. The KL
per dimension of the same points sits beside it, a line marking the epoch shown. One plotly figure
holds both, with plotly's own animation frames, play/pause buttons and epoch slider: the browser
plays it, no rerun per frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from vae_core.runs.run_load import eval_split, is_run_dir
from vae_core.config import option
from vae_core.runs.epoch_codes import EpochCodes, fixed_pca_basis, load_epoch_codes, project_epochs
from vae_core.errors import sentence
from vae_core.maps.map_align import align_epochs

from . import cache, figures
from .messages import for_user

EXPLAIN = ("Each dot is one held-out image's code (its mean mu), drawn after every epoch of training in "
           "the same 2-D view: each epoch's codes are turned onto the final ones (an orthogonal Procrustes fit: "
           "rotation, mirror and shift, no scaling), then shown on the PCA of the final codes; press play to "
           "watch the clusters form, and read on the right which dimensions the model starts using and which "
           "fade to 0 (collapse).")
HOW_TO_RECORD = (f"This run has no recorded training, so it cannot replay its map forming. Train with "
                 f"{option('record_codes')}, e.g. `python -m vae_core train --record-codes 500 ...`, or the "
                 "Train form's **Record codes (points)** (on by default), and the new run replays here.")
MAX_LABEL_TRACES = 20  # more distinct labels than this: one trace coloured by a colour scale
FRAME_MS = 450  # per epoch while playing: 30 epochs replay in about 14 s
# frames per epoch while playing: STEPS - 1 interpolated between two epochs, then the epoch itself. Every frame
# redraws the figure (below), heatmap included, and the heatmap can be caught blank between two draws: in 16 looks
# during play (headless Chromium, a loaded 2-core machine) it was blank 12 times at 75 ms a frame, 3 and 6 times
# at 150 ms, twice at the old 300 ms (one frame an epoch). A figure that moved only the points without a redraw
# would avoid it, but plotly's fast path (redraw=False) leaves the heatmap blank throughout.
STEPS = 3


def frame_steps(e_count: int, steps: int = STEPS) -> list[tuple[int, float]]:
    """(epoch index e, t in (0, 1]) of every animation frame: frame (e, t) shows
    (1 - t) * coords[e - 1] + t * coords[e]; (0, 1.0) first, each epoch's own frame at t = 1."""
    return [(0, 1.0)] + [(e, k / steps) for e in range(1, e_count) for k in range(1, steps + 1)]


def frame_name(epochs: Sequence[int], e: int, t: float) -> str:
    """An epoch's own frame is named by its number (the slider's steps); a frame between two is not."""
    return str(epochs[e]) if t == 1.0 else f"{epochs[e - 1]}-{epochs[e]} {t:.2f}"


def _axis_range(values: np.ndarray) -> list[float]:
    """[lo, hi] over every epoch with a 5% margin: the axes stay put while the codes move."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = 0.05 * (hi - lo) or 1.0
    return [lo - pad, hi + pad]


def _label_groups(labels: np.ndarray | None, n: int) -> list[tuple[str, np.ndarray, str | None]]:
    """(legend name, point indices, colour) per trace: one per label when few enough, in the labels'
    colours of every page (`figures.label_color`), else all points in one."""
    if labels is None or np.unique(labels).size > MAX_LABEL_TRACES:
        return [("codes", np.arange(n), None)]
    return [(f"label {v}", np.flatnonzero(labels == v), figures.label_color(v)) for v in np.unique(labels)]


def replay_figure(coords: np.ndarray, epochs: Sequence[int], kl_per_dim: np.ndarray,
                  labels: np.ndarray | None = None, height: int = 520) -> go.Figure:
    """The animation: coords (E, S, 2) of the sample on a fixed basis, one frame per epoch; beside it
    kl_per_dim (E, D) as a dims x epochs heatmap with a line at the frame's epoch.

    Traces: one scatter per label group (or one), the heatmap, the epoch line; each frame updates
    the scatters and the line. labels (S,) colour the points (None: one colour).
    """
    coords = np.asarray(coords, dtype=np.float32)
    kl = np.asarray(kl_per_dim, dtype=float)
    epochs = [int(e) for e in epochs]
    e_count, s = coords.shape[:2]
    if len(epochs) != e_count or kl.shape[0] != e_count:
        raise ValueError(f"coords has {e_count} epochs, epochs {len(epochs)}, kl_per_dim {kl.shape[0]}")
    labels = None if labels is None else np.asarray(labels)
    groups = _label_groups(labels, s)
    single = len(groups) == 1 and labels is not None
    d = kl.shape[1]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.14,
                        subplot_titles=("codes (the last epoch's frame)", "KL per dimension (nats)"))

    def at(e: int, t: float) -> tuple[np.ndarray, float]:
        """The points (S, 2) and the epoch line's x of frame (e, t): linear between epochs e - 1 and e."""
        if t == 1.0:
            return coords[e], float(epochs[e])
        return (1 - t) * coords[e - 1] + t * coords[e], (1 - t) * epochs[e - 1] + t * epochs[e]

    def scatters(xy: np.ndarray) -> list[go.Scatter]:
        out = []
        for name, idx, colour in groups:
            marker = dict(size=5, opacity=0.8, color=colour or figures.PALETTE[0])
            if single:
                marker.update(color=labels.astype(float), colorscale="Turbo", showscale=False)
            out.append(go.Scatter(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=name,
                                  marker=marker, customdata=idx, legendgroup=name,
                                  hovertemplate=f"{name}, point %{{customdata}}<extra></extra>"))
        return out

    def line(x: float) -> go.Scatter:
        return go.Scatter(x=[x, x], y=[-0.5, d - 0.5], mode="lines", showlegend=False,
                          line=dict(color="white", width=2), hoverinfo="skip", name="epoch shown")

    for tr in scatters(coords[e_count - 1]):
        fig.add_trace(tr, row=1, col=1)
    fig.add_trace(figures.kl_heatmap_figure(kl.T, epochs).data[0], row=1, col=2)
    fig.add_trace(line(epochs[-1]), row=1, col=2)
    n_sc = len(groups)
    moving = list(range(n_sc)) + [n_sc + 1]  # the scatters and the line; the heatmap stays
    frames = []
    for e, t in frame_steps(e_count):
        xy, x = at(e, t)
        frames.append(go.Frame(data=[*scatters(xy.astype(np.float32)), line(x)], traces=moving,
                               name=frame_name(epochs, e, t)))
    fig.frames = frames
    # redraw=True: plotly's scatter-only fast path (redraw=False) blanks the heatmap of the other subplot
    # one epoch per FRAME_MS while playing, in STEPS frames (the in-between ones interpolated)
    step = dict(frame=dict(duration=FRAME_MS // STEPS, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        height=height, margin=dict(l=0, r=0, t=70, b=0),
        legend=dict(orientation="h", x=0, y=1.1, yanchor="bottom", font=dict(size=11)),
        updatemenus=[dict(type="buttons", direction="left", x=0, y=-0.24, xanchor="left", yanchor="top",
                          showactive=False, pad=dict(r=10, t=0),
                          buttons=[dict(label="Play", method="animate", args=[None, dict(step, fromcurrent=True)]),
                                   dict(label="Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate",
                                                           transition=dict(duration=0))])])],
        sliders=[dict(active=e_count - 1, x=0.16, len=0.84, y=-0.2, yanchor="top", pad=dict(t=0),
                      currentvalue=dict(prefix="epoch ", xanchor="right"),
                      steps=[dict(label=str(ep), method="animate",
                                  args=[[str(ep)], dict(frame=dict(duration=0, redraw=True), mode="immediate",
                                                        transition=dict(duration=0))])
                             for ep in epochs])])
    fig.update_xaxes(range=_axis_range(coords[..., 0]), title_text="PC 1", row=1, col=1)
    fig.update_yaxes(range=_axis_range(coords[..., 1]), title_text="PC 2", row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=1, col=2)
    fig.update_yaxes(title_text="latent dimension", row=1, col=2)
    return fig


def _labels(run_dir: Path, codes: EpochCodes) -> np.ndarray | None:
    """The sample's labels, from the run's own held-out split (None when its data has none or is not here)."""
    from vae_core.metrics.pipeline.heldout import eval_points

    split = eval_split(run_dir)
    if split.dataset is None:
        return None
    try:
        ev = eval_points(cache.dataset(cache.source(split.dataset)), None, *split)
    except Exception:  # the run's data file is gone or unreadable: the replay still works, uncoloured
        return None
    if ev.y is None or len(ev) <= int(codes.indices.max()):
        return None
    return ev.y[codes.indices]


def replay_ui(run_dir: str | Path | None, key: str) -> None:
    """The replay panel of a run directory: the animation and its sentence, or how to record one."""
    p = Path(run_dir) if run_dir is not None else None
    if p is None or not is_run_dir(p):
        st.caption("A replay of training needs a run directory (a model trained here or with the CLI); a "
                   "TorchScript file records no training.")
        return
    try:
        codes = load_epoch_codes(p)
    except ValueError as e:
        st.error(f"The recorded training of {p.name} cannot be replayed: {for_user(sentence(e))}",
                 icon=":material/error:")
        return
    if codes is None:
        st.info(HOW_TO_RECORD, icon=":material/movie:")
        return
    st.caption(EXPLAIN)
    coords = project_epochs(align_epochs(codes.mu), fixed_pca_basis(codes.mu[-1]))
    labels = _labels(p, codes)
    st.plotly_chart(replay_figure(coords, codes.epochs, codes.kl_per_dim, labels), key=key)
    s, e = codes.indices.size, len(codes)
    st.caption(f"{s:,} held-out points, {e} frames (epoch {codes.epochs[0]} = before training, the random "
               f"initial weights) from {p.name}/epoch_codes.npz."
               + ("" if labels is not None else " No labels for these points here, so one colour."))
