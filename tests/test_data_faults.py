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
    assert tuple(x[np.array([], dtype=np.int64)].shape) == (0, 3, 28, 28) and tuple(x[9:3].shape) == (0, 3, 28, 28)
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
    from vae_core.runs.epoch_codes import CodeRecorder

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


# --- item 6: files that are not data files ------------------------------------------------------
def _train_cli(data: Path, out: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`train` on `data`, killed after `timeout` s (a FIFO's open() blocked forever before)."""
    return subprocess.run([sys.executable, "-m", "vae_core", "train", "--data", str(data), "--epochs", "1",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_fifo_named_npy_is_refused_by_the_cli_without_blocking(tmp_path):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    r = _train_cli(fifo, tmp_path / "run")  # old code: TimeoutExpired (open() waits for a writer)
    assert r.returncode == 2, r.stderr
    line = _one_line(r.stderr)
    assert "x.npy: it is a named pipe (FIFO), not a data file" in line, line


def test_open_regular_never_blocks_on_a_fifo_swapped_in(tmp_path):
    from vae_core.data.files.validate import open_regular

    fifo = tmp_path / "x.npz"
    os.mkfifo(fifo)  # what a path that passed a stat check may have become by the time it is opened
    with pytest.raises(DataError, match=r"^x.npz: it is a named pipe \(FIFO\), not a data file"):
        open_regular(fifo, "x.npz")


def _unix_socket(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    return s


def _npz_with_text_member(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", "0,1,2\n3,4,5\n")
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _link(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


def _savez(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("make, needle", [
    (lambda d: _link(d / "dev.npy", "/dev/null"), "dev.npy: it is a character device, not a data file"),
    (lambda d: _mkdir(d / "f.npy"), "f.npy: it is a folder, not a .npy file"),
    (lambda d: _mkdir(d / "f.npz"), "f.npz: it is a folder, not a .npz file"),
    (lambda d: _write(d / "e.npy", b""), "e.npy: the file is empty (0 bytes)"),
    (lambda d: _write(d / "e.npz", b""), "e.npz: the file is empty (0 bytes)"),
    (lambda d: _write(d / "e.csv", b""), "e.csv: the file is empty (0 bytes)"),
    (lambda d: _write(d / "t.npz", b"x,y\n1,2\n"), "t.npz: could not be read: it is not a zip file"),
    (lambda d: _npz_with_text_member(d / "m.npz"), "m.npz: member 'x.npy': could not be read as a numpy file"),
    (lambda d: _savez(d / "s.npz", x=np.array(["a", "b"])), "non-numeric values"),
], ids=["device", "folder-npy", "folder-npz", "empty-npy", "empty-npz", "empty-csv", "text-npz", "text-member",
        "string-array"])
def test_not_a_data_file_is_one_sentence(tmp_path, make, needle):
    from vae_core.data.files import load_file

    path = make(tmp_path)
    with pytest.raises(DataError) as info:
        load_file(path)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg and str(tmp_path) not in msg, msg


def test_socket_named_npy_is_refused_by_the_cli(tmp_path):
    with _unix_socket(tmp_path / "s.npy"):
        r = _train_cli(tmp_path / "s.npy", tmp_path / "run")
    assert r.returncode == 2 and "s.npy: it is a socket, not a data file" in _one_line(r.stderr), r.stderr


def test_device_and_folder_named_npy_are_refused_by_the_cli(tmp_path):
    (tmp_path / "dev.npy").symlink_to("/dev/zero")  # endless zeros: never read
    r = _train_cli(tmp_path / "dev.npy", tmp_path / "run")
    assert r.returncode == 2 and "dev.npy: it is a character device" in _one_line(r.stderr), r.stderr
    (tmp_path / "d.npy").mkdir()
    r = _train_cli(tmp_path / "d.npy", tmp_path / "run")
    assert r.returncode == 2 and "d.npy: it is a folder, not a .npy file" in _one_line(r.stderr), r.stderr


def test_an_upload_that_is_empty_or_text_is_refused_the_same_way(tmp_path, monkeypatch):
    from sidebar import open_app, text, upload

    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    at = open_app()
    before = (at.session_state["model_src"], at.session_state["data_src"])
    for name, data, needle in (("e.npy", b"", "e.npy: the file is empty (0 bytes)"),
                               ("t.npz", b"x,y\n1,2\n", "t.npz: could not be read: it is not a zip file")):
        upload(at, "upload_data", name, data)
        assert not at.exception, [e.value for e in at.exception]
        errors = text(at.error)
        assert "Upload refused, nothing changed" in errors and needle in errors, errors
        assert (at.session_state["model_src"], at.session_state["data_src"]) == before


def _uint8_ref(a: np.ndarray) -> np.ndarray:
    """float32 (N, 1, H, W) in [0, 1] -> (N, H, W) uint8, by hand (float32 products, as the page's images)."""
    return (np.clip(a[:, 0], 0, 1) * np.float32(255)).round().astype(np.uint8)


def test_lazy_images_to_uint8_in_batches_within_the_budget(tmp_path, tiny_threshold, monkeypatch):
    from explorer import images

    a = _images(2000, seed=7)  # 6.3 MB as float32, 1.6 MB as uint8
    np.save(tmp_path / "big.npy", a)
    x = load_dataset(tmp_path / "big.npy").x
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "3")  # float32 whole: over; uint8: within
    # old code: DataLimitError (np.asarray(x) loaded every image as float32 first)
    assert np.array_equal(images.to_uint8(x), _uint8_ref(a))
    assert np.array_equal(images.to_uint8(x, stop=123), _uint8_ref(a[:123]))
    rows = images.uint8_rows(x)
    assert rows.shape == (2000, 28, 28) and len(rows) == 2000
    assert np.array_equal(np.stack(list(rows)), _uint8_ref(a))
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "1")
    with pytest.raises(Exception, match="VAE_EXPLORER_MAX_DATA_MB"):
        images.to_uint8(x)


def test_projector_sprite_from_lazy_images(tmp_path, tiny_threshold):
    import io as _io

    from PIL import Image

    from explorer import images
    from vae_core.maps.export import projector_zip

    a = _images(400, seed=8)[:, :, :8, :8].copy()  # 400 8x8 images: 20 x 20 of them, no shrinking
    a = np.repeat(a, 60, axis=0)[:400]
    np.save(tmp_path / "big.npy", np.concatenate([a] * 20))  # 8,000 images, 2 MB: lazy
    x = load_dataset(tmp_path / "big.npy").x
    assert isinstance(x, Images)
    z = projector_zip(np.zeros((8000, 2)), images.uint8_rows(x), {"index": list(range(8000))})
    with zipfile.ZipFile(_io.BytesIO(z)) as zf:
        sheet = np.asarray(Image.open(_io.BytesIO(zf.read("sprite.png"))))
    ref = _uint8_ref(np.concatenate([a] * 20))  # (8000, 8, 8); the sheet is 90 x 90 images of 8 x 8
    assert sheet.shape == (720, 720)
    for i in (0, 1, 89, 90, 7999):
        r, c = divmod(i, 90)
        assert np.array_equal(sheet[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8], ref[i]), i


def test_thumbnail_sheet_from_the_first_rows_only():
    from vae_core.maps.map_plane import thumbnail_sheet

    x = np.arange(10 * 4 * 4, dtype=np.uint8).reshape(10, 4, 4)
    # 10 images of 4 x 4 within 80 pixels, never below 4 px a side: the first 5 at full size,
    # ceil(sqrt(5)) = 3 columns, 2 rows, the sixth cell empty
    ts = thumbnail_sheet(x[:5], budget=80, min_side=4, n=10)
    want = np.zeros((8, 12), np.uint8)
    for i in range(5):
        r, c = divmod(i, 3)
        want[r * 4:(r + 1) * 4, c * 4:(c + 1) * 4] = x[i]
    assert ts.count == 5 and ts.factor == 1 and np.array_equal(ts.sheet, want)
    with pytest.raises(ValueError, match="only 4 were given"):
        thumbnail_sheet(x[:4], budget=80, min_side=4, n=10)


def test_selection_npz_of_lazy_images_in_batches(tmp_path, tiny_threshold, monkeypatch):
    from explorer.selection_ui import _rows, _uint8_nchw

    a = _images(2000, seed=9)
    np.save(tmp_path / "big.npy", a)
    x = load_dataset(tmp_path / "big.npy").x
    rows = np.arange(1999, -1, -1)  # every point selected, in reverse
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "3")  # the selection as float32: 6.3 MB, over; as uint8: 1.6
    got = _uint8_nchw(_rows(x, rows))  # old code: x[rows] read all 6.3 MB as float32 with no budget asked
    want = (np.clip(a[rows], 0, 1) * np.float32(255)).round().astype(np.uint8)  # (2000, 1, 28, 28)
    assert got.shape == (2000, 1, 28, 28) and np.array_equal(got, want)
    monkeypatch.setenv("VAE_EXPLORER_MAX_DATA_MB", "1")
    with pytest.raises(Exception, match="VAE_EXPLORER_MAX_DATA_MB"):
        _uint8_nchw(_rows(x, rows))
