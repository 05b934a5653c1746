"""Data larger than memory (issue 11, item 3): an .npy over VAE_EXPLORER_MMAP_OVER_MB is memory-mapped,
validated and then encoded, diagnosed and trained on in batches, with the same numbers as the same
array loaded whole (the in-memory path, and numpy's own np.load as the reference for the images).
A tiny threshold (1 MB) forces small files through the mapped path; memory is measured in
benchmarks/scale_data.py, not asserted here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vae_core import ModelConfig, TrainConfig, VAE
from vae_core.data import Dataset, DataError, DataLimitError, Images, load_dataset
from vae_core.data.files.validate import validate_mapped
from vae_core.metrics import diagnose
from vae_core.metrics._common import encode_all
from vae_core.train import fit


@pytest.fixture
def tiny_threshold(monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MMAP_OVER_MB", "1")


def _digits_like(n: int, seed: int = 0) -> np.ndarray:
    """(n, 28, 28) uint8 0..255, a blob per image (some structure for the model to see)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    c = rng.uniform(8, 20, size=(n, 2, 1, 1))
    blob = np.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / 30.0)
    return np.clip(blob * 255 + rng.integers(0, 30, size=(n, 28, 28)), 0, 255).astype(np.uint8)


def _model(seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(ModelConfig(input_shape=(1, 28, 28), latent_dim=4, hidden=(32,))).eval()


def _whole(path) -> torch.Tensor:
    """The reference: numpy loads the whole file, scaled to [0, 1] as float32 (N, 1, 28, 28)."""
    a = np.load(path, allow_pickle=False)
    return torch.from_numpy(a.astype(np.float32) / np.float32(255.0)).reshape(len(a), 1, 28, 28)


def test_mapped_npy_reads_the_same_images_as_numpy(tmp_path, tiny_threshold):
    p = tmp_path / "big.npy"
    np.save(p, _digits_like(2000))  # 6.3 MB as float32: over the 1 MB threshold
    data = load_dataset(p)
    assert isinstance(data.x, Images) and data.meta["mapped"]
    ref = _whole(p)
    assert len(data) == 2000 and data.shape == (1, 28, 28) and tuple(data.x.shape) == tuple(ref.shape)
    assert torch.equal(data.x[100:357], ref[100:357])
    assert torch.equal(data.x[-1], ref[-1]) and torch.equal(data.x[3, 0, 2:9], ref[3, 0, 2:9])
    assert torch.equal(data.x[10:20, :, 5], ref[10:20, :, 5])
    idx = torch.tensor([1999, 0, 5, 5])
    assert torch.equal(data.x[idx], ref[idx])
    small = data.subset(np.arange(0, 2000, 10))  # 200 images, 0.6 MB: loaded into memory
    assert isinstance(small.x, torch.Tensor) and torch.equal(small.x, ref[::10])
    train, ev = data.split(0.25, seed=3)  # 1,500 and 500 images: both over 1 MB, both stay mapped
    assert isinstance(train.x, Images) and isinstance(ev.x, Images)
    ref_train, ref_ev = Dataset(x=ref, name="ref").split(0.25, seed=3)
    assert torch.equal(ev.x[:], ref_ev.x) and torch.equal(train.x[7:900:3], ref_train.x[7:900:3])


def test_encodings_and_diagnose_match_the_array_loaded_whole(tmp_path, tiny_threshold):
    p = tmp_path / "big.npy"
    np.save(p, _digits_like(2000, seed=1))
    mapped, whole = load_dataset(p), Dataset(x=_whole(p), name="big.npy")
    model = _model()
    mu_m, lv_m = encode_all(model, mapped.x.to("cpu"), 300)
    mu_w, lv_w = encode_all(model, whole.x, 300)
    assert torch.equal(mu_m, mu_w) and torch.equal(lv_m, lv_w)
    # the held-out 20% (400 images, 1.2 MB) stays memory-mapped through the whole report
    a = diagnose(model, mapped, n_points=None, iwae_k=4, seed=0).to_dict()
    b = diagnose(model, whole, n_points=None, iwae_k=4, seed=0).to_dict()
    fa, fb = _numbers(a), _numbers(b)
    assert {"elbo", "iwae", "kl_per_dim.3", "mutual_info", "blur.reconstructions.laplacian_ratio"} <= set(fa)
    assert set(fa) == set(fb)
    for key in fa:
        if not key.startswith(("timings.", "seconds", "predicted_seconds")):  # wall-clock times differ
            assert fa[key] == pytest.approx(fb[key], rel=1e-6, abs=1e-6, nan_ok=True), key
    assert a["n_points"] == 400


def _numbers(d, prefix: str = "") -> dict[str, float]:
    """Every number of a nested report dict, keyed by its dotted path."""
    out = {}
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, (dict, list)):
            out.update(_numbers(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def test_training_on_mapped_data_matches_in_memory(tmp_path, tiny_threshold):
    p = tmp_path / "big.npy"
    np.save(p, _digits_like(1000, seed=2))  # 3.1 MB as float32
    mapped, whole = load_dataset(p), Dataset(x=_whole(p), name="big.npy")
    cfg = TrainConfig(epochs=1, batch_size=100, seed=0)
    hist = []
    for data in (mapped, whole):
        tr, ev = data.split(cfg.eval_fraction, cfg.seed)
        model = _model(seed=5).train()
        hist.append(fit(model, tr, ev, cfg).rows[0])
    assert isinstance(mapped.split(cfg.eval_fraction, cfg.seed)[0].x, Images)
    for key in ("loss", "recon_nll", "kl", "eval_elbo"):
        assert hist[0][key] == pytest.approx(hist[1][key], rel=1e-5), key


def test_mapped_file_checked_in_batches(tmp_path, tiny_threshold):
    a = np.full((2000, 1, 28, 28), 0.5, dtype=np.float32)  # 6.3 MB
    a[3, 0, 0, :2] = np.nan  # in the first batch...
    a[1990, 0, 5, 5] = np.inf  # ...and in the last
    p = tmp_path / "bad.npy"
    np.save(p, a)
    with pytest.raises(DataError, match=r"^bad.npy: contains 2 NaN and 1 Inf value\(s\)"):
        load_dataset(p)
    a[:] = 0.5
    a[1500, 0, 0, 0] = 300.0
    np.save(p, a)
    with pytest.raises(DataError, match=r"values range over \[0\.5, 300\]"):
        load_dataset(p)
    mm = np.load(p, mmap_mode="r")
    with pytest.raises(DataError, match=r"values range over \[0\.5, 300\]"):
        validate_mapped(mm, "bad.npy", batch_bytes=28 * 28 * 4 * 7)  # 7 images a batch: the max is found anyway
    assert not validate_mapped(np.load(tmp_path / "bad.npy", mmap_mode="r")[:1000], "ok", batch_bytes=4096).scale


def test_mapped_budget_and_whole_array_uses(tmp_path, tiny_threshold, monkeypatch):
    p = tmp_path / "big.npy"
    np.save(p, _digits_like(2000, seed=4))  # 1.6 MB on disk
    monkeypatch.setenv("VAE_EXPLORER_MAX_MAPPED_MB", "1")
    with pytest.raises(DataLimitError,
                       match=r"^big.npy: the array of shape .* \(read from disk in batches\) .* VAE_EXPLORER_MAX_MAPPED_MB"):
        load_dataset(p)
    monkeypatch.delenv("VAE_EXPLORER_MAX_MAPPED_MB")
    data = load_dataset(p)
    assert torch.equal(data.x.cpu(), _whole(p)) and np.array_equal(np.asarray(data.x), _whole(p).numpy())
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "2")  # 6.3 MB as float32: not loaded whole
    with pytest.raises(DataLimitError, match="VAE_EXPLORER_MAX_DATA_MB"):
        data.x.cpu()
    with pytest.raises(TypeError):
        data.x.to(torch.float64)
