"""vae_core.maps.projection against independent references: numpy SVD, hand-made maps, brute-force kNN."""
from __future__ import annotations

import numpy as np
import pytest

from vae_core.maps.map_arrays import LocalInverse, neighbour_preservation, stratified_sample
from vae_core.progress import Progress
from vae_core.maps.projection import Projection

N_PER_BLOB = 50


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian blobs in 10-D: mu (150, 10) float32, labels (150,)."""
    rng = np.random.default_rng(0)
    centres = np.zeros((3, 10))
    centres[1, 0], centres[2, 1] = 12.0, 12.0
    mu = np.concatenate([c + rng.normal(size=(N_PER_BLOB, 10)) for c in centres]).astype(np.float32)
    return mu, np.repeat(np.arange(3), N_PER_BLOB)


def _label_agreement(emb: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Fraction of each point's k nearest map neighbours that share its label (brute force)."""
    d = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :k]
    return float((labels[nn] == labels[:, None]).mean())


def _spacing(emb: np.ndarray) -> float:
    """Median nearest-neighbour distance among map points (brute force)."""
    d = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=-1)
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


# --- neighbour_preservation and sampling --------------------------------------------------------


def test_neighbour_preservation_matches_brute_force():
    rng = np.random.default_rng(1)
    high, low = rng.normal(size=(60, 5)), rng.normal(size=(60, 2))
    k = 7

    def knn(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1)[:, :k]

    a, b = knn(high), knn(low)
    ref = np.mean([len(set(a[i]) & set(b[i])) / k for i in range(60)])
    assert neighbour_preservation(high, low, k=k) == pytest.approx(ref)
    assert neighbour_preservation(high, high, k=k) == 1.0
    # A random map keeps about k / (N - 1) of the neighbours.
    assert neighbour_preservation(high, low, k=k) < 0.35


def test_neighbour_preservation_rejects_bad_k():
    x = np.zeros((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(ValueError, match="k=5"):
        neighbour_preservation(x, x, k=5)


def test_stratified_sample_keeps_label_proportions():
    labels = np.repeat([0, 1, 2], [600, 300, 100])
    idx = stratified_sample(1000, 100, labels, seed=0)
    assert idx.size == 100 and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [60, 30, 10]
    assert np.array_equal(idx, stratified_sample(1000, 100, labels, seed=0))
    assert np.array_equal(stratified_sample(50, 100, None, seed=0), np.arange(50))


# --- PCA: exact inverse -------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
def test_pca_inverse_is_exact_when_latent_fits_in_the_map(k):
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(40, 2)) * [3.0, 0.5] + [1.0, -2.0]  # D=2 <= k (k=3 gets a zero axis)
    p = Projection("pca", n_components=k).fit(mu)
    assert p.inverse_is_exact and p.inverse_kind == "exact"
    z, dist = p.inverse(p.transform(mu))
    np.testing.assert_allclose(z, mu, atol=1e-5)
    np.testing.assert_allclose(dist, 0, atol=1e-4)  # map points of the data sit on the data


@pytest.mark.parametrize("k", [2, 3])
def test_pca_matches_numpy_svd(k):
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(80, 6)) @ rng.normal(size=(6, 6)) + 5.0  # (N, D) correlated, off-centre
    mean = mu.mean(axis=0)
    _, _, vt = np.linalg.svd(mu - mean, full_matrices=False)
    axes = vt[:k]  # (k, D) top principal directions
    ref_emb = (mu - mean) @ axes.T  # (N, k)
    ref_plane = mean + ref_emb @ axes  # (N, D): projection onto the top principal plane

    p = Projection("pca", n_components=k).fit(mu)
    assert p.embedding_.shape == (80, k) and p.embedding_.dtype == np.float32
    signs = np.sign(np.sum(p.embedding_ * ref_emb, axis=0))  # columns agree up to sign
    np.testing.assert_allclose(p.embedding_ * signs, ref_emb, rtol=1e-4, atol=1e-4)
    z, _ = p.inverse(p.transform(mu))
    np.testing.assert_allclose(z, ref_plane, rtol=1e-4, atol=1e-4)


def test_pca_distance_grows_off_the_data():
    rng = np.random.default_rng(4)
    p = Projection("pca").fit(rng.normal(size=(100, 4)))
    far = p.embedding_.max(axis=0) + 50 * np.ptp(p.embedding_, axis=0)
    _, dist = p.inverse(np.stack([p.embedding_[0], far]))
    assert dist[0] == pytest.approx(0, abs=1e-5) and dist[1] > 50


# --- local inverse on hand-made maps ------------------------------------------------------------


def _hand_made():
    """A 5x5 grid with spacing 1 near the origin, and two isolated points at (100, 0), (102, 0)."""
    gx, gy = np.meshgrid(np.arange(5.0), np.arange(5.0))
    emb = np.concatenate([np.stack([gx.ravel(), gy.ravel()], axis=1), [[100.0, 0.0], [102.0, 0.0]]])  # (27, 2)
    codes = np.random.default_rng(5).normal(size=(27, 3))  # (27, 3) arbitrary latent codes
    return emb, codes


def test_local_inverse_on_a_point_returns_its_code():
    emb, codes = _hand_made()
    z, dist = LocalInverse(emb, codes, k=8)(emb)
    np.testing.assert_array_equal(z, codes)
    np.testing.assert_array_equal(dist, 0)


def test_local_inverse_midpoint_of_two_isolated_points_is_their_average():
    emb, codes = _hand_made()
    z, dist = LocalInverse(emb, codes, k=2)(np.array([[101.0, 0.0]]))
    np.testing.assert_allclose(z[0], (codes[-1] + codes[-2]) / 2, atol=1e-12)
    assert dist[0] == pytest.approx(1.0)  # 1 away from data whose spacing is 1
    # With more neighbours the far grid points weigh about 1/100 as much each: still close.
    z8, _ = LocalInverse(emb, codes, k=8)(np.array([[101.0, 0.0]]))
    np.testing.assert_allclose(z8[0], (codes[-1] + codes[-2]) / 2, atol=0.1)


def test_local_inverse_weights_by_inverse_distance():
    emb, codes = _hand_made()
    q = np.array([[100.5, 0.0]])  # 0.5 from the first isolated point, 1.5 from the second
    z, _ = LocalInverse(emb, codes, k=2)(q)
    np.testing.assert_allclose(z[0], 0.75 * codes[-2] + 0.25 * codes[-1], atol=1e-12)


def test_local_inverse_distance_is_small_among_data_and_large_far_away():
    emb, codes = _hand_made()
    inv = LocalInverse(emb, codes)
    assert inv.scale == pytest.approx(1.0)  # median nearest-neighbour spacing of the grid
    _, dist = inv(np.array([[1.5, 2.0], [2.0, 2.0], [-300.0, 404.0]]))
    # The far query is 500 from its nearest data point, grid point (0, 4).
    assert dist[0] == pytest.approx(0.5) and dist[1] == 0.0 and dist[2] == pytest.approx(500.0)


def test_projection_uses_the_local_inverse_for_nonlinear_maps():
    emb, codes = _hand_made()
    # A fitted t-SNE's state, built by hand: the map and codes are known exactly.
    p = Projection("tsne", inverse_k=2)
    p.embedding_, p.n_features_in_ = emb.astype(np.float32), 3
    p._local = LocalInverse(p.embedding_, codes, k=2)
    assert not p.inverse_is_exact and p.inverse_kind == "local"
    z, dist = p.inverse(np.array([[101.0, 0.0], [3.0, 4.0]]))
    assert z.dtype == np.float32 and dist.dtype == np.float32
    np.testing.assert_allclose(z[0], (codes[-1] + codes[-2]) / 2, atol=1e-6)
    np.testing.assert_allclose(z[1], codes[23], atol=1e-6)  # grid point (3, 4) is row 4 * 5 + 3
    assert dist[1] == 0.0


# --- t-SNE and UMAP on three blobs -------------------------------------------------------------


FIT_PARAMS = {"tsne": {"perplexity": 15.0}, "umap": {"n_neighbors": 10}}


@pytest.fixture(scope="module")
def fitted(blobs):
    """One fit per (method, k), shared by the tests below (numba JIT makes the first UMAP fit slow)."""
    mu, _ = blobs
    cache: dict[tuple[str, int], Projection] = {}

    def get(method: str, k: int) -> Projection:
        if (method, k) not in cache:
            cache[method, k] = Projection(method, k, seed=0, **FIT_PARAMS[method]).fit(mu)
        return cache[method, k]

    return get


@pytest.mark.parametrize("method", ["tsne", "umap"])
@pytest.mark.parametrize("k", [2, 3])
def test_nonlinear_map_shape_separation_and_inverse(blobs, fitted, method, k):
    mu, labels = blobs
    p = fitted(method, k)
    assert p.embedding_.shape == (150, k) and p.embedding_.dtype == np.float32
    assert np.isfinite(p.embedding_).all() and not p.inverse_is_exact
    assert _label_agreement(p.embedding_, labels) > 0.99  # blobs stay apart on the map
    assert neighbour_preservation(mu, p.embedding_) > 0.3  # a random map keeps ~0.07
    z, dist = p.inverse(p.embedding_[:5])
    np.testing.assert_array_equal(z, mu[:5])
    np.testing.assert_array_equal(dist, 0)


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_nonlinear_map_is_deterministic_given_the_seed(blobs, fitted, method):
    mu, _ = blobs
    again = Projection(method, 2, seed=0, **FIT_PARAMS[method]).fit(mu)
    np.testing.assert_array_equal(again.embedding_, fitted(method, 2).embedding_)


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_transform_of_training_points_lands_near_their_own_embedding(blobs, fitted, method):
    mu, labels = blobs
    p = fitted(method, 2)
    before = p.embedding_.copy()
    placed = p.transform(mu.copy() + 1e-4)  # a copy: umap-learn short-cuts its own training array
    assert placed.shape == (150, 2) and placed.dtype == np.float32
    np.testing.assert_array_equal(p.embedding_, before)  # transform leaves the map where it is
    # Each placed point's nearest map point is in its own blob, and it lands close to where the
    # fit put it (umap-learn's transform is the looser of the two: ~3% of the map's size).
    d = np.linalg.norm(placed[:, None] - before[None], axis=-1)  # (150, 150)
    assert (labels[d.argmin(axis=1)] == labels).mean() > 0.99
    moved = np.median(np.linalg.norm(placed - before, axis=1))
    assert moved < 0.06 * np.linalg.norm(np.ptp(before, axis=0))
    if method == "tsne":
        assert moved < 3 * _spacing(before)


def test_tsne_progress_is_reported_and_can_stop_the_fit(blobs):
    mu, _ = blobs
    events: list[Progress] = []
    p = Projection("tsne", perplexity=15.0, n_iter=50, progress=events.append, progress_every=25).fit(mu)
    assert [(e.what, e.done) for e in events] == (
        [("early_exaggeration", i) for i in range(25, 251, 25)] + [("embedding", 25), ("embedding", 50)]
    )
    assert all(np.isfinite(e.info["kl_divergence"]) for e in events) and not p.stopped_early_

    calls: list[Progress] = []
    stop = Projection("tsne", perplexity=15.0, progress=lambda e: calls.append(e) or e.done >= 50,
                      progress_every=25).fit(mu)
    assert [(e.what, e.done) for e in calls] == [("early_exaggeration", 25), ("early_exaggeration", 50)]
    assert stop.stopped_early_ and stop.embedding_.shape == (150, 2) and np.isfinite(stop.embedding_).all()


def test_umap_progress_follows_its_own_stages_and_epochs(blobs, fitted):
    """Issue 20, item 6: UMAP's progress was one event before and one after its whole fit (0% for
    most of it); now its graph stage, then each of its layout epochs, as umap-learn counts them."""
    import umap

    fitted("umap", 2)  # JIT already paid
    x = blobs[0][:60]
    events: list[Progress] = []
    p = Projection("umap", n_neighbors=10, seed=0, progress=events.append).fit(x)
    assert [(e.what, e.done) for e in events[:2]] == [("umap_graph", 0), ("umap_graph", 1)]
    epochs = [e for e in events if e.what == "umap_epochs"]
    # umap-learn's own epoch count for this data (umap_.simplicial_set_embedding: 500 epochs below
    # 10,000 points)
    assert {e.total for e in epochs} == {500}
    ref = umap.UMAP(n_neighbors=10, random_state=0, n_jobs=1).fit(x)  # the same fit, no progress
    assert [e.done for e in epochs] == list(range(epochs[0].total + 1)), "every epoch, in order"
    fr = [e.fraction for e in events]
    assert fr == sorted(fr) and fr[0] == 0.0 and fr[-1] == 1.0 and fr[1] > 0.0
    np.testing.assert_allclose(p.embedding_, ref.embedding_, rtol=1e-5, atol=1e-5)  # the same map as without
    assert p._umap.tqdm_kwds == {"disable": True}, "the kept model holds no progress callback"


def test_map_progress_in_words_names_the_method_and_its_stage():
    from explorer import cache

    assert cache.MAP_NAMES == {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
    assert cache.map_phase(Progress("umap_epochs", 120, 500, 0.8)) == "UMAP's layout, epoch 120 of 500"
    assert "UMAP" in cache.map_phase(Progress("umap_graph", 0, 1, 0.0))
    assert cache.map_phase(Progress("transform", 5000, 10000, 0.9)).endswith("5,000 of 10,000")


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_large_data_fits_a_stratified_sample_and_transforms_the_rest(blobs, fitted, method):
    mu, labels = blobs
    fitted(method, 2)  # JIT already paid
    p = Projection(method, seed=0, max_fit_points=90, **FIT_PARAMS[method]).fit(mu, labels=labels)
    assert p.fit_indices_.size == 90
    assert np.bincount(labels[p.fit_indices_]).tolist() == [30, 30, 30]
    assert p.embedding_.shape == (150, 2) and np.isfinite(p.embedding_).all()
    assert _label_agreement(p.embedding_, labels) > 0.95


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, mu_fn, match",
    [
        ({"method": "tsen"}, None, "method.*'tsen'"),
        ({"n_components": 4}, None, "n_components.*4"),
        ({"n_components": 1}, None, "n_components.*1"),
        ({}, lambda mu: np.where(np.arange(150)[:, None] == 7, np.nan, mu), "mu.*NaN.*row 7"),
        ({}, lambda mu: mu[:, 0], r"mu must be 2-D.*\(150,\)"),
        ({"method": "tsne", "perplexity": 30.0}, lambda mu: mu[:40], "perplexity=30.0.*N=40"),
        ({"method": "tsne", "perplexity": -1}, None, "perplexity.*-1"),
        ({"method": "umap", "n_neighbors": 200}, None, "n_neighbors.*200"),
    ],
)
def test_bad_input_names_the_argument_and_value(blobs, kwargs, mu_fn, match):
    mu = blobs[0] if mu_fn is None else mu_fn(blobs[0])
    with pytest.raises(ValueError, match=match):
        Projection(**kwargs).fit(mu)


def test_bad_input_to_transform_and_inverse(blobs):
    mu, _ = blobs
    p = Projection("pca").fit(mu)
    with pytest.raises(ValueError, match=r"new_mu must have 10 columns.*\(3, 9\)"):
        p.transform(np.zeros((3, 9)))
    with pytest.raises(ValueError, match=r"points must have 2 columns.*\(3, 3\)"):
        p.inverse(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="points contains NaN"):
        p.inverse(np.array([[0.0, np.nan]]))
    with pytest.raises(RuntimeError, match="not fitted"):
        Projection("pca").inverse(np.zeros((1, 2)))


# --- maps beyond max_fit_points: a fitted sample, the rest placed ----------------------------------


def _brute_knn(x: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    """Indices (M, k) of the k nearest rows of ref to each row of x (numpy, brute force)."""
    d = ((x[:, None, :].astype(np.float64) - ref[None, :, :]) ** 2).sum(-1)  # (M, R)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def uneven_blobs() -> tuple[np.ndarray, np.ndarray]:
    """Six Gaussian blobs in 8-D of uneven sizes (600 points), each blob with inner structure."""
    rng = np.random.default_rng(7)
    sizes = [180, 150, 110, 80, 50, 30]
    centres = rng.normal(scale=8.0, size=(6, 8))
    mu = np.concatenate([c + rng.normal(size=(s, 8)) for c, s in zip(centres, sizes)]).astype(np.float32)
    return mu, np.repeat(np.arange(6), sizes)


def test_default_fit_sample_is_ten_thousand():
    assert Projection("tsne").max_fit_points == 10_000


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_fitted_mask_sample_size_and_label_proportions(uneven_blobs, fitted, method):
    mu, labels = uneven_blobs
    fitted(method, 2)  # UMAP's JIT already paid
    p = Projection(method, seed=0, max_fit_points=300, **FIT_PARAMS[method]).fit(mu, labels=labels)
    assert p.fitted_.dtype == bool and p.fitted_.shape == (600,)
    assert p.fitted_.sum() == 300 and np.array_equal(np.flatnonzero(p.fitted_), p.fit_indices_)
    # Each label keeps its share of the data in the sample: 300/600 of each count (all whole here).
    assert np.bincount(labels[p.fitted_], minlength=6).tolist() == (np.bincount(labels) // 2).tolist()
    assert p.embedding_.shape == (600, 2) and np.isfinite(p.embedding_).all()


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_placed_points_land_near_their_fitted_neighbours(uneven_blobs, fitted, method):
    """For each placed point: its 10 nearest fitted points in the latent space (numpy) against its 10
    nearest fitted points on the map (numpy). A point dropped at random would share about 10/300."""
    mu, labels = uneven_blobs
    fitted(method, 2)
    p = Projection(method, seed=0, max_fit_points=300, **FIT_PARAMS[method]).fit(mu, labels=labels)
    placed, fit = ~p.fitted_, p.fitted_
    high = _brute_knn(mu[placed], mu[fit], 10)  # (300, 10) into the fitted points
    low = _brute_knn(p.embedding_[placed], p.embedding_[fit], 10)
    shared = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(high, low)])
    assert shared > 0.3
    # and on the map, a placed point's nearest fitted point carries its own label
    nearest = _brute_knn(p.embedding_[placed], p.embedding_[fit], 1)[:, 0]
    assert (labels[fit][nearest] == labels[placed]).mean() > 0.95


def test_pca_maps_every_point_however_many(uneven_blobs):
    mu, labels = uneven_blobs
    p = Projection("pca", max_fit_points=10).fit(mu, labels=labels)
    assert p.fitted_.all() and p.fit_indices_.size == 600
    centred = mu.astype(np.float64) - mu.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T  # (600, 2): all points, not a sample
    signs = np.sign(np.sum(p.embedding_ * ref, axis=0))
    np.testing.assert_allclose(p.embedding_ * signs, ref, rtol=1e-4, atol=1e-4)
