"""The latent space learning: the codes of a fixed sample of held-out points, recorded every epoch.

During training the same sample (at most ``MAX_SAMPLE`` points, seeded, stratified by label where
labels are known) is encoded after every epoch; ``EpochCodes`` keeps the means and the KL per
dimension, and saves them in the run directory as one optional file, ``epoch_codes.npz``:

    indices     (S,)       int64    the sampled points: rows of the run's held-out split (the eval part of
                                    its train/eval split, as `vae_core.metrics.pipeline.heldout.eval_points(data,
                                    None, *eval_split(run))` rebuilds it)
    epochs      (E,)       int64    epoch numbers, strictly increasing
    mu          (E, S, D)  float32  the sample's latent means after each epoch
    kl_per_dim  (E, D)     float32  KL per dimension after each epoch, nats (see ``EpochCodes.record``)

Plain numeric arrays (no pickle). The file is written atomically (a temporary file in the run
directory, then ``os.replace``), and read back header first, through the readers of
`vae_core.data.files.arrays`: every member's dtype and shape are checked against the budgets of
`vae_core.limits` (epochs: max_epochs, dims: max_latent, bytes: max_data_mb; the sample:
MAX_SAMPLE) before its data is allocated. A run without the file (every run before it existed)
loads as before: ``load_epoch_codes`` returns None.

`CodeRecorder` is the trainer's side: a progress consumer (vae_core.progress) that encodes the
sample after every "epoch" event of `fit`, with no hook inside the training loop; `train` (the CLI,
and so the app's Train page) records epoch 0 (the initial weights) and every epoch when
TrainConfig.record_codes > 0, and `save_run` writes the file with the run, in its atomic write.

The animation shows every epoch in one fixed 2-D basis, the PCA of the final epoch's codes
(``fixed_pca_basis``, ``project_epochs``), so what moves on screen is the codes, not the axes.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .disk_modes import follow_umask
from ..limits import check_bytes
from ..losses import mean_kl_per_dim
from ..maps.map_arrays import PCA, as_codes, stratified_sample

FILE_NAME = "epoch_codes.npz"
MAX_SAMPLE = 1_000  # points followed through training: enough to see clusters form, ~4 kB per dim per epoch
_AXES = {"indices": "S", "epochs": "E", "mu": "ESD", "kl_per_dim": "ED"}  # each member's axes
_KINDS = {"indices": "iu", "epochs": "iu", "mu": "f", "kl_per_dim": "f"}


def epoch_sample(pool: int | np.ndarray, labels: Any | None = None, seed: int | None = 0,
                 size: int = MAX_SAMPLE) -> np.ndarray:
    """Sorted indices (S,) int64 of the points to follow: S = min(size, len(pool)) drawn from pool.

    pool: the held-out points, as their row indices in the dataset (an array), or a count n for
    range(n). labels (len(pool),), aligned with pool, make the draw proportional per label
    (`vae_core.maps.map_arrays.stratified_sample`; with more labels than ``size`` the stratified draw
    is thinned at random to ``size``).
    """
    rows = np.arange(pool) if isinstance(pool, (int, np.integer)) else np.asarray(pool, dtype=np.int64)
    if rows.ndim != 1 or rows.size == 0:
        raise ValueError(f"pool must be a count or a non-empty 1-D array of indices, got shape {rows.shape}")
    if not 1 <= size <= MAX_SAMPLE:
        raise ValueError(f"size must be in [1, {MAX_SAMPLE:,}], got size={size!r}")
    pick = stratified_sample(rows.size, size, labels, seed)
    if pick.size > size:  # stratified_sample keeps one point of every label, however many labels
        pick = np.sort(np.random.default_rng(seed).choice(pick, size=size, replace=False))
    return rows[pick].astype(np.int64)


class EpochCodes:
    """The sample's codes, epoch by epoch; ``record`` after each epoch, ``save`` into the run directory."""

    def __init__(self, indices: Any):
        idx = np.asarray(indices)
        if idx.ndim != 1 or not 1 <= idx.size <= MAX_SAMPLE or idx.dtype.kind not in "iu":
            raise ValueError(f"indices must be 1-D integers, 1 to {MAX_SAMPLE:,} of them; got {idx.dtype} {idx.shape}")
        if idx.min() < 0 or np.unique(idx).size != idx.size:
            raise ValueError("indices must be distinct non-negative row numbers")
        self.indices = idx.astype(np.int64)  # (S,)
        self._epochs: list[int] = []
        self._mu: list[np.ndarray] = []  # E x (S, D) float32
        self._kl: list[np.ndarray] = []  # E x (D,) float32

    def __len__(self) -> int:
        return len(self._epochs)

    def record(self, epoch: int, mu: Any, logvar: Any | None = None, *, kl_per_dim: Any | None = None) -> None:
        """Keep the sample's means mu (S, D) after `epoch`, with its KL per dimension (D,).

        kl_per_dim: given (e.g. the evaluation split's, as the trainer computes it), or else the
        mean over the sample of the closed-form KL_j from mu and logvar (S, D)
        (`vae_core.losses.mean_kl_per_dim`). Epochs must increase; codes must be finite.
        """
        s = self.indices.size
        mu = as_codes("mu", mu)
        d = mu.shape[1]
        if mu.shape[0] != s:
            raise ValueError(f"mu must hold the {s} sampled points, got shape {mu.shape}")
        if self._mu and d != self._mu[0].shape[1]:
            raise ValueError(f"mu has {d} dimensions but earlier epochs had {self._mu[0].shape[1]}")
        if self._epochs and not epoch > self._epochs[-1]:
            raise ValueError(f"epoch must increase: got {epoch} after {self._epochs[-1]}")
        if kl_per_dim is not None:
            kl = np.asarray(kl_per_dim, dtype=np.float64)
            if kl.shape != (d,) or not np.isfinite(kl).all():
                raise ValueError(f"kl_per_dim must be {d} finite numbers, got shape {kl.shape}")
        elif logvar is not None:
            kl = mean_kl_per_dim(mu, as_codes("logvar", logvar, d))
        else:
            raise ValueError("record needs logvar (to compute the KL per dimension) or kl_per_dim")
        self._epochs.append(int(epoch))
        self._mu.append(mu.astype(np.float32))
        self._kl.append(kl.astype(np.float32))

    @property
    def epochs(self) -> np.ndarray:
        """(E,) int64."""
        return np.asarray(self._epochs, dtype=np.int64)

    @property
    def mu(self) -> np.ndarray:
        """(E, S, D) float32."""
        return np.stack(self._mu) if self._mu else np.zeros((0, self.indices.size, 0), np.float32)

    @property
    def kl_per_dim(self) -> np.ndarray:
        """(E, D) float32."""
        return np.stack(self._kl) if self._kl else np.zeros((0, 0), np.float32)

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/epoch_codes.npz`` atomically (temp file, then os.replace); returns its path."""
        if not self._epochs:
            raise ValueError("no epoch recorded yet; record at least one epoch before saving")
        out = Path(run_dir) / FILE_NAME
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, indices=self.indices, epochs=self.epochs, mu=self.mu, kl_per_dim=self.kl_per_dim)
                f.flush()
                os.fsync(f.fileno())  # the data on disk before the rename makes it visible
            follow_umask(tmp)  # mkstemp's 0600 -> 0644 under umask 022, as a plain create gives
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return out

    @classmethod
    def from_arrays(cls, indices: Any, epochs: Any, mu: Any, kl_per_dim: Any) -> "EpochCodes":
        """Rebuild from the four arrays of the file, checked like ``record`` checks each epoch."""
        codes = cls(indices)
        mu, kl = np.asarray(mu), np.asarray(kl_per_dim)
        epochs = np.asarray(epochs)
        if mu.ndim != 3 or kl.ndim != 2 or epochs.shape != (mu.shape[0],) or kl.shape[0] != mu.shape[0]:
            raise ValueError(f"epochs {epochs.shape}, mu {mu.shape} and kl_per_dim {kl.shape} disagree "
                             "(need (E,), (E, S, D) and (E, D))")
        if mu.shape[0] == 0:
            raise ValueError("no epoch recorded (E = 0)")
        for e, m, k in zip(epochs.tolist(), mu, kl):
            codes.record(e, m, kl_per_dim=k)
        return codes


class CodeRecorder:
    """Records the codes of a fixed sample after every epoch of `fit`: pass it as (part of) `progress`.

    model: the VAE being trained (not a DistributedDataParallel wrapper: only rank 0 records, and it
    encodes outside the steps); x: the sampled images (S, C, H, W), in the order of `indices` (a
    tensor, or lazy `Images` of a large file, encoded a batch at a time).
    Encoding runs in eval mode under inference_mode and draws no random numbers, so recording changes
    nothing in the training it watches. ``record(0)`` before `fit` keeps the initial weights' codes.
    """

    def __init__(self, model: Any, x: Any, indices: Any):
        self.codes = EpochCodes(indices)
        if int(x.shape[0]) != self.codes.indices.size:
            raise ValueError(f"x holds {int(x.shape[0])} images but indices name {self.codes.indices.size}")
        self.model = model
        self.x = x.to(next(model.parameters()).device)  # (S, C, H, W), on the model's device once

    def record(self, epoch: int) -> None:
        """Encode the sample with the model's weights as they are now, as epoch `epoch`."""
        import torch

        from ..data.lazy import batches

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                # (S, D) each; a sample over the data budget's batch size (large images) in pieces
                parts = [self.model.encode(xb) for xb in batches(self.x)]
        finally:
            self.model.train(was_training)
        mu, logvar = (torch.cat([p[i].float().cpu() for p in parts]) for i in (0, 1))
        self.codes.record(epoch, mu.numpy(), logvar.numpy())

    def __call__(self, event: Any) -> bool:
        if event.what == "epoch":
            self.record(int(event.info.get("epoch", event.done)))
        return False  # a recorder never stops training

    def save(self, run_dir: str | Path) -> Path:
        return self.codes.save(run_dir)


def load_epoch_codes(run_dir: str | Path) -> EpochCodes | None:
    """The run's recorded epochs, or None when the run has no ``epoch_codes.npz``.

    Refused with one sentence (a ValueError; a limit's names its setting): a file over
    max_file_mb; a member missing, of the wrong dtype or number of axes, or whose header declares
    more epochs, sample points or dimensions than the budgets allow (checked from the header,
    before its data is read); shapes that disagree; values that are not finite.
    """
    # Imported here: vae_core.data pulls in the dataset machinery, which a run without the file never needs.
    from ..data.files.arrays import npy_header, read_npy_data
    from ..data.files.zips import member_errors, open_zip

    path = Path(run_dir) / FILE_NAME
    if not path.is_file():
        return None
    check_bytes(f"{FILE_NAME} of {Path(run_dir).name}", path.stat().st_size, "max_file_mb")
    arrays: dict[str, np.ndarray] = {}
    with open_zip(path) as zf:
        members = {i.filename: i for i in zf.infolist()}
        for name, axes in _AXES.items():
            what = f"{path.name}: member '{name}'"
            info = members.get(f"{name}.npy")
            if info is None:
                raise ValueError(f"{path.name} has no array '{name}'; it is not an epoch-codes file, or is damaged")
            with member_errors(what), zf.open(info) as f:
                shape, fortran, dtype = npy_header(f, what, info.file_size)
                _check_header(what, shape, dtype, axes, _KINDS[name])
                arrays[name] = read_npy_data(f, shape, fortran, dtype, what)
    try:
        return EpochCodes.from_arrays(**arrays)
    except ValueError as e:
        raise ValueError(f"{path.name} cannot be used: {e}") from None


def _check_header(what: str, shape: tuple[int, ...], dtype: np.dtype, axes: str, kinds: str) -> None:
    """A member's declared shape and dtype, before its data exists: its axes, each within its budget.

    Raises DataError (the zip reader's error context passes those through as they are).
    """
    from ..data.errors import DataError, _check

    if len(shape) != len(axes) or dtype.kind not in kinds:
        kind = "integers" if "i" in kinds else "floats"
        raise DataError(f"{what} must be {len(axes)}-D {kind}, its header says {dtype} of shape {shape}")
    for axis, size in zip(axes, shape):
        if axis == "S" and size > MAX_SAMPLE:
            raise DataError(f"{what} declares {size:,} sample points, more than the {MAX_SAMPLE:,} ever recorded; "
                             "the file is corrupt")
        if axis == "E":
            _check(f"{what}: its number of epochs", size, "max_epochs")
        if axis == "D":
            _check(f"{what}: its number of latent dimensions", size, "max_latent")


def fixed_pca_basis(final_mu: Any) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D PCA basis of the final epoch's codes (S, D): mean (D,) and components (2, D), float64.

    Principal axes by numpy SVD of the centred codes (`vae_core.maps.map_arrays.PCA`, scikit-learn's
    sign convention: each axis's largest loading positive). Rows are orthonormal; with D = 1 (or
    one point) the missing axis is a row of zeros, so its coordinate is 0.
    """
    x = as_codes("final_mu", final_mu)
    k = min(2, x.shape[0], x.shape[1])
    pca = PCA(k).fit(x)
    components = np.zeros((2, x.shape[1]))
    components[:k] = pca.components_
    return pca.mean_, components


def project_epochs(epoch_mu: Any, basis: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Every epoch's codes (E, S, D) on one fixed basis (mean, components): (E, S, 2) float32.

    coords[e, i] = (epoch_mu[e, i] - mean) @ components.T; the same basis for every epoch (from
    ``fixed_pca_basis`` of the last), so frames are comparable.
    """
    mean, components = (np.asarray(b, dtype=np.float64) for b in basis)
    m = np.asarray(epoch_mu, dtype=np.float64)
    if m.ndim != 3 or mean.shape != (m.shape[2],) or components.shape != (2, m.shape[2]):
        raise ValueError(f"epoch_mu (E, S, D) {m.shape} does not match the basis: mean {mean.shape}, "
                         f"components {components.shape}")
    return ((m - mean) @ components.T).astype(np.float32)
