"""Tools over a set of latent codes for the Explore map: nearest codes, selections and their
exports, attribute vectors (Latent Space Cartography). The map plane's layers (the decoded
manifold, density) are in `vae_core.maps.map_plane`.

Plain arrays in, plain arrays out: mu and logvar (N, D) are the encoder's means and log variances
(q(z|x) = N(mu, diag exp(logvar))), labels (N,) are optional class labels (ints or strings), a
mask is a boolean (N,) array. Nothing here decodes: functions return codes for the caller's
decoder (server or browser). Every function states the definition it computes, so the app can
say it in a sentence.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.spatial import cKDTree

from ..losses import mean_kl_per_dim
from .export import codes_csv
from .map_arrays import as_codes


# --- neighbours -------------------------------------------------------------------------------

class CodeNeighbours:
    """Exact Euclidean nearest neighbours among latent means mu (N, D), built once, asked per point.

    scipy's ``cKDTree``: it computes distances as sums of squared differences (exact to rounding,
    unlike the ``|a|^2 - 2ab + |b|^2`` expansion scikit-learn's brute force uses, which blurs ties)
    and its inclusive ball query finds every point tied with the k-th, so ties break by index
    exactly. Measured on 100,000 random codes (the 2-core machine): build 0.04 s (2-D), 0.08 s
    (16-D), 0.20 s (64-D); one query 0.2 ms, 6 ms, 21 ms, against 190 ms for a numpy pass over all
    codes at 64-D; memory is the tree's float64 copy of mu, never an N x N matrix; and it imports
    in a fraction of scikit-learn's 1.4 s. Build it once per (model, data) and keep it.
    """

    def __init__(self, mu: Any):
        self.mu = as_codes("mu", mu)  # (N, D) float64
        self.tree = cKDTree(self.mu)

    def query(self, index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """The k codes nearest to code `index`, itself excluded: indices (k,) int64 and distances (k,) float64.

        Nearest first; equal distances in increasing index order. Distance = Euclidean norm of
        mu_i - mu_index (on the means; sigma is not used).
        """
        n = self.mu.shape[0]
        index = _check_index(index, n)
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
            raise ValueError(f"k must be an integer in [1, {n - 1}] for {n} codes, got k={k!r}")
        x = self.mu[index]  # (D,)
        dist, _ = self.tree.query(x, k=k + 1)  # (k+1,): the point itself (or a duplicate) among them
        # Every code within the (k+1)-th distance (a hair more, for rounding) is a candidate; their
        # exact distances, sorted by (distance, index), settle ties the tree orders arbitrarily.
        radius = float(dist[-1]) * (1 + 1e-9) + 1e-300
        cand = np.asarray(self.tree.query_ball_point(x, radius), dtype=np.int64)
        cand = cand[cand != index]
        d = np.sqrt(((self.mu[cand] - x) ** 2).sum(axis=1))  # (M,)
        order = np.lexsort((cand, d))[:k]
        return cand[order], d[order]


def nearest_codes(mu: Any, index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest codes to mu[index] (Euclidean on mu, itself excluded, ties by index): (indices, distances).

    Builds a ``CodeNeighbours`` each call; keep one for repeated queries on the same codes.
    """
    return CodeNeighbours(mu).query(index, k)


def label_agreement(labels: Any, index: int, neighbour_indices: Any) -> int:
    """How many of the neighbours share the label of point `index`."""
    labels = np.asarray(labels)
    index = _check_index(index, labels.shape[0])
    nb = np.asarray(neighbour_indices, dtype=np.int64)
    return int((labels[nb] == labels[index]).sum())


def _check_index(index: Any, n: int) -> int:
    if not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise ValueError(f"index must be an integer in [0, {n - 1}], got {index!r}")
    return int(index)


# --- selections -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SelectionSummary:
    """What a selection of points holds (see ``selection_summary`` for the definitions)."""

    size: int
    label_counts: dict[Any, int]  # label -> count, most common first; empty without labels
    mean_code: np.ndarray  # (D,) float32: mean of mu over the selection, the code to decode
    kl_selected: np.ndarray  # (D,) float64, nats
    kl_rest: np.ndarray | None  # (D,) float64, nats; None when every point is selected
    indices: np.ndarray = field(repr=False)  # (size,) int64, the selected points in order


def _check_mask(mask: Any, n: int, name: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype != np.bool_ or m.shape != (n,):
        raise ValueError(f"{name} must be a boolean array of shape ({n},), got {m.dtype} {m.shape}")
    return m



def selection_summary(mu: Any, logvar: Any, labels: Any | None, mask: Any) -> SelectionSummary:
    """Size, label mix, mean code and KL per dimension of the points where mask is True, against the rest.

    kl_selected[j] = mean over selected x of KL_j(x); kl_rest[j] = the same over unselected x
    (KL_j closed form, ``mean_kl_per_dim``). A dimension the selection uses more than the rest has
    kl_selected[j] > kl_rest[j]. An empty selection is refused.
    """
    mu = as_codes("mu", mu)
    logvar = as_codes("logvar", logvar, mu.shape[1])
    n = mu.shape[0]
    if logvar.shape[0] != n:
        raise ValueError(f"logvar must have shape {mu.shape} like mu, got {logvar.shape}")
    m = _check_mask(mask, n)
    if not m.any():
        raise ValueError("the selection is empty; select points on the map with the box or lasso tool first")
    counts: dict[Any, int] = {}
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {lab.shape}")
        values, c = np.unique(lab[m], return_counts=True)
        order = np.lexsort((np.arange(len(c)), -c))  # most common first, then label order
        counts = {values[i].item(): int(c[i]) for i in order}
    return SelectionSummary(
        size=int(m.sum()),
        label_counts=counts,
        mean_code=mu[m].mean(axis=0).astype(np.float32),
        kl_selected=mean_kl_per_dim(mu[m], logvar[m]),
        kl_rest=mean_kl_per_dim(mu[~m], logvar[~m]) if not m.all() else None,
        indices=np.flatnonzero(m).astype(np.int64),
    )


def selection_csv(indices: Any, mu: Any, logvar: Any, labels: Any | None = None) -> str:
    """CSV of the selected rows: index (into the data), label (when given), mu_0.., sigma_0.. (6 significant digits).

    mu, logvar (N, D) and labels (N,) cover every point; indices (n,) pick the rows, in that order.
    sigma_j = exp(0.5 * logvar_j). The columns are those of the whole-data export
    (`vae_core.maps.export.codes_csv`), whose writer this is.
    """
    mu = np.asarray(mu)
    idx = _check_indices(indices, mu.shape[0])
    lab = None if labels is None else np.asarray(labels)[idx]
    return codes_csv(mu[idx], np.asarray(logvar)[idx], labels=lab, extra={"index": idx}).decode("utf-8")


def selection_npz(images: Any, indices: Any, labels: Any | None = None) -> bytes:
    """An .npz of the selected images: 'x' (n, C, H, W) as given (uint8 or float), 'indices' (n,), 'y' (n,) labels.

    ``images`` and ``labels`` are already the selected ones, in the order of ``indices``. Labels
    that are Python objects are stored as unicode strings, so ``np.load(..., allow_pickle=False)``
    reads every array; 'x' and 'y' are the names the app's own .npz upload reads.
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.dtype.kind not in "uif":
        raise ValueError(f"images must be a numeric (n, C, H, W) array, got {x.dtype} {x.shape}")
    idx = np.asarray(indices, dtype=np.int64)
    if idx.shape != (x.shape[0],):
        raise ValueError(f"indices must have shape ({x.shape[0]},) like images, got {idx.shape}")
    arrays = {"x": x, "indices": idx}
    if labels is not None:
        y = np.asarray(labels)
        if y.shape != idx.shape:
            raise ValueError(f"labels must have shape {idx.shape} like indices, got {y.shape}")
        arrays["y"] = y.astype(str) if y.dtype.hasobject else y
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _check_indices(indices: Any, n: int) -> np.ndarray:
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must lie in [0, {n - 1}], got values from {idx.min()} to {idx.max()}")
    return idx


# --- attribute vectors (Liu et al. 2019, "Latent Space Cartography") -------------------------

def group_mean(mu: Any, mask: Any, name: str = "the group") -> np.ndarray:
    """Mean of mu (N, D) over the points where mask is True: (D,) float64; an empty group is refused by name."""
    mu = as_codes("mu", mu)
    m = _check_mask(mask, mu.shape[0], f"the mask of {name}")
    if not m.any():
        raise ValueError(f"{name} has no points; choose a label, factor value or selection that holds some")
    return mu[m].mean(axis=0)


def attribute_vector(mu: Any, mask_a: Any, mask_b: Any) -> np.ndarray:
    """mean(mu over B) - mean(mu over A): (D,) float64, pointing from group A towards group B.

    Adding it to a code of A moves that code to where B's codes sit on average (strength 1
    moves A's mean exactly onto B's mean).
    """
    return group_mean(mu, mask_b, "group B") - group_mean(mu, mask_a, "group A")


def apply_vector(z: Any, v: Any, strength: float) -> np.ndarray:
    """z + strength * v, for a code z (D,) or codes (M, D) and a vector v (D,); float64."""
    z, v = np.asarray(z, dtype=np.float64), _check_vector(v)
    if z.shape[-1] != v.shape[0]:
        raise ValueError(f"z has {z.shape[-1]} dimensions but the vector has {v.shape[0]}")
    return z + float(strength) * v


def vector_strip(z: Any, v: Any, strengths: Sequence[float]) -> np.ndarray:
    """The codes z + s * v for each s in strengths: (S, D) float64, in the order given (a strip to decode)."""
    z, v = np.asarray(z, dtype=np.float64), _check_vector(v)
    if z.shape != v.shape:
        raise ValueError(f"z must be one code of shape {v.shape} like the vector, got {z.shape}")
    s = np.asarray(strengths, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"strengths must be a non-empty list of numbers, got shape {s.shape}")
    return z[None, :] + s[:, None] * v[None, :]


def vector_json(v: Any, meta: dict[str, Any] | None = None) -> str:
    """A vector as JSON: {"vector": [...], "dim": D, "norm": |v|, "definition": ..., **meta}.

    meta says where it came from (e.g. {"group_a": "label 1", "group_b": "label 7", "run": ...});
    numpy values in it are written as plain numbers and lists.
    """
    v = _check_vector(v)
    out = {"vector": v.tolist(), "dim": int(v.shape[0]), "norm": float(np.linalg.norm(v)),
           "definition": "mean latent code (mu) of group B minus that of group A; "
                         "z + strength * vector moves a code from A towards B"}
    out.update(meta or {})
    return json.dumps(out, indent=1, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"meta holds a {type(o).__name__}, which JSON cannot hold")


def _check_vector(v: Any) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1 or v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"the vector must be a non-empty 1-D array of finite numbers, got shape {v.shape}")
    return v
