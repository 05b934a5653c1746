"""Data files that change, hide or lie (issue 19, items 1, 2 and 6).

1. A large .npy is read with os.pread, never through a memory map: a file truncated under a
   running `train` (what `cp` onto it does) is one sentence and exit 2, not a SIGBUS (exit -7).
2. Every path that receives lazy `Images` (a subset over VAE_EXPLORER_MMAP_OVER_MB) works: the
   epoch-code recorder, training's evaluation, diagnose, blur, encodings, exports, thumbnails.
6. A FIFO, a device, a socket, a folder named *.npy, a 0-byte file and text in an .npz are refused
   with one sentence, without blocking, from the CLI and the library the upload and the server's
   data folder go through.
References are numpy's own np.load of the whole file and hand-made arrays.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import ModelConfig, VAE
from vae_core.data import Dataset, DataError, Images, load_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_threshold(monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MMAP_OVER_MB", "1")


def _images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 1, 28, 28) float32 in [0, 1]."""
    return np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)


def _cli(*args, env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "VAE_EXPLORER_MMAP_OVER_MB": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "vae_core", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# --- item 1: a file truncated under a running reader -------------------------------------------
def test_truncated_under_a_training_child_is_one_sentence_not_sigbus(tmp_path):
    big = tmp_path / "big.npy"
    np.save(big, _images(3000))  # 9.4 MB as float32: over the 1 MB threshold, read in batches
    progress = tmp_path / "progress.jsonl"
    proc = _cli("train", "--data", big, "--record-codes", "0", "--epochs", "10000", "--hidden", "16",
                "--latent-dim", "2", "--quiet", "--progress-jsonl", progress, "--out", tmp_path / "run")
    try:
        deadline = time.monotonic() + 240
        # wait for the child's first optimiser step: it is then reading batches from the file
        while not (progress.exists() and '"step"' in progress.read_text()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never reported a step"
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        os.truncate(big, 4096)  # what `cp new.npy big.npy` does first to the same inode
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, (proc.returncode, err)  # the old memory map: -7 (SIGBUS)
    line = _one_line(err)
    assert "big.npy" in line and "changed while being read" in line and "reload" in line, line
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_a_file_changed_between_reads_is_a_data_error(tmp_path, tiny_threshold):
    big = tmp_path / "big.npy"
    a = _images(1000, seed=1)
    np.save(big, a)
    data = load_dataset(big)
    assert isinstance(data.x, Images)
    assert torch.equal(data.x[10:20], torch.from_numpy(a[10:20]))
    os.truncate(big, 8192)  # shorter: the pread comes back short
    with pytest.raises(DataError, match=r"^big.npy: the file changed while being read .*; reload it"):
        data.x[900:1000]
    np.save(big, a[::-1].copy())  # same size again, other content (a later mtime)
    os.utime(big, ns=(time.time_ns(), time.time_ns() + 10**9))
    with pytest.raises(DataError, match="changed while being read"):
        data.x[np.array([5, 3])]


def test_pread_rows_match_numpy_in_every_layout(tmp_path, tiny_threshold):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, size=(600, 28, 28, 3), dtype=np.uint8)  # (N, H, W, C), 0..255, 5.6 MB as float32
    np.save(tmp_path / "hwc.npy", a)
    ref = torch.from_numpy(a.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255))
    x = load_dataset(tmp_path / "hwc.npy").x
    assert isinstance(x, Images) and tuple(x.shape) == (600, 3, 28, 28)
    idx = np.array([599, 0, 7, 8, 9, 7, 300])  # runs, repeats and order
    assert torch.equal(x[idx], ref[idx]) and torch.equal(x[5:450], ref[5:450]) and torch.equal(x[-1], ref[-1])
    flat = rng.random((700, 784)).astype(">f8")  # (N, P) big-endian float64
    np.save(tmp_path / "flat.npy", flat)
    y = load_dataset(tmp_path / "flat.npy").x
    ref2 = torch.from_numpy(flat.astype(np.float32).reshape(-1, 1, 28, 28))
    assert torch.equal(y[3:600:7], ref2[3:600:7]) and torch.equal(y[[699, 1]], ref2[[699, 1]])
    np.save(tmp_path / "fortran.npy", np.asfortranarray(_images(600)))
    with pytest.raises(DataError, match=r"^fortran.npy: .*Fortran order; save it with np.save"):
        load_dataset(tmp_path / "fortran.npy")


# --- item 2: lazy images on every path ----------------------------------------------------------
def test_train_records_codes_from_a_large_file(tmp_path):
    big = tmp_path / "big.npy"
    np.save(big, _images(2000, seed=3))  # eval split 400 x 3 kB = 1.2 MB and the 400-point sample: both lazy
    proc = _cli("train", "--data", big, "--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--quiet",
                "--record-codes", "400", "--out", tmp_path / "run")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err  # old code: AttributeError: 'Images' object has no attribute 'flatten'
    with np.load(tmp_path / "run" / "epoch_codes.npz", allow_pickle=False) as z:
        assert z["mu"].shape == (2, 400, 2) and np.isfinite(z["mu"]).all()


def _model() -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(input_shape=(1, 28, 28), latent_dim=3, hidden=(16,))).eval()


def test_recorder_on_lazy_sample_matches_in_memory(tmp_path, tiny_threshold):
    from vae_core.epoch_codes import CodeRecorder

    np.save(tmp_path / "big.npy", _images(1000, seed=4))
    data = load_dataset(tmp_path / "big.npy")
    idx = np.arange(0, 1000, 2)  # 500 images, 1.5 MB: a lazy subset
    lazy = data.subset(idx).x
    assert isinstance(lazy, Images)
    ref = torch.from_numpy(np.load(tmp_path / "big.npy")[idx])
    model = _model()
    got, want = CodeRecorder(model, lazy, idx), CodeRecorder(model, ref, idx)
    got.record(0)
    want.record(0)
    with torch.inference_mode():
        mu_ref = model.encode(ref)[0].numpy()
    assert np.allclose(got.codes.mu[0], mu_ref, atol=1e-6) and np.allclose(want.codes.mu[0], mu_ref, atol=1e-6)


def test_batches_and_materialise(tmp_path, tiny_threshold, monkeypatch):
    from vae_core.data.lazy import batches, materialise

    a = _images(800, seed=5)
    np.save(tmp_path / "big.npy", a)
    x = load_dataset(tmp_path / "big.npy").x
    parts = list(batches(x, 300))
    assert [len(p) for p in parts] == [300, 300, 200] and torch.equal(torch.cat(parts), torch.from_numpy(a))
    assert torch.equal(materialise(x), torch.from_numpy(a))
    t = torch.zeros(2, 1, 3, 3)
    assert materialise(t) is t
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "1")
    with pytest.raises(DataError, match="VAE_EXPLORER_MAX_DATA_MB"):
        materialise(x)


def test_blur_and_uint8_paths_take_lazy_images(tmp_path, tiny_threshold):
    from vae_core.metrics.blur import laplacian_variance

    a = _images(600, seed=6)
    np.save(tmp_path / "big.npy", a)
    x = load_dataset(tmp_path / "big.npy").x
    assert isinstance(x, Images)
    t = torch.from_numpy(a).double()
    # the 3x3 Laplacian by hand, float64: 'valid' response, variance per image
    resp = t[..., :-2, 1:-1] + t[..., 2:, 1:-1] + t[..., 1:-1, :-2] + t[..., 1:-1, 2:] - 4 * t[..., 1:-1, 1:-1]
    want = resp.flatten(2).var(2, unbiased=False).mean(1).numpy()
    assert np.allclose(laplacian_variance(x), want, rtol=1e-6)
