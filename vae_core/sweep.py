"""β sweeps: runs identical but for β, and what they show about collapse (docs/science.md, "β sweeps").

A sweep directory OUT holds one normal run directory per β, OUT/beta-<β> (`beta_dirname`), and
OUT/sweep.json (`write_sweep_json`): {"kind": "beta_sweep", "betas": [...], "runs": [{"beta", "dir",
"status"}], "dataset", "created"}, rewritten (atomically) as each run finishes, so a sweep stopped
midway still names the runs it has. `python -m vae_core sweep` and the Train page write them.

`measure_run` scores one run on its own held-out points: each latent's KL (nats, mean over points,
as Diagnose's KL per dimension) and the data's principal direction each latent's mean follows.
`cascade` turns a sweep's measurements into: the β at which each latent collapses (KL below
`collapse.KL_THRESHOLD`, the Diagnose vocabulary's threshold, at that β and every larger one), the
order of collapse beside the spectrum's order, and the linear theory's predicted number of active
units per β (direction i active iff λ_i > β σ²) beside the measured number.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

SWEEP_FILE = "sweep.json"
KIND = "beta_sweep"
MAX_POINTS = 2000  # held-out points a run is scored on
N_DIRECTIONS = 16  # principal directions a latent's mean is matched against


def parse_betas(text: str | Sequence[float]) -> tuple[float, ...]:
    """'0.25,0.5,1' -> (0.25, 0.5, 1.0), sorted; each β finite and > 0, at least two, no two with the
    same directory name."""
    items = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    try:
        betas = [float(t) for t in items if t != ""]
    except ValueError:
        raise ValueError(f"--beta takes comma-separated numbers, like 0.25,0.5,1,2,4,8; got {text!r}") from None
    bad = [b for b in betas if not (math.isfinite(b) and b > 0)]
    if bad:
        raise ValueError(f"every β of a sweep must be a number > 0, got {bad[0]!r}")
    betas = sorted(betas)
    if len(betas) < 2:
        raise ValueError(f"a sweep needs at least two values of β, got {len(betas)}")
    names = [beta_dirname(b) for b in betas]
    if len(set(names)) != len(names):
        raise ValueError(f"two values of β are the same: {text!r}")
    return tuple(betas)


def beta_dirname(beta: float) -> str:
    """The run directory of β inside a sweep: beta-0.25, beta-1, beta-8."""
    return f"beta-{float(beta):g}"


def write_sweep_json(out: str | Path, betas: Sequence[float], status: dict[float, str], *, dataset: str,
                     created: str | None = None) -> Path:
    """Write OUT/sweep.json atomically; status[β] is 'pending', 'running', 'done', 'stopped' (saved,
    stopped early), 'failed' or 'cancelled'."""
    out = Path(out)
    path = out / SWEEP_FILE
    prev = read_sweep(out) if path.exists() else {}
    doc = {"kind": KIND, "betas": [float(b) for b in betas],
           "runs": [{"beta": float(b), "dir": beta_dirname(b), "status": status.get(b, "pending")} for b in betas],
           "dataset": dataset,
           "created": created or prev.get("created") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    tmp = out / f".{SWEEP_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_sweep(out: str | Path) -> dict[str, Any]:
    """OUT/sweep.json, checked; ValueError when it is missing or not a sweep."""
    path = Path(out) / SWEEP_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable sweep file: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND or not isinstance(doc.get("runs"), list):
        raise ValueError(f"{path} is not a β sweep (kind {KIND!r} with a list of runs)")
    return doc


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def list_sweeps(root: str | Path = "runs") -> list[Path]:
    """Sweep directories directly under root, sorted by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_sweep_dir(p)) \
        if root.is_dir() else []


def finished_runs(out: str | Path) -> list[tuple[float, Path]]:
    """(β, run directory) of the sweep's runs that were saved, by β."""
    from .runs.run_load import is_run_dir

    doc = read_sweep(out)
    runs = [(float(r["beta"]), Path(out) / r["dir"]) for r in doc["runs"]]
    return sorted((b, p) for b, p in runs if is_run_dir(p))


# ------------------------------------------------------------------------------------ measuring
def match_directions(mu: np.ndarray, x: np.ndarray, n_directions: int = N_DIRECTIONS,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For each latent mean mu_j (columns of mu, (N, D)): the index (0 = largest eigenvalue) of the
    principal direction of x (N, P, flattened) whose projection it correlates with most, and that
    |correlation|. Principal directions by scikit-learn's PCA of x (randomized above 1,024 pixels)."""
    from sklearn.decomposition import PCA

    x = x.reshape(len(x), -1).astype(np.float64)
    k = int(min(n_directions, x.shape[1], len(x) - 1))
    proj = PCA(n_components=k, svd_solver="auto", random_state=seed).fit_transform(x)
    mu = np.asarray(mu, dtype=np.float64)
    mc, pc = mu - mu.mean(0), proj - proj.mean(0)
    den = np.outer(np.linalg.norm(mc, axis=0), np.linalg.norm(pc, axis=0))
    corr = np.abs(mc.T @ pc) / np.where(den > 0, den, np.inf)  # (D, k); a constant mean: 0
    return corr.argmax(1), corr.max(1)


def measure_run(run: str | Path, *, max_points: int = MAX_POINTS, batch_size: int = 500) -> dict[str, Any]:
    """One run of a sweep on (up to max_points of) its own held-out points: {"beta", "kl_per_dim" (D,),
    "direction" (D,), "direction_corr" (D,), "sigma2" (the Gaussian decoder's variance s², None for
    Bernoulli), "spectrum" (the held-out points' covariance eigenvalues, descending), "n_points"}."""
    import torch

    from .data import load_dataset
    from .metrics._common import encode_all
    from .metrics.collapse import collapse_stats
    from .metrics.theory import data_spectrum
    from .runs.run_load import eval_split, load_run

    r = load_run(run)
    model = r.model if hasattr(r, "model") else r
    split = eval_split(run)
    data = load_dataset(split.dataset, n=split.n, seed=split.seed)
    _, ev = data.split(split.eval_fraction, split.seed)
    m = min(len(ev), max_points)
    ev = ev.subset(np.sort(np.random.default_rng(0).choice(len(ev), m, replace=False)))
    with torch.inference_mode():
        mu, lv = encode_all(model, ev.x, batch_size)
    kl = collapse_stats(mu, lv).kl_per_dim
    x = ev.x.reshape(m, -1).numpy()
    direction, corr = match_directions(mu.numpy(), x)
    sigma2 = float(torch.exp(2 * model.log_scale).item()) if model.likelihood == "gaussian" else None
    return {"beta": float(r.config["train"]["beta"]), "kl_per_dim": np.asarray(kl, dtype=np.float64),
            "direction": direction, "direction_corr": corr, "sigma2": sigma2,
            "spectrum": data_spectrum(x), "n_points": m}


def measure_sweep(out: str | Path, **kw: Any) -> list[dict[str, Any]]:
    """measure_run for each saved run of the sweep, by β."""
    return [measure_run(p, **kw) for _, p in finished_runs(out)]


# ------------------------------------------------------------------------------------- cascade
def collapse_betas(betas: Sequence[float], kl: np.ndarray, threshold: float | None = None) -> list[float | None]:
    """Per latent j (columns of kl, (B, D), rows by ascending β): the smallest β of the sweep from
    which KL_j stays below the threshold (collapse.KL_THRESHOLD), None when it is active at the
    largest β."""
    from .metrics.collapse import KL_THRESHOLD

    thr = KL_THRESHOLD if threshold is None else threshold
    kl = np.asarray(kl, dtype=np.float64)
    out: list[float | None] = []
    for j in range(kl.shape[1]):
        low = kl[:, j] < thr
        if not low[-1]:
            out.append(None)
            continue
        i = len(low) - 1
        while i > 0 and low[i - 1]:
            i -= 1
        out.append(float(betas[i]))
    return out


def cascade(measured: Sequence[dict[str, Any]], threshold: float | None = None) -> dict[str, Any]:
    """What a sweep shows (docs/science.md, "β sweeps"), from measure_run's dicts (any order).

    Returns {"betas", "kl" (B, D), "collapse_beta" (D,: None = active at every β), "active_measured"
    (B,), "active_predicted" (B,: None without a Gaussian decoder), "threshold" (nats),
    "direction_kl" (B, number of eigenvalues: the KL of the active latents following each principal
    direction), "order": the principal directions the smallest β uses, in the order they collapse
    (first first; never last), each {"direction" (0 = largest eigenvalue), "collapse_beta" (from
    which β on no active latent follows it; None: never within the sweep), "eigenvalue",
    "predicted_beta" (λ / σ², the β above which the linear theory says it collapses)},
    "spectrum_order" (True when a direction that collapses at a smaller β always has a smaller
    eigenvalue than one that collapses later or never; None when none collapses), "sigma2",
    "spectrum"}. Directions, not latent indices, carry the order: across runs a different latent can
    take up the same direction."""
    from .metrics.collapse import KL_THRESHOLD
    from .metrics.theory import linear_prediction

    thr = KL_THRESHOLD if threshold is None else threshold
    runs = sorted(measured, key=lambda r: r["beta"])
    betas = [float(r["beta"]) for r in runs]
    kl = np.stack([np.asarray(r["kl_per_dim"], dtype=np.float64) for r in runs])
    d = kl.shape[1]
    cb = collapse_betas(betas, kl, thr)
    spectrum = np.asarray(runs[0]["spectrum"], dtype=np.float64)
    s2 = [r.get("sigma2") for r in runs]
    sigma2 = float(np.median(s2)) if all(v is not None for v in s2) else None
    predicted = None if sigma2 is None else [
        min(linear_prediction(spectrum, r["sigma2"], r["beta"])["active"], d) for r in runs]
    # By direction, not by latent: a latent's index is arbitrary, and across runs a different latent can
    # take up the same direction. A direction is carried at a beta when an active latent (KL_j >= thr)
    # follows it; its KL there is the sum over those latents.
    dir_kl = np.zeros((len(runs), len(spectrum)))
    for b, r in enumerate(runs):
        for j in range(d):
            i = int(r["direction"][j])
            if kl[b, j] >= thr and i < len(spectrum):
                dir_kl[b, i] += kl[b, j]
    carried = np.flatnonzero(dir_kl[0] > 0)  # the directions the smallest beta uses
    dcb = collapse_betas(betas, dir_kl[:, carried], threshold=1e-300) if len(carried) else []
    order = [{"direction": int(i), "collapse_beta": c, "eigenvalue": float(spectrum[i]),
              "predicted_beta": None if sigma2 is None else float(spectrum[i]) / sigma2}
             for i, c in zip(carried, dcb)]
    order.sort(key=lambda o: (math.inf if o["collapse_beta"] is None else o["collapse_beta"], -o["direction"]))
    # a direction that collapses at a smaller beta must have a smaller eigenvalue (a larger index) than
    # one that collapses later or never
    ranked = [(math.inf if o["collapse_beta"] is None else o["collapse_beta"], o["direction"]) for o in order]
    pairs = [(a, b) for a in ranked for b in ranked if a[0] < b[0]]
    same_order = None if not pairs else bool(all(a[1] > b[1] for a, b in pairs))
    return {"betas": betas, "kl": kl, "collapse_beta": cb, "threshold": thr, "direction_kl": dir_kl,
            "active_measured": [int(v) for v in (kl >= thr).sum(1)], "active_predicted": predicted,
            "order": order, "spectrum_order": same_order, "sigma2": sigma2, "spectrum": spectrum}


__all__ = ["KIND", "SWEEP_FILE", "beta_dirname", "cascade", "collapse_betas", "finished_runs", "is_sweep_dir",
           "list_sweeps", "match_directions", "measure_run", "measure_sweep", "parse_betas", "read_sweep",
           "write_sweep_json"]
