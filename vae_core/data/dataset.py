"""`Dataset`: images x (N, C, H, W) float32 in [0, 1] with optional labels and factors, and `check_fits`."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..config import TrainConfig
from .errors import DataError
from .lazy import Images


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
