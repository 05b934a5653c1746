"""vae_core.maps.latent_tools, map_plane and epoch_codes against independent references: brute-force
numpy neighbours, numpy means, torch.distributions KL, numpy SVD, hand-made arrays with known answers."""
from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_core.runs.epoch_codes import (FILE_NAME, MAX_SAMPLE, EpochCodes, epoch_sample, fixed_pca_basis,
                                  load_epoch_codes, project_epochs)
from vae_core.maps.latent_tools import (CodeNeighbours, apply_vector, attribute_vector, group_mean, label_agreement,
                                   nearest_codes, selection_csv, selection_npz, selection_summary, vector_json,
                                   vector_strip)
from vae_core.maps.map_plane import density_grid, grid_points, manifold_grid
from vae_core.maps.projection import Projection


@pytest.fixture(scope="module")
def codes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mu, logvar (60, 5) float32 and labels (60,) in 3 classes."""
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(60, 5)).astype(np.float32)
    logvar = rng.normal(-1.0, 0.5, size=(60, 5)).astype(np.float32)
    return mu, logvar, np.arange(60) % 3


# --- neighbours ---------------------------------------------------------------------------------

def _brute_knn(mu: np.ndarray, i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(mu.astype(np.float64) - mu[i].astype(np.float64), axis=1)
    d[i] = np.inf
    order = np.lexsort((np.arange(len(d)), d))[:k]  # distance, then index
    return order, d[order]


@pytest.mark.parametrize("dim", [2, 16])
def test_nearest_codes_match_brute_force(dim: int) -> None:
    mu = np.random.default_rng(dim).normal(size=(300, dim)).astype(np.float32)
    nb = CodeNeighbours(mu)
    for i in (0, 17, 299):
        for k in (1, 8, 20):
            idx, dist = nb.query(i, k)
            ref_idx, ref_dist = _brute_knn(mu, i, k)
            np.testing.assert_array_equal(idx, ref_idx)
            np.testing.assert_allclose(dist, ref_dist, rtol=1e-12)


def test_nearest_codes_hand_made_ties_break_by_index() -> None:
    # Point 0 at the origin; 3 and 1 at distance 1 (a tie), 2 at distance 2, 4 duplicates 0 (distance 0).
    mu = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [0, 0], [5, 5]], dtype=np.float32)
    idx, dist = nearest_codes(mu, 0, k=4)
    assert idx.tolist() == [4, 1, 3, 2]
    assert dist.tolist() == [0.0, 1.0, 1.0, 2.0]
    # From the duplicate, point 0 is its nearest (itself excluded, not its twin).
    assert nearest_codes(mu, 4, k=1)[0].tolist() == [0]
    labels = np.array([7, 7, 8, 7, 8, 7])
    assert label_agreement(labels, 0, idx) == 2  # 1 and 3 share label 7; 4 and 2 do not


def test_nearest_codes_refuse_bad_k_and_index() -> None:
    mu = np.zeros((5, 2))
    with pytest.raises(ValueError, match="k must be"):
        nearest_codes(mu, 0, k=5)
    with pytest.raises(ValueError, match="index must be"):
        nearest_codes(mu, 5)


# --- selections ---------------------------------------------------------------------------------

def test_selection_summary_against_references(codes) -> None:
    mu, logvar, labels = codes
    mask = mu[:, 0] > 0
    s = selection_summary(mu, logvar, labels, mask)
    assert s.size == mask.sum()
    np.testing.assert_array_equal(s.indices, np.flatnonzero(mask))
    ref_counts = {int(c): int((labels[mask] == c).sum()) for c in np.unique(labels[mask])}
    assert s.label_counts == ref_counts
    assert list(s.label_counts.values()) == sorted(s.label_counts.values(), reverse=True)
    np.testing.assert_allclose(s.mean_code, mu[mask].mean(axis=0), rtol=1e-6)

    def ref_kl(m: np.ndarray) -> np.ndarray:
        q = Normal(torch.tensor(mu[m], dtype=torch.float64), torch.tensor(np.exp(0.5 * logvar[m]), dtype=torch.float64))
        p = Normal(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))
        return kl_divergence(q, p).mean(0).numpy()

    np.testing.assert_allclose(s.kl_selected, ref_kl(mask), rtol=1e-6)
    np.testing.assert_allclose(s.kl_rest, ref_kl(~mask), rtol=1e-6)
    # Selecting everything leaves no rest to compare with.
    assert selection_summary(mu, logvar, None, np.ones(60, bool)).kl_rest is None
    with pytest.raises(ValueError, match="the selection is empty"):
        selection_summary(mu, logvar, labels, np.zeros(60, bool))


def test_selection_csv_parses_back(codes) -> None:
    mu, logvar, labels = codes
    idx = np.array([5, 0, 42])
    rows = list(csv.DictReader(io.StringIO(selection_csv(idx, mu, logvar, labels))))
    assert [int(r["index"]) for r in rows] == idx.tolist()
    assert [int(r["label"]) for r in rows] == labels[idx].tolist()
    d = mu.shape[1]
    got_mu = np.array([[float(r[f"mu_{j}"]) for j in range(d)] for r in rows])
    got_sigma = np.array([[float(r[f"sigma_{j}"]) for j in range(d)] for r in rows])
    np.testing.assert_allclose(got_mu, mu[idx], rtol=1e-5, atol=1e-6)  # written to 6 significant digits
    np.testing.assert_allclose(got_sigma, np.exp(0.5 * logvar[idx]), rtol=1e-5)
    assert list(rows[0])[:2] == ["index", "label"]
    assert "label" not in selection_csv(idx, mu, logvar).splitlines()[0]


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_selection_npz_loads_without_pickle(dtype) -> None:
    x = (np.random.default_rng(1).random((3, 1, 4, 4)) * 200).astype(dtype)
    idx = np.array([9, 2, 7])
    labels = np.array(["seven", "two", None], dtype=object)  # objects become strings, not pickles
    with np.load(io.BytesIO(selection_npz(x, idx, labels)), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["x"], x)
        assert z["x"].dtype == dtype
        np.testing.assert_array_equal(z["indices"], idx)
        assert z["y"].tolist() == ["seven", "two", "None"]
    with pytest.raises(ValueError, match="indices must have shape"):
        selection_npz(x, idx[:2])


# --- attribute vectors --------------------------------------------------------------------------

def test_group_means_and_attribute_vector(codes) -> None:
    mu, _, labels = codes
    a, b = labels == 1, labels == 2
    np.testing.assert_allclose(group_mean(mu, a), mu[a].mean(0), rtol=1e-6)
    v = attribute_vector(mu, a, b)
    np.testing.assert_allclose(v, mu[b].mean(0) - mu[a].mean(0), rtol=1e-5, atol=1e-7)
    # Strength 1 from A's mean lands on B's mean; a strip of strengths is the same line.
    np.testing.assert_allclose(apply_vector(mu[a].mean(0), v, 1.0), mu[b].mean(0), rtol=1e-5, atol=1e-6)
    strip = vector_strip(mu[0], v, [-1.0, 0.0, 0.5, 2.0])
    assert strip.shape == (4, mu.shape[1])
    np.testing.assert_allclose(strip[1], mu[0], rtol=1e-7)
    np.testing.assert_allclose(strip[3], mu[0] + 2 * v, rtol=1e-6)
    np.testing.assert_allclose(apply_vector(mu[:3], v, 0.5), mu[:3] + 0.5 * v, rtol=1e-6)
    with pytest.raises(ValueError, match="^group B has no points"):
        attribute_vector(mu, a, np.zeros(60, bool))
    with pytest.raises(ValueError, match="^group A has no points"):
        attribute_vector(mu, np.zeros(60, bool), b)


def test_vector_json_round_trip() -> None:
    v = np.array([0.5, -1.25, 3.0])
    out = json.loads(vector_json(v, {"group_a": "label 1", "group_b": np.int64(7), "sizes": np.array([3, 4])}))
    assert out["vector"] == v.tolist() and out["dim"] == 3 and out["group_b"] == 7 and out["sizes"] == [3, 4]
    assert out["norm"] == pytest.approx(np.linalg.norm(v))
    assert "B minus" in out["definition"]


# --- the decoded manifold and density -----------------------------------------------------------

def test_grid_points_orientation() -> None:
    pts = grid_points((0.0, 4.0, 10.0, 12.0), 2)
    # Top-left first: x from x0 to x1 along a row, rows from y1 down to y0; cell centres.
    np.testing.assert_allclose(pts, [[1, 11.5], [3, 11.5], [1, 10.5], [3, 10.5]])


def test_manifold_grid_pca_is_exact_inverse(codes) -> None:
    mu = codes[0]
    proj = Projection("pca", 2).fit(mu)
    bounds, n = (-2.0, 3.0, -1.0, 1.5), 5
    z = manifold_grid(proj, bounds, n)
    # Reference: numpy SVD of the centred codes; the grid point (x, y) is mean + x * v1 + y * v2.
    mean = mu.astype(np.float64).mean(0)
    _, _, vt = np.linalg.svd(mu - mean, full_matrices=False)
    vt = vt[:2] * np.sign(vt[np.arange(2), np.argmax(np.abs(vt[:2]), axis=1)])[:, None]
    xs = -2.0 + (np.arange(n) + 0.5) * 5.0 / n
    ys = 1.5 - (np.arange(n) + 0.5) * 2.5 / n
    ref = np.array([mean + x * vt[0] + y * vt[1] for y in ys for x in xs])
    assert z.shape == (n * n, mu.shape[1])
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-5)
    # The codes map back onto the grid.
    np.testing.assert_allclose(proj.transform(z), grid_points(bounds, n), atol=1e-4)
    z2, dist = manifold_grid(proj, bounds, n, return_distance=True)
    assert dist.shape == (n * n,) and np.array_equal(z2, z)


def test_density_integrates_to_one_and_peaks_at_the_points() -> None:
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.normal([2.0, -1.0], 0.1, size=(400, 2)), rng.uniform(-4, 4, size=(40, 2))])
    bounds = (-4.0, 4.0, -3.0, 3.0)
    xs, ys, dens = density_grid(pts, bounds, bins=80)
    assert xs.shape == (80,) and ys.shape == (80,) and dens.shape == (80, 80)
    dx, dy = xs[1] - xs[0], ys[1] - ys[0]
    assert dens.sum() * dx * dy == pytest.approx(1.0)
    r, c = np.unravel_index(np.argmax(dens), dens.shape)
    assert abs(xs[c] - 2.0) < 0.2 and abs(ys[r] + 1.0) < 0.2  # density[r, c] is at (xs[c], ys[r])
    assert (dens >= 0).all()
    _, _, empty = density_grid(pts, (10.0, 11.0, 10.0, 11.0), bins=10)
    assert not empty.any()


# --- epoch codes --------------------------------------------------------------------------------

def _recorded(epochs: int = 3, s: int = 12, d: int = 4) -> EpochCodes:
    rng = np.random.default_rng(4)
    codes = EpochCodes(np.arange(0, 3 * s, 3))
    for e in range(1, epochs + 1):
        codes.record(e, rng.normal(size=(s, d)), rng.normal(-1, 0.3, size=(s, d)))
    return codes


def test_epoch_sample_is_stratified_seeded_and_capped() -> None:
    pool = np.arange(100, 2100)
    labels = np.arange(2000) % 4
    a = epoch_sample(pool, labels, seed=1, size=400)
    assert a.size == 400 and np.array_equal(a, epoch_sample(pool, labels, seed=1, size=400))
    assert np.isin(a, pool).all() and np.all(np.diff(a) > 0)
    assert np.bincount(labels[a - 100]).tolist() == [100] * 4
    assert epoch_sample(50, None).tolist() == list(range(50))
    # More labels than the sample holds: still exactly `size` points.
    assert epoch_sample(3000, np.arange(3000), seed=0).size == MAX_SAMPLE


def test_epoch_codes_round_trip(tmp_path) -> None:
    codes = _recorded()
    assert load_epoch_codes(tmp_path) is None  # an old run without the file
    path = codes.save(tmp_path)
    assert path.name == FILE_NAME and [p.name for p in tmp_path.iterdir()] == [FILE_NAME]
    back = load_epoch_codes(tmp_path)
    np.testing.assert_array_equal(back.indices, codes.indices)
    np.testing.assert_array_equal(back.epochs, [1, 2, 3])
    assert back.mu.dtype == np.float32 and back.mu.shape == (3, 12, 4)
    np.testing.assert_array_equal(back.mu, codes.mu)
    np.testing.assert_array_equal(back.kl_per_dim, codes.kl_per_dim)
    with np.load(path, allow_pickle=False) as z:  # plain arrays
        assert sorted(z.files) == ["epochs", "indices", "kl_per_dim", "mu"]


def test_epoch_codes_record_kl_and_refusals() -> None:
    rng = np.random.default_rng(5)
    mu, logvar = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    codes = EpochCodes([3, 1, 2, 0])
    codes.record(1, mu, logvar)
    ref = kl_divergence(Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar))),
                        Normal(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))).mean(0)
    np.testing.assert_allclose(codes.kl_per_dim[0], ref.numpy(), rtol=1e-6)
    codes.record(2, mu, kl_per_dim=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="epoch must increase"):
        codes.record(2, mu, logvar)
    with pytest.raises(ValueError, match="NaN"):
        codes.record(3, np.full((4, 3), np.nan), logvar)
    with pytest.raises(ValueError, match="dimensions"):
        codes.record(3, mu[:, :2], logvar[:, :2])
    with pytest.raises(ValueError, match="distinct"):
        EpochCodes([1, 1])


def test_epoch_codes_write_is_atomic(tmp_path, monkeypatch) -> None:
    _recorded().save(tmp_path)
    before = (tmp_path / FILE_NAME).read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        _recorded(epochs=5).save(tmp_path)
    # The old file is untouched and no temporary file is left behind.
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]
    assert (tmp_path / FILE_NAME).read_bytes() == before


def _npz_with(tmp_path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(tmp_path / FILE_NAME, "w") as z:
        for name, blob in members.items():
            z.writestr(f"{name}.npy", blob)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_epoch_codes_refuse_huge_header_before_allocating(tmp_path) -> None:
    codes = _recorded()
    # A header declaring 10^9 x 1000 x 64 float32 (256 TB) over 16 bytes of data.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 1000, 64)})
    members = {"indices": _npy(codes.indices), "epochs": _npy(codes.epochs), "mu": buf.getvalue() + bytes(16),
               "kl_per_dim": _npy(codes.kl_per_dim)}
    _npz_with(tmp_path, members)
    with pytest.raises(ValueError, match="max_data_mb|MAX_DATA_MB") as e:
        load_epoch_codes(tmp_path)
    assert "\n" not in str(e.value) and "member 'mu'" in str(e.value)
    # Within the byte budget but over the epoch budget: refused from the header too.
    members["mu"] = _npy(np.zeros((20_000, 1, 1), np.float32))
    _npz_with(tmp_path, members)
    with pytest.raises(ValueError, match="number of epochs is 20,000.*VAE_EXPLORER_MAX_EPOCHS"):
        load_epoch_codes(tmp_path)


def test_epoch_codes_refuse_bad_files(tmp_path) -> None:
    codes = _recorded()
    good = {"indices": _npy(codes.indices), "epochs": _npy(codes.epochs), "mu": _npy(codes.mu),
            "kl_per_dim": _npy(codes.kl_per_dim)}
    _npz_with(tmp_path, {k: v for k, v in good.items() if k != "kl_per_dim"})
    with pytest.raises(ValueError, match="no array 'kl_per_dim'"):
        load_epoch_codes(tmp_path)
    _npz_with(tmp_path, {**good, "epochs": _npy(np.array([1, 2]))})
    with pytest.raises(ValueError, match="disagree"):
        load_epoch_codes(tmp_path)
    _npz_with(tmp_path, {**good, "mu": _npy(np.array([{"a": 1}], dtype=object))})
    with pytest.raises(ValueError, match="pickled"):
        load_epoch_codes(tmp_path)
    bad_mu = codes.mu.copy()
    bad_mu[1, 2, 0] = np.inf
    _npz_with(tmp_path, {**good, "mu": _npy(bad_mu)})
    with pytest.raises(ValueError, match="NaN or Inf"):
        load_epoch_codes(tmp_path)
    (tmp_path / FILE_NAME).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip"):
        load_epoch_codes(tmp_path)


def test_fixed_pca_basis_known_axis() -> None:
    # Points along the direction (3, 4, 0)/5 with a little spread along z: the first axis is that direction.
    t = np.linspace(-5, 5, 21)
    final = np.outer(t, [0.6, 0.8, 0.0]) + np.outer(np.cos(3 * t) * 0.1, [0, 0, 1]) + [1.0, 2.0, 3.0]
    mean, comp = fixed_pca_basis(final)
    np.testing.assert_allclose(mean, final.mean(0), atol=1e-12)
    np.testing.assert_allclose(comp[0], [0.6, 0.8, 0.0], atol=1e-9)  # sign: largest loading positive
    np.testing.assert_allclose(np.abs(comp[1]), [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(comp @ comp.T, np.eye(2), atol=1e-12)
    # Every epoch on that basis: the final epoch's first coordinate is t, an earlier epoch's too.
    epochs = np.stack([final * 0.5 + 0.5 * mean, final])  # (2, 21, 3)
    xy = project_epochs(epochs, (mean, comp))
    assert xy.shape == (2, 21, 2) and xy.dtype == np.float32
    np.testing.assert_allclose(xy[1, :, 0], t, atol=1e-5)
    np.testing.assert_allclose(xy[0, :, 0], 0.5 * t, atol=1e-5)
    # One latent dimension: the second axis is zero.
    m1, c1 = fixed_pca_basis(t[:, None])
    assert c1.shape == (2, 1) and c1[1, 0] == 0.0
