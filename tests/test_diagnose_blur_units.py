"""The Diagnose/Blurriness figures and verdicts on hand-made arrays, and the per-image Laplacian
variance against its mean form and a hand-computed value."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer import figures
from vae_core.metrics import laplacian_sharpness, laplacian_variance


def _trace(fig, name: str):
    hits = [t for t in fig.data if t.name == name]
    assert len(hits) == 1, [t.name for t in fig.data]
    return hits[0]


def test_threshold_bar_figure_line_and_flags():
    kl = np.array([0.0, 0.005, 0.5, 2.0])
    fig = figures.threshold_bar_figure(kl, 0.01, y_title="KL", log_y=True, line_name="0.01 nats")
    line = _trace(fig, "0.01 nats")
    assert list(line.y) == [0.01, 0.01] and list(line.x) == [-0.5, 3.5]
    bar = fig.data[0]
    assert bar.type == "bar" and list(bar.customdata) == list(kl)
    assert min(bar.y) > 0, "a zero bar is drawn at a floor on the log axis"
    assert fig.layout.yaxis.type == "log"
    assert [c == figures.FLAG_COLOR for c in bar.marker.color] == [True, True, False, False]
    above = figures.threshold_bar_figure(np.array([0.2, 0.9]), 0.8, y_title="s2", flag="above")
    assert [c == figures.FLAG_COLOR for c in above.data[0].marker.color] == [False, True]
    assert list(_trace(above, "threshold 0.8").y) == [0.8, 0.8]


def test_variance_law_figure_line_at_one():
    fig = figures.variance_law_figure(np.array([1.0, 0.2, 2.0]))
    assert list(_trace(fig, "prior N(0, 1): 1").y) == [1.0, 1.0]
    assert [c == figures.FLAG_COLOR for c in fig.data[0].marker.color] == [False, True, True]
    assert fig.layout.shapes[0].y0 == 0.5 and fig.layout.shapes[0].y1 == 1.5


def test_aggregate_hist_figure_prior_density():
    edges = np.linspace(-4, 4, 41)
    dens = np.full(40, 1 / 8)
    fig = figures.aggregate_hist_figure(edges, dens, 3)
    prior = _trace(fig, "N(0, 1)")
    assert max(prior.y) == pytest.approx(1 / np.sqrt(2 * np.pi), rel=1e-3)
    np.testing.assert_allclose(fig.data[0].x, 0.5 * (edges[1:] + edges[:-1]))


def test_mutual_info_spectrum_and_mig_figures():
    mi = figures.mutual_info_figure(2.0, np.log(500))
    assert list(_trace(mi, "ceiling log B").x) == [np.log(500)]
    sp = figures.spectrum_figure(np.array([0, 0.25, 0.5]), {"data": np.ones(3), "reconstructions": np.ones(3) / 2,
                                                            "prior samples": np.ones(3) / 4})
    assert [t.name for t in sp.data] == ["data", "reconstructions", "prior samples"]
    assert sp.layout.yaxis.type == "log"
    hm = figures.mig_heatmap_figure(np.eye(2, 3), ["shape", "scale"])
    assert hm.data[0].type == "heatmap" and list(hm.data[0].y) == ["shape", "scale"]
    assert list(hm.data[0].x) == ["z0", "z1", "z2"]


def test_verdicts_cover_every_case():
    from types import SimpleNamespace

    from explorer.diagnose_ui import verdicts
    from vae_core.metrics.collapse import CollapseStats

    # hand-made flags: dims 0, 1 below the KL threshold; 1, 2, 3 with moving means; 0, 4 prior-wide;
    # the decoder reacts to dim 3 at 0.5% of the strongest (under the 1% of "ignored")
    b = lambda *on: np.isin(np.arange(5), on)  # noqa: E731
    stats = CollapseStats(kl_per_dim=np.array([0.001, 0.002, 1.0, 1.0, 0.5]), activity=np.ones(5),
                          mean_sigma2=np.ones(5), active=b(1, 2, 3), low_kl=b(0, 1), prior_like=b(0, 4),
                          sensitivity=np.array([0.0, 0.0, 1.0, 0.005, 0.5]))
    # the three classes of vae_core.metrics.collapse.classify_dims, each verdict led by its class
    assert verdicts(SimpleNamespace(collapse=stats)) == [
        "collapsed: copies the prior",
        "collapsed: no information, though its means still move and its spread is narrower than the prior",
        "active", "active: the decoder ignores it",
        "partly collapsed: carries information, but its means barely move and its spread is as wide as the prior"]


def test_laplacian_variance_per_image():
    flat = torch.full((1, 1, 5, 5), 0.5)
    dot = torch.zeros(1, 1, 5, 5)
    dot[0, 0, 2, 2] = 1.0  # valid 3x3 response: -4 at the centre, 1 at its 4 neighbours, 0 elsewhere
    resp = np.array([0, 1, 0, 1, -4, 1, 0, 1, 0], float)
    x = torch.cat([flat, dot])
    v = laplacian_variance(x)
    assert v.shape == (2,)
    assert v[0] == 0.0 and v[1] == pytest.approx(resp.var())
    rgb = torch.rand(3, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    assert laplacian_sharpness(rgb) == pytest.approx(float(laplacian_variance(rgb).mean()))
    assert laplacian_variance(rgb)[1] == pytest.approx(float(laplacian_variance(rgb[1:2]).mean()))
