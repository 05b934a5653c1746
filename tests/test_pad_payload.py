"""The drag pad's background scatter (`explorer.components.pad`): base64 float32/uint8 arrays that decode
(in numpy, and with the pad's own JS in Node when installed) to the drawn points and their colours;
the drawn points a bounded sample with each label in its share; the map sent once."""
from __future__ import annotations

import base64
import json
import subprocess

import numpy as np
import pytest

from explorer.components.pad import MAX_DRAWN, PALETTE, _scatter_fields, drawn_sample


def _indices_of(fields: dict, pts: np.ndarray) -> np.ndarray:
    """Row of `pts` each decoded point is (the points are distinct), via numpy's own decoding."""
    xy = np.frombuffer(base64.b64decode(fields["xy"]), dtype="<f4").reshape(-1, 2)
    rows = {tuple(p): i for i, p in enumerate(pts.astype(np.float32).tolist())}
    return np.array([rows[tuple(p)] for p in xy.tolist()])


def _codes(fields: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(fields["codes"]), dtype=np.uint8)


def test_small_map_is_sent_whole_and_decodes_to_the_points_and_labels():
    pts = np.array([[0.5, -1.25], [3.0, 2.0], [-7.5, 0.125], [1e-3, 1e3]])
    labels = np.array([3, 0, 12, 9])
    f = _scatter_fields(pts, labels, "v1", {})
    assert f["n_total"] == f["n_drawn"] == 4 and f["scatter_version"] == "v1"
    xy = np.frombuffer(base64.b64decode(f["xy"]), dtype="<f4").reshape(-1, 2)
    np.testing.assert_array_equal(xy, pts.astype(np.float32))
    # integer labels index the palette modulo its length: 12 -> 2
    assert _codes(f).tolist() == [3, 0, 2, 9] and f["palette"] == list(PALETTE)


def test_css_colours_become_a_palette_of_their_distinct_values():
    pts = np.arange(10, dtype=float).reshape(5, 2)
    colors = ["red", "#00f", "red", "green", "#00f"]
    f = _scatter_fields(pts, colors, None, {})
    palette = f["palette"]
    assert sorted(palette) == ["#00f", "green", "red"]
    assert [palette[c] for c in _codes(f)] == colors


def test_rerun_with_the_map_held_sends_no_points():
    pts = np.random.default_rng(0).normal(size=(50, 2))
    f = _scatter_fields(pts, None, "v", {"scatter": "v"})
    assert f == {"scatter_version": "v", "n_total": 50}
    g = _scatter_fields(pts, None, "v", {"scatter": "older"})
    assert g["n_drawn"] == 50 and g["codes"] is None


def test_large_map_draws_a_bounded_sample_with_each_label_in_its_share():
    n, cap = 100_000, 20_000
    rng = np.random.default_rng(1)
    # shares 50 / 30 / 15 / 5 %, and a label of 3 points that must still be drawn
    labels = np.repeat([0, 1, 2, 3], [50_000, 30_000, 15_000, 4_997])
    labels = np.concatenate([labels, [7, 7, 7]])
    perm = rng.permutation(n)
    labels = labels[perm]
    pts = np.column_stack([np.arange(n, dtype=np.float64), rng.normal(size=n)])  # distinct x: row = x
    f = _scatter_fields(pts, labels, "big", {}, cap)
    idx = _indices_of(f, pts)
    assert f["n_drawn"] == len(idx) == cap and f["n_total"] == n
    assert len(np.unique(idx)) == cap and np.all(np.diff(idx) > 0)  # distinct rows, in order
    counts = {int(k): int((labels[idx] == k).sum()) for k in np.unique(labels)}
    want = {0: 10_000, 1: 6_000, 2: 3_000, 3: 999.4, 7: 0.6}  # cap * share
    for k, w in want.items():
        assert abs(counts[k] - w) <= 1, (k, counts[k], w)
    assert counts[7] >= 1
    np.testing.assert_array_equal(_codes(f), labels[idx] % len(PALETTE))


def test_more_labels_than_the_cap_still_bounded():
    pick = drawn_sample(500, np.arange(500), cap=100)
    assert pick.size == 100 and len(np.unique(pick)) == 100 and pick.max() < 500
    assert drawn_sample(30, None, cap=100).tolist() == list(range(30))
    assert MAX_DRAWN == 20_000


def test_bad_colours_are_refused_in_one_sentence():
    pts = np.zeros((3, 2))
    with pytest.raises(ValueError, match="integer labels or CSS colour strings"):
        _scatter_fields(pts, [0.5, 1.0, 2.0], None, {})
    with pytest.raises(ValueError, match="one entry per point"):
        _scatter_fields(pts, [1, 2], None, {})


def test_the_pads_js_decodes_the_payload_to_the_same_arrays(tmp_path, node):
    """pad.js's own scatterArrays (with decoder.js's b64ToFloat32), run by Node on a 30,000-point payload."""
    from explorer.components.base import asset_js

    rng = np.random.default_rng(2)
    pts, labels = rng.normal(scale=3, size=(30_000, 2)), rng.integers(0, 10, 30_000)
    f = _scatter_fields(pts, labels, "js", {})
    module = tmp_path / "pad_decode.mjs"
    module.write_text(asset_js("pad.js") + """
import { readFileSync } from "node:fs";
const r = scatterArrays(JSON.parse(readFileSync(0, "utf8")));
console.log(JSON.stringify({xy: Array.from(r.xy), codes: Array.from(r.codes), n: r.n, total: r.total}));
""", encoding="utf-8")
    run = subprocess.run([node, str(module)], input=json.dumps(f), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    idx = _indices_of(f, pts)
    assert got["n"] == MAX_DRAWN and got["total"] == 30_000
    np.testing.assert_array_equal(np.asarray(got["xy"], np.float32).reshape(-1, 2), pts[idx].astype(np.float32))
    np.testing.assert_array_equal(got["codes"], labels[idx])
