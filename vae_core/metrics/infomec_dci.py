"""InfoMEC (Hsu et al. 2023) and DCI (Eastwood & Williams 2018): disentanglement scores beside MIG,
on latent means and ground-truth factors (docs/science.md, "Disentanglement: MIG, InfoMEC, DCI").

InfoMEC, as in the authors' code (Hsu et al. 2023, "Disentanglement via Latent Quantization"):
  - NMI[k, j] = I(f_k; z_j) / H(f_k): the k-NN estimate of the mutual information between factor k
    and latent j (scikit-learn's mutual_info_classif, Kraskov-style with 10 neighbours, on the
    standardised latent), over the factor's plug-in entropy (sklearn.metrics.mutual_info_score).
  - Inactive latents are pruned first: latent j is kept when its range (max - min over the points)
    exceeds 1/20 of the largest range.
  - InfoM = (mean_j max_k NMI[k, j] / sum_k NMI[k, j] - 1/K) / (1 - 1/K), over kept latents:
    each latent about one factor (modularity);
  - InfoC = (mean_k max_j NMI[k, j] / sum_j NMI[k, j] - 1/D') / (1 - 1/D'), D' kept latents: each
    factor in one latent (compactness);
  - InfoE = mean_k (H_0 - H_1) / H_0, H_1 the log-loss of a multinomial logistic regression from
    all latents (standardised) to factor k, H_0 that of the same regression from nothing (the
    factor's class frequencies): how much of the factor the code makes linearly predictable.
DCI, as in disentanglement_lib (scikit-learn's random forest in place of its gradient boosting:
one multiclass forest per factor instead of one boosted tree per class and stage, 40 classes for
sprites' orientation):
  - R[j, k] = the impurity importance of latent j in a classifier from all latents to factor k,
    trained on half the points;
  - D = sum_j rho_j (1 - H_K(R[j, :] / sum_k R[j, k])), rho_j = sum_k R[j, k] / sum R, H_K the
    entropy in base K (latents without importance carry no weight);
  - C = mean_k (1 - H_D(R[:, k] / sum_j R[j, k])), base D;
  - I = mean_k accuracy of the classifier on the other half of the points.
Standard errors: half-samples (delete-d jackknife with d = N/2, Shao & Wu 1989): each score again on
`resamples` random halves of the points; SE = sqrt(mean of squared deviations from their mean). Not
the bootstrap: a bootstrap sample repeats points, and a repeated point is its own nearest
neighbour, which inflates k-NN mutual information.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

MAX_POINTS = 400  # points the scores use (a seeded sample beyond): k-NN MI and forests grow with N
RESAMPLES = 4  # half-samples for the standard errors
N_NEIGHBORS = 10  # Hsu et al.'s k for the k-NN mutual information
RANGE_FRACTION = 1 / 20  # InfoMEC's pruning: a latent whose range is below this share of the largest
N_TREES = 30  # the DCI forest
MIN_POINTS = 20  # fewer points (or half-samples): no score (None), rather than estimator noise
KEYS = ("infom", "infoc", "infoe", "dci_d", "dci_c", "dci_i")


@dataclass(frozen=True)
class Disentanglement:
    """InfoM, InfoC, InfoE, DCI's D, C and I, each with its standard error; the matrices behind them."""

    scores: dict[str, float | None]  # KEYS -> value (None where undefined)
    se: dict[str, float | None]  # KEYS -> standard error over half-samples
    nmi: np.ndarray  # (K, D) I(f_k; z_j) / H(f_k)
    active: np.ndarray  # (D,) bool: latents InfoMEC kept
    importance: np.ndarray  # (D, K) DCI's R
    n_points: int
    resamples: int
    skipped: list[int] = field(default_factory=list)  # factors taking one value only

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: self.scores[k] for k in KEYS}
        out.update({f"{k}_se": self.se[k] for k in KEYS})
        out["disentanglement_detail"] = {
            "nmi": self.nmi.tolist(), "infomec_active_latents": [int(j) for j in np.flatnonzero(self.active)],
            "dci_importance": self.importance.tolist(), "points": self.n_points, "resamples": self.resamples,
            "skipped_factors": list(self.skipped),
            "standard_errors": f"half-samples: each score on {self.resamples} random halves of the "
                               f"{self.n_points} points; SE = sqrt(mean squared deviation) (delete-d jackknife, d = N/2)"}
        return out


# -------------------------------------------------------------------------------- from matrices
def infom_infoc(nmi: np.ndarray, active: np.ndarray | None = None) -> tuple[float | None, float | None]:
    """InfoM and InfoC from a (K, D) normalised MI matrix and the kept latents (all when None).

    InfoM needs K >= 2 factors, InfoC D' >= 2 kept latents (with one, the max over one entry is the
    whole sum and the normalisation divides by 0); a latent (or factor) whose NMI row sums to 0 is
    left out of the mean (its share is undefined)."""
    nmi = np.clip(np.asarray(nmi, dtype=np.float64), 0.0, None)
    if active is not None:
        nmi = nmi[:, np.asarray(active, dtype=bool)]
    k, d = nmi.shape

    def share(m: np.ndarray, axis: int) -> np.ndarray:
        tot = m.sum(axis)
        return m.max(axis)[tot > 0] / tot[tot > 0]

    infom = None
    if k >= 2 and d >= 1 and (s := share(nmi, 0)).size:
        infom = float((s.mean() - 1 / k) / (1 - 1 / k))
    infoc = None
    if d >= 2 and k >= 1 and (s := share(nmi, 1)).size:
        infoc = float((s.mean() - 1 / d) / (1 - 1 / d))
    return infom, infoc


def dci_from_importance(r: np.ndarray) -> tuple[float | None, float | None]:
    """DCI's disentanglement D and completeness C from the (D, K) importance matrix R (Eastwood &
    Williams 2018, as disentanglement_lib): entropies in base K (per latent) and base D (per factor)."""
    from scipy.stats import entropy

    r = np.clip(np.asarray(r, dtype=np.float64), 0.0, None)
    d, k = r.shape
    if r.sum() <= 0:
        return None, None
    dis = None
    if k >= 2:
        rows = r.sum(1) > 0
        per = 1.0 - entropy(r[rows].T, base=k)  # scipy normalises each column of its input
        rho = r[rows].sum(1) / r.sum()
        dis = float(np.sum(rho * per))
    comp = None
    if d >= 2:
        cols = r.sum(0) > 0
        comp = float(np.mean(1.0 - entropy(r[:, cols], base=d)))
    return dis, comp


# ------------------------------------------------------------------------------- the estimators
def _factor_codes(factors: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Each factor column as 0..n-1 labels (LabelEncoder); the indices of constant factors."""
    from sklearn.preprocessing import LabelEncoder

    f = np.stack([LabelEncoder().fit_transform(factors[:, i]) for i in range(factors.shape[1])], 1)
    return f, [i for i in range(f.shape[1]) if f[:, i].max() == 0]


def nmi_matrix(codes: np.ndarray, factors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(K, D) I(f_k; z_j) / H(f_k): k-NN MI (mutual_info_classif) over the plug-in factor entropy."""
    from sklearn.feature_selection import mutual_info_classif
    from sklearn.metrics import mutual_info_score
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(codes)
    out = np.zeros((factors.shape[1], z.shape[1]))
    for k in range(factors.shape[1]):
        h = mutual_info_score(factors[:, k], factors[:, k])
        if h <= 1e-12 or np.bincount(factors[:, k]).max() < 2:
            continue  # constant, or every value seen once: no neighbour within a class to measure
        mi = mutual_info_classif(z, factors[:, k], discrete_features=False, n_neighbors=N_NEIGHBORS,
                                 random_state=seed)
        out[k] = mi / h
    return out


def infoe(codes: np.ndarray, factors: np.ndarray) -> float | None:
    """InfoE: mean over factors of the normalised predictive information of a logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    z = StandardScaler().fit_transform(codes)
    vals = []
    for k in range(factors.shape[1]):
        y = factors[:, k]
        labels = np.unique(y)
        if len(labels) < 2:
            continue
        p0 = np.bincount(np.searchsorted(labels, y), minlength=len(labels)) / len(y)
        h0 = log_loss(y, np.tile(p0, (len(y), 1)), labels=labels)  # the null model: class frequencies
        clf = LogisticRegression(C=1e6, max_iter=300).fit(z, y)  # (almost) unpenalised, multinomial
        h1 = log_loss(y, clf.predict_proba(z), labels=labels)
        vals.append((h0 - h1) / h0)
    return float(np.mean(vals)) if vals else None


def dci_importance(codes: np.ndarray, factors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float | None]:
    """(D, K) impurity importances of a random forest per factor, trained on a seeded half of the points,
    and the mean held-out accuracy (DCI's informativeness)."""
    from sklearn.ensemble import RandomForestClassifier

    n, d = codes.shape
    perm = np.random.default_rng(seed).permutation(n)
    tr, te = perm[: n // 2], perm[n // 2:]
    r = np.zeros((d, factors.shape[1]))
    acc = []
    for k in range(factors.shape[1]):
        y = factors[:, k]
        if len(np.unique(y[tr])) < 2:
            continue
        clf = RandomForestClassifier(n_estimators=N_TREES, max_features=None, min_samples_leaf=2,
                                     random_state=seed, n_jobs=1)  # every latent at every split, as boosting
        clf.fit(codes[tr], y[tr])
        r[:, k] = clf.feature_importances_
        acc.append(float(clf.score(codes[te], y[te])))
    return r, (float(np.mean(acc)) if acc else None)


def _scores(codes: np.ndarray, factors: np.ndarray, seed: int) -> tuple[dict[str, float | None], np.ndarray,
                                                                       np.ndarray, np.ndarray]:
    ranges = codes.max(0) - codes.min(0)
    active = ranges > RANGE_FRACTION * ranges.max() if ranges.max() > 0 else np.zeros(len(ranges), bool)
    used = [k for k in range(factors.shape[1]) if factors[:, k].max() > 0]
    f = factors[:, used]
    nmi = np.zeros((factors.shape[1], codes.shape[1]))
    nmi[used] = nmi_matrix(codes, f, seed)
    m, c = infom_infoc(nmi[used], active) if active.any() else (None, None)
    r = np.zeros((codes.shape[1], factors.shape[1]))
    r[:, used], inf = dci_importance(codes, f, seed)
    dd, dc = dci_from_importance(r[:, used])
    e = infoe(codes[:, active], f) if active.any() else None
    return {"infom": m, "infoc": c, "infoe": e, "dci_d": dd, "dci_c": dc, "dci_i": inf}, nmi, active, r


def disentanglement(codes: Any, factors: Any, *, max_points: int = MAX_POINTS, resamples: int = RESAMPLES,
                    seed: int = 0, go_on: Callable[[float], bool] | None = None) -> Disentanglement:
    """InfoM, InfoC, InfoE and DCI (D, C, I) of latent means `codes` (N, D) against integer factors
    (N, K), each with its half-sample standard error; at most max_points points (seeded sample).

    go_on(seconds), when given (diagnose's time budget), is asked before each half-sample with the
    time the full scores took: a refusal stops the resampling there (`resamples` says how many ran;
    under 2, no standard errors)."""
    z = np.asarray(codes.detach().cpu().numpy() if hasattr(codes, "detach") else codes, dtype=np.float64)
    fac = np.asarray(factors)
    if z.ndim != 2 or fac.ndim != 2 or len(z) != len(fac):
        raise ValueError(f"codes (N, D) and factors (N, K) must have the same N, got {z.shape} and {fac.shape}")
    rng = np.random.default_rng(seed)
    if len(z) > max_points:
        idx = np.sort(rng.choice(len(z), max_points, replace=False))
        z, fac = z[idx], fac[idx]
    f, skipped = _factor_codes(fac)
    n = len(z)
    if n < MIN_POINTS:
        none = {k: None for k in KEYS}
        return Disentanglement(scores=none, se=dict(none), nmi=np.zeros((fac.shape[1], z.shape[1])),
                               active=np.zeros(z.shape[1], bool), importance=np.zeros((z.shape[1], fac.shape[1])),
                               n_points=n, resamples=0, skipped=skipped)
    t0 = time.perf_counter()
    scores, nmi, active, r = _scores(z, f, seed)
    took = time.perf_counter() - t0  # a half-sample takes at most about this
    reps: dict[str, list[float]] = {k: [] for k in KEYS}
    done = 0
    for b in range(resamples if n // 2 >= MIN_POINTS else 0):
        if go_on is not None and not go_on(took):
            break
        done += 1
        half = np.sort(rng.choice(n, n // 2, replace=False))
        s, *_ = _scores(z[half], _factor_codes(fac[half])[0], seed + 1 + b)
        for k in KEYS:
            if s[k] is not None:
                reps[k].append(s[k])
    se = {k: (float(np.sqrt(np.mean((np.array(v) - np.mean(v)) ** 2))) if len(v) >= 2 and scores[k] is not None
              else None) for k, v in reps.items()}
    return Disentanglement(scores=scores, se=se, nmi=nmi, active=active, importance=r, n_points=n,
                           resamples=done, skipped=skipped)


__all__ = ["Disentanglement", "KEYS", "dci_from_importance", "dci_importance", "disentanglement", "infoe",
           "infom_infoc", "nmi_matrix"]
