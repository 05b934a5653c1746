"""Exports read back by the libraries that consume them (pandas, PIL, zipfile), and zipped runs."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from vae_core import ModelConfig, TrainConfig, VAE
from vae_core.errors import CheckpointError
from vae_core.runs.checkpoints import extract_run_zip, is_run_zip, run_zip, save_run
from vae_core.runs.run_load import list_runs, load_run
from vae_core.maps.export import codes_csv, projector_zip, sprite_image


def test_codes_csv_reads_back_with_pandas():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    coords, labels = rng.normal(size=(5, 2)), np.array([3, 1, 4, 1, 5])
    df = pd.read_csv(io.BytesIO(codes_csv(mu, logvar, coords, labels, {"kl": np.arange(5.0)})))
    assert list(df.columns) == ["index", "label", "map_0", "map_1", "mu_0", "mu_1", "mu_2",
                                "sigma_0", "sigma_1", "sigma_2", "kl"]
    np.testing.assert_allclose(df[["mu_0", "mu_1", "mu_2"]].to_numpy(), mu, rtol=1e-5)
    np.testing.assert_allclose(df[["sigma_0", "sigma_1", "sigma_2"]].to_numpy(), np.exp(0.5 * logvar), rtol=1e-5)
    np.testing.assert_array_equal(df["label"], labels)
    np.testing.assert_array_equal(df["index"], np.arange(5))


def test_projector_zip_files_read_back():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(10, 4))
    imgs = rng.integers(0, 256, size=(10, 8, 8), dtype=np.uint8)
    z = zipfile.ZipFile(io.BytesIO(projector_zip(mu, imgs, {"label": list(range(10)), "err": ["a"] * 10})))
    assert set(z.namelist()) == {"tensors.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt"}
    t = pd.read_csv(z.open("tensors.tsv"), sep="\t", header=None).to_numpy()
    np.testing.assert_allclose(t, mu, rtol=1e-5)
    meta = pd.read_csv(z.open("metadata.tsv"), sep="\t")
    assert list(meta.columns) == ["label", "err"] and len(meta) == 10
    sprite = Image.open(z.open("sprite.png"))
    assert sprite.size == (4 * 8, 4 * 8)  # ceil(sqrt(10)) = 4 thumbnails a side
    # thumbnail 5 sits at row 1, column 1 of the sheet
    np.testing.assert_array_equal(np.asarray(sprite)[8:16, 8:16], imgs[5])
    cfg = z.read("projector_config.pbtxt").decode()
    assert 'tensor_path: "tensors.tsv"' in cfg and "single_image_dim: 8" in cfg


def test_projector_single_metadata_column_has_no_header():
    z = zipfile.ZipFile(io.BytesIO(projector_zip(np.zeros((3, 2)), None, {"label": [7, 8, 9]})))
    assert z.read("metadata.tsv").decode().split() == ["7", "8", "9"]
    assert "sprite" not in z.read("projector_config.pbtxt").decode()


def test_sprite_shrinks_to_tensorboard_limit():
    sheet, (th, tw) = sprite_image(np.zeros((400, 512, 512), dtype=np.uint8))
    assert max(sheet.shape) <= 8192 and th == tw < 512


@pytest.fixture()
def tiny_run(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))).eval()
    return save_run(tmp_path / "tiny", model, TrainConfig(epochs=1), [{"epoch": 1, "loss": 1.0}], dataset="digits")


def test_run_zip_round_trip_gives_identical_model(tiny_run: Path, tmp_path: Path):
    zpath = tmp_path / "tiny.zip"
    zpath.write_bytes(run_zip(tiny_run))
    assert is_run_zip(zpath)
    out = extract_run_zip(zpath, tmp_path / "uploads")
    a, b = load_run(tiny_run).model, load_run(out).model
    x = torch.rand(4, 1, 8, 8)
    with torch.inference_mode():
        assert torch.equal(a.encode(x)[0], b.encode(x)[0])
        assert torch.equal(a.decode(a.encode(x)[0]), b.decode(a.encode(x)[0]))
    assert extract_run_zip(zpath, tmp_path / "uploads") == out  # same content, same place


def test_run_zip_refusals_leave_nothing(tiny_run: Path, tmp_path: Path):
    dest = tmp_path / "uploads"
    # missing weights
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.write(tiny_run / "config.json", "r/config.json")
    with pytest.raises(CheckpointError, match="lacks model.safetensors"):
        extract_run_zip(bad, dest)
    # a pickle where the safetensors weights should be: refused, and never unpickled
    marker = tmp_path / "pwned"
    import pickle

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.write(tiny_run / "config.json", "r/config.json")
        z.writestr("r/model.safetensors", pickle.dumps({"w": Evil()}))
    with pytest.raises(CheckpointError, match="pickle"):
        extract_run_zip(evil, dest)
    assert not marker.exists()
    # names that try to escape the destination are read by base name only
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as z:
        for f in ("config.json", "model.safetensors"):
            z.write(tiny_run / f, f"../../outside/{f}")
    out = extract_run_zip(escape, dest)
    assert out.parent == dest and not (tmp_path.parent / "outside").exists()
    # not a zip at all
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable zip"):
        extract_run_zip(junk, dest)
    assert [p.name for p in list_runs(dest)] == [out.name]
    assert not [p for p in dest.iterdir() if p.name.startswith(".")], "no temp directory left behind"


def test_download_names_keep_the_extension_at_the_end():
    """Issue 20, item 7: an uploaded 'blobs20k.npz' gave 'codes_blobs20k.npz_umap2d.csv'."""
    from vae_core.maps.export import file_stem

    assert f"codes_{file_stem('blobs20k.npz')}_umap2d.csv" == "codes_blobs20k_umap2d.csv"
    assert file_stem("/srv/uploads/my data.tar.gz") == "my_data"
    assert file_stem("mnist") == "mnist" and file_stem("digits.v2") == "digits.v2"
    assert file_stem("Bilder.ZIP") == "Bilder" and file_stem(".npz") == "npz" and file_stem("") == "data"
    assert file_stem("../../etc/passwd") == "passwd", "never a path"
