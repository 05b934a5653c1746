"""Which points a diagnose report scores: the run's own held-out split, rebuilt as training made it.

`train` (the CLI and the app) splits `load_dataset(data, n=--n, seed)` with `.split(eval_fraction,
seed)`; a report on any other points would score training points as "held out". `runs.run_load.eval_split`
reads the run's seed, eval fraction, --n and dataset from config.json, in the order `eval_points` takes
them.
"""
from __future__ import annotations

import numpy as np

from ...config import TrainConfig
from ...data import Dataset, seeded_subset
from ...data.sprites import DEFAULT_N as SPRITES_DEFAULT_N  # load_dataset("sprites") without n makes this many

EVAL_FRACTION = TrainConfig.eval_fraction  # the training code's held-out share; diagnose reads the same split


def training_pool(data: Dataset, split_seed: int = 0, train_n: int | None = None,
                  train_dataset: str | None = None) -> Dataset:
    """The items a run split into train and eval, rebuilt from the whole dataset as `train` did:
    `load_dataset(data, n=train_n, seed=split_seed)` before `.split(eval_fraction, split_seed)`.

    For a file or a built-in image set, `--n` drew a seeded subset (the same draw as `load_dataset`);
    for `sprites` the pool is the one generated with (n or 10,000, seed), regenerated here when
    `data` is another draw. train_dataset is the run's dataset id (None: no run, nothing to rebuild
    beyond the subset).
    """
    if train_dataset == "sprites" and data.name == "sprites":
        from ...data.sprites import make_sprites

        count = train_n if train_n is not None else SPRITES_DEFAULT_N
        size = int(data.meta.get("size", data.shape[-1]))
        if len(data) == count and data.meta.get("seed") == split_seed and data.shape[-1] == size:
            return data
        return make_sprites(n=count, seed=split_seed, size=size)
    return seeded_subset(data, train_n, split_seed)  # exactly load_dataset's draw


def eval_points(data: Dataset, n_points: int | None, split_seed: int = 0,
                eval_fraction: float = EVAL_FRACTION, train_n: int | None = None,
                train_dataset: str | None = None) -> Dataset:
    """The held-out points a report uses: the eval part of the run's split, or n_points of it.

    The run's split is `training_pool(data, split_seed, train_n, train_dataset).split(eval_fraction,
    split_seed)[1]`: split_seed, eval_fraction, train_n and train_dataset must be the run's (what
    `runs.run_load.eval_split` reads from config.json, in that order, so `*eval_split(run)` passes
    them all), or the "held-out" points include training points. The Monte Carlo seed is separate.
    """
    ev = training_pool(data, split_seed, train_n, train_dataset).split(eval_fraction, split_seed)[1]
    return some_points(ev, n_points, split_seed)


def point_order(n: int, split_seed: int) -> np.ndarray:
    """The seeded random order of n held-out points: any first m of it are a seeded random subset,
    so a report stopped by its time budget after m points scores an unbiased subset."""
    return np.random.default_rng(split_seed).permutation(n)


def some_points(ev: Dataset, n_points: int | None, split_seed: int) -> Dataset:
    """n_points of the held-out points ev (all when None or more), as `eval_points` picks them: the
    first n_points of `point_order`, in index order (so a budget's first m points are these m)."""
    if n_points is None or n_points >= len(ev):
        return ev
    return ev.subset(np.sort(point_order(len(ev), split_seed)[:int(n_points)]))


def in_point_order(ev: Dataset, split_seed: int) -> Dataset:
    """All of ev in `point_order`: its first m points are `some_points(ev, m, split_seed)`, reordered."""
    return ev.subset(point_order(len(ev), split_seed))
