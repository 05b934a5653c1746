"""The server's data folder (VAE_EXPLORER_DATA_DIR): its data files appear in the sidebar's data
picker for every session, load through the same checks (a large .npy memory-mapped), and nothing
else in the folder is offered (AppTest)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sidebar import open_app, text
from sidebar import data_picker
from vae_core.data import Images


@pytest.fixture(autouse=True)
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    data_dir = tmp_path / "lab-data"
    data_dir.mkdir()
    monkeypatch.setenv("VAE_EXPLORER_DATA_DIR", str(data_dir))
    return data_dir


def _digits(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28)).astype(np.uint8)


def test_data_folder_files_are_offered_and_load(folders, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_MMAP_OVER_MB", "1")  # the big file takes the memory-mapped path
    np.save(folders / "lab_big.npy", _digits(600))  # 1.8 MB as float32
    np.savez(folders / "lab_small.npz", x=_digits(40, seed=1), y=np.arange(40) % 10)
    (folders / "notes.txt").write_text("not data")
    np.save(folders / ".hidden.npy", _digits(3))
    (folders / "sub.npy").mkdir()  # a folder with a data-like name is not a file

    at = open_app()
    picker = data_picker(at)
    offered = [o for o in picker.options]
    assert "lab_big.npy" in offered and "lab_small.npz" in offered, offered
    assert not any(name in " ".join(offered) for name in ("notes.txt", ".hidden", "sub.npy")), offered

    big = str(folders / "lab_big.npy")
    picker.set_value(big)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, text(at.error)
    assert at.session_state["data_src"] == big
    assert "lab_big.npy" in " ".join(m.value for m in at.markdown)  # the Home page names the active data

    from explorer import cache  # the loaded data is the file's, read through the mapped path
    data = cache.dataset(cache.source(big))
    assert isinstance(data.x, Images) and len(data) == 600
    ref = torch.from_numpy(np.load(folders / "lab_big.npy").astype(np.float32) / np.float32(255.0))
    assert torch.equal(data.x[590:600, 0], ref[590:600])


def test_no_data_folder_offers_only_the_built_ins(monkeypatch):
    monkeypatch.delenv("VAE_EXPLORER_DATA_DIR")
    at = open_app()
    assert data_picker(at).options == ["digits", "mnist", "sprites", "planted"]


def test_a_bad_file_in_the_data_folder_is_refused_in_the_sidebar(folders):
    """Issue 19, item 7: picking a bad file of the folder said one sentence and kept the pair (it
    raised on the page); a 0-byte .npy, text named .npz and an .npy whose header lies, one by one."""
    (folders / "zero.npy").write_bytes(b"")
    (folders / "notes.npz").write_text("these are my notes, not a zip of arrays\n")
    (folders / "short.npy").write_bytes(_npy_header_only((100, 28, 28)))
    at = open_app()
    before = (at.session_state["model_src"], at.session_state["data_src"])
    for name, needle in (("zero.npy", "the file is empty (0 bytes)"), ("notes.npz", "not a zip file"),
                         ("short.npy", "truncated or corrupt")):
        data_picker(at).set_value(str(folders / name))
        at.run()
        assert not at.exception, (name, [e.value for e in at.exception])
        errors = text(at.error)
        assert f"{name} cannot be used" in errors and needle in errors, (name, errors)
        assert str(folders) not in errors  # the file's name, not where the server keeps it
        assert (at.session_state["model_src"], at.session_state["data_src"]) == before
        assert data_picker(at).value == before[1]  # the picker shows the pair kept


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    """An .npy header for uint8 `shape` with no data after it."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_special_files_in_the_data_folder_are_not_offered(folders):
    """Issue 19, item 6: a FIFO, a device and a socket named like data files are never offered (and
    listing them never opens them: a FIFO's open would wait forever)."""
    import os
    import socket

    os.mkfifo(folders / "pipe.npy")
    (folders / "dev.npz").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folders / "sock.csv"))
    np.save(folders / "ok.npy", _digits(5))
    with sock:
        at = open_app()
    offered = " ".join(data_picker(at).options)
    assert "ok.npy" in offered and not any(n in offered for n in ("pipe.npy", "dev.npz", "sock.csv")), offered
