"""What the linear-Gaussian theory predicts for a VAE, from the data's covariance spectrum.

docs/science.md, "Theory checks": a linear VAE with a Gaussian decoder of fixed variance sigma^2
(Tipping & Bishop 1999; Lucas et al. 2019) keeps latent direction i active if and only if
lambda_i > beta sigma^2, where lambda_i are the eigenvalues of the data covariance in the model's
input space (flattened pixels); an active direction carries KL 0.5 log(lambda_i / (beta sigma^2))
nats, a collapsed one 0. These are predictions under the model's assumptions (a linear encoder and
decoder, isotropic Gaussian noise), to show beside the measurements, never verdicts.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

EXACT_UP_TO = 1024  # pixels P up to which the whole spectrum is computed (eigh of the P x P covariance)
TOP_K = 64  # eigenvalues kept above that (randomized SVD)
MAX_POINTS = 5000  # points the spectrum is computed on (a seeded sample of them beyond)
MAX_POINTS_TOP_K = 2000  # the same above EXACT_UP_TO pixels (2,000 x 4,096 float64: 66 MB)
_CHUNK = 1000  # rows cast to float64 at a time


def linear_prediction(spectrum: Sequence[float], sigma2: float, beta: float = 1.0) -> dict:
    """The linear VAE's optimum for data with covariance eigenvalues `spectrum` and a Gaussian
    decoder of variance sigma2, with the KL weighted by beta.

    Returns {"active": #{i: lambda_i > beta sigma2}, "kl_per_dim_pred": 0.5 log(lambda_i / (beta
    sigma2)) per active direction, largest eigenvalue first, "threshold": beta sigma2}.
    """
    lam = np.sort(np.asarray(spectrum, dtype=np.float64).ravel())[::-1]
    if not (math.isfinite(sigma2) and sigma2 > 0):
        raise ValueError(f"sigma2 must be a positive number, got {sigma2!r}")
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a positive number, got {beta!r}")
    if not np.all(np.isfinite(lam)):
        raise ValueError("the spectrum must be finite")
    thr = float(beta) * float(sigma2)
    act = lam[lam > thr]
    return {"active": int(len(act)), "kl_per_dim_pred": [0.5 * math.log(v / thr) for v in act.tolist()],
            "threshold": thr}


def data_spectrum(x, *, max_points: int = MAX_POINTS, top_k: int = TOP_K, seed: int = 0) -> np.ndarray:
    """Eigenvalues (descending, float64) of the covariance of x over points (population covariance,
    1/N), in the model's input space: each item flattened to its P pixels.

    x: an array or tensor (N, ...) (a Dataset's x, an `Images` included: only sliced). At most
    `max_points` points are used (a seeded sample beyond). P <= EXACT_UP_TO: all P eigenvalues, by
    eigh of the covariance; above: the largest `top_k`, by scikit-learn's randomized SVD of the
    centred data (squared singular values / N), on at most MAX_POINTS_TOP_K points.
    """
    n = int(x.shape[0])
    if math.prod(int(v) for v in x.shape[1:]) > EXACT_UP_TO:
        max_points = min(max_points, MAX_POINTS_TOP_K)
    if n < 2:
        raise ValueError(f"the spectrum needs at least 2 points, got {n}")
    idx = np.arange(n) if n <= max_points else np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
    rows = []
    for i in range(0, len(idx), _CHUNK):
        part = x[_index(x, idx[i:i + _CHUNK])]
        part = part.detach().cpu().numpy() if hasattr(part, "detach") else np.asarray(part)
        rows.append(part.reshape(len(part), -1).astype(np.float64))
    a = np.concatenate(rows)
    a -= a.mean(0)
    m, p = a.shape
    if p <= EXACT_UP_TO:
        cov = a.T @ a / m
        return np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)
    from sklearn.utils.extmath import randomized_svd

    k = min(top_k, m, p)
    _, s, _ = randomized_svd(a, n_components=k, n_iter=7, random_state=seed)
    return np.sort(s ** 2 / m)[::-1]


def _index(x, idx: np.ndarray):
    """Rows idx of x: a contiguous slice where they are consecutive (an `Images` reads those at once)."""
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    import torch

    return torch.from_numpy(idx) if isinstance(x, torch.Tensor) else idx


__all__ = ["EXACT_UP_TO", "MAX_POINTS", "MAX_POINTS_TOP_K", "TOP_K", "data_spectrum", "linear_prediction"]
