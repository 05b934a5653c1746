"""Issue 22, item 3: two runs' maps with one selection (explorer/linked_maps_ui.py), and the alignment of
one map to another (vae_core/maps/map_align.py).

The alignment is checked against hand-made point sets (a known rotation, reflection, scale and shift
must come back exactly) and against scipy.spatial.procrustes (its disparity and its standardised
fit); the selection plumbing against hand-made plotly events; the Compare page (AppTest) against a
numpy PCA of each run's codes and scipy's orthogonal Procrustes."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import procrustes
from streamlit.testing.v1 import AppTest

from settle import settle

from explorer import linked_maps_ui as lm, state
from vae_core.runs.checkpoints import save_run
from vae_core.runs.run_load import load_model
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import load_dataset
from vae_core.maps.map_align import align_epochs, procrustes_align
from vae_core.models import VAE
from vae_core.train import fit
from paths import ROOT

COMPARE = str(ROOT / "app_pages" / "5_Compare.py")


def _rot(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


# --- the alignment ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mirror", [False, True])
def test_a_hand_made_rotation_reflection_scale_and_shift_come_back_exactly(mirror):
    x = np.random.default_rng(0).normal(size=(60, 2))
    q = _rot(37.0) @ (np.diag([1.0, -1.0]) if mirror else np.eye(2))
    y = 2.5 * x @ q + np.array([3.0, -1.0])  # the "other map": x turned, maybe mirrored, scaled, shifted
    f = procrustes_align(x, y)
    np.testing.assert_allclose(f.aligned, x, atol=1e-10)
    np.testing.assert_allclose(f.rotation, q.T, atol=1e-12)  # y's frame back to x's: the inverse of q
    assert f.scale == pytest.approx(1 / 2.5, rel=1e-12)
    assert f.reflects is mirror
    assert f.disparity == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(f.apply(y[:5]), x[:5], atol=1e-10)  # other points carried the same way


def test_a_random_orthogonal_map_in_5_d_comes_back_exactly():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5))
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))  # a random orthogonal matrix (maybe a reflection)
    f = procrustes_align(x, x @ q - 7.0)
    np.testing.assert_allclose(f.aligned, x, atol=1e-10)
    np.testing.assert_allclose(f.rotation, q.T, atol=1e-10)


def test_disparity_and_the_standardised_fit_are_scipys():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(80, 2))
    b = 3.0 * (a + 0.4 * rng.normal(size=a.shape)) @ _rot(-120.0) + 5.0  # related, but not exactly
    m1, m2, disparity = procrustes(a, b)
    f = procrustes_align(a, b)
    assert f.disparity == pytest.approx(disparity, rel=1e-10)
    a0 = a - a.mean(0)
    np.testing.assert_allclose((f.aligned - a.mean(0)) / np.linalg.norm(a0), m2, atol=1e-10)
    assert 0.05 < f.disparity < 0.5


def test_without_scale_the_spread_is_kept():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 2))
    y = 0.1 * x @ _rot(90.0)
    f = procrustes_align(x, y, scale=False)
    assert f.scale == 1.0
    # turned back and moved onto x's centre, still a tenth the size
    np.testing.assert_allclose(f.aligned, 0.1 * (x - x.mean(0)) + x.mean(0), atol=1e-12)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same points"):
        procrustes_align(np.zeros((5, 2)) + np.arange(5)[:, None], np.ones((4, 2)))
    with pytest.raises(ValueError, match="coincide"):
        procrustes_align(np.random.default_rng(0).normal(size=(5, 2)), np.ones((5, 2)))


def test_every_epoch_is_turned_onto_the_last():
    rng = np.random.default_rng(4)
    final = rng.normal(size=(50, 4))
    q1, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    q2, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    epochs = np.stack([0.5 * final @ q1 + 2.0, final @ q2 - 1.0, final])
    got = align_epochs(epochs)
    np.testing.assert_allclose(got[0], 0.5 * (final - final.mean(0)) + final.mean(0), atol=1e-10)  # no scale
    np.testing.assert_allclose(got[1], final, atol=1e-10)
    np.testing.assert_allclose(got[2], final, atol=1e-12)
    still = align_epochs(np.stack([np.zeros((50, 4)), final]))  # an epoch of coinciding codes: shifted only
    np.testing.assert_allclose(still[0], np.broadcast_to(final.mean(0), (50, 4)), atol=1e-12)


# --- the selection plumbing --------------------------------------------------------------------------

def test_a_plotly_selection_becomes_rows():
    labels = np.array([2, 0, 2, 1, 0, 2])
    groups = lm.trace_rows(labels, 6)  # traces in np.unique order: label 0 -> rows 1, 4; 1 -> 3; 2 -> 0, 2, 5
    assert [g.tolist() for g in groups] == [[1, 4], [3], [0, 2, 5]]
    points = [{"curve_number": 0, "point_index": 1}, {"curve_number": 2, "point_index": 2},
              {"curve_number": 2, "point_index": 0}, {"curve_number": 7, "point_index": 0}]  # trace 7: not a map's
    assert np.flatnonzero(lm.rows_of_points(points, groups, 6)).tolist() == [0, 4, 5]
    assert not lm.rows_of_points([], groups, 6).any()
    assert [g.tolist() for g in lm.trace_rows(None, 3)] == [[0, 1, 2]]


def _arr(v) -> np.ndarray:
    """A plotly JSON array: a list, or a base64 typed array {"dtype", "bdata"}."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def test_each_trace_shows_the_selection_and_counts_it():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 300)
    mask = rng.random(300) < 0.2
    spec = json.loads(lm.linked_figure(rng.normal(size=(300, 2)), labels, None, mask, 3).to_json())
    for v, tr in zip(range(4), spec["data"]):
        rows = _arr(tr["customdata"]).astype(int)
        assert set(labels[rows]) == {v}
        picked = _arr(tr["selectedpoints"]).astype(int)
        np.testing.assert_array_equal(rows[picked], np.flatnonzero(mask & (labels == v)))
        assert tr["name"] == f"label {v}: {int((mask & (labels == v)).sum())} / {int((labels == v).sum())}"
        assert tr["type"] == "scattergl"
    assert spec["layout"]["selectionrevision"] == "sel3"
    plain = json.loads(lm.linked_figure(rng.normal(size=(300, 2)), labels, None, None, 0).to_json())
    assert all("selectedpoints" not in tr for tr in plain["data"])
    assert plain["data"][1]["name"] == f"label 1: {int((labels == 1).sum())}"


# --- the Compare page --------------------------------------------------------------------------------

def _tiny_run(runs: Path, name: str, beta: float) -> Path:
    data = load_dataset("digits")
    train, ev = data.split(0.2, 0)
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=data.shape, latent_dim=3, hidden=(32,)))
    return save_run(runs / name, model, TrainConfig(epochs=2, beta=beta), fit(model, train, ev,
                    TrainConfig(epochs=2, beta=beta)).rows, dataset="digits")


def _pca(mu: np.ndarray) -> np.ndarray:
    """Reference PCA: numpy SVD of the centred codes, first two axes."""
    c = mu - mu.mean(0)
    return c @ np.linalg.svd(c, full_matrices=False)[2][:2].T


def _points(spec: dict, n: int) -> np.ndarray:
    xy = np.full((n, 2), np.nan)
    for tr in spec["data"]:
        rows = _arr(tr["customdata"]).astype(int)
        xy[rows, 0], xy[rows, 1] = _arr(tr["x"]), _arr(tr["y"])
    return xy


@pytest.fixture
def two_runs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(runs))
    monkeypatch.setattr(state, "RUNS_DIR", runs)
    return _tiny_run(runs, "beta1", 1.0), _tiny_run(runs, "beta8", 8.0)


def test_compare_draws_two_linked_maps_the_right_one_aligned(two_runs):
    b1, b8 = two_runs
    at = AppTest.from_file(COMPARE, default_timeout=120)
    at.session_state[state.MODEL_SRC] = str(b1)
    at.session_state[state.DATA_SRC] = "digits"
    settle(at.run())
    assert not at.exception, [e.value for e in at.exception]
    data = load_dataset("digits")
    n = len(data)
    maps = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][-2:]
    with torch.inference_mode():
        mus = [load_model(p).encode(data.x)[0].double().numpy() for p in (b1, b8)]
    left, right = _pca(mus[0]), _pca(mus[1])
    got_left, got_right = _points(maps[0], n), _points(maps[1], n)
    signs = np.sign((got_left * left).sum(0))  # PCA axes' signs are a convention
    np.testing.assert_allclose(got_left, left * signs, atol=2e-4)
    # The right map turned, mirrored, scaled and shifted onto the left one: scipy's orthogonal Procrustes
    r0 = right - right.mean(0)
    l0 = got_left - got_left.mean(0)
    rot, sv = orthogonal_procrustes(r0, l0)
    want = sv / (r0 ** 2).sum() * r0 @ rot + got_left.mean(0)
    np.testing.assert_allclose(got_right, want, atol=2e-4)
    _, _, disparity = procrustes(got_left, right)
    cap = " ".join(c.value for c in at.caption)
    assert "orthogonal Procrustes" in cap and f"{disparity:.3f}" in cap
    # A selection (as a chart's callback keeps it): both maps show it, count it per label, and decode it
    mask = np.zeros(n, dtype=bool)
    mask[np.flatnonzero(data.y == 3)[:20]] = True
    mask[:15] = True
    at.session_state[state.LINK_SEL] = mask
    at.session_state[state.LINK_FROM] = 0
    settle(at.run())
    assert not at.exception, [e.value for e in at.exception]
    for spec in [json.loads(c.proto.spec) for c in at.get("plotly_chart")][-2:]:
        for tr in spec["data"]:
            rows = _arr(tr["customdata"]).astype(int)
            v = int(data.y[rows[0]])
            np.testing.assert_array_equal(rows[_arr(tr["selectedpoints"]).astype(int)],
                                          np.flatnonzero(mask & (data.y == v)))
            assert tr["name"].endswith(f": {int((mask & (data.y == v)).sum())} / {int((data.y == v).sum())}")
    caps = [c for el in at.get("image") for c in el.captions if "decoded mean code" in c]
    assert len(caps) == 2 and all(f"the {int(mask.sum())} selected points" in c for c in caps)
    assert any(f"Selected {int(mask.sum())} of {n:,} points, on the left map" in c.value for c in at.caption)
    # Unticking the alignment draws the right map as computed
    at.checkbox(key=state.LINK_ALIGN).uncheck()
    settle(at.run())
    got = _points([json.loads(c.proto.spec) for c in at.get("plotly_chart")][-1], n)
    np.testing.assert_allclose(np.abs(got), np.abs(right), atol=2e-4)
