"""Posterior collapse, seen three ways, plus the decoder's own view (docs/science.md,
"Posterior collapse").

Rules, per latent dimension j, over the N evaluation points:
- KL_j = mean_x 0.5 * (mu_j^2 + sigma_j^2 - log sigma_j^2 - 1) (closed form; the dims sum to the KL).
- Activity (Burda et al. 2016): A_j = Var_x(mu_j(x)) with the *population* variance (ddof=0), and
  the unit is active when A_j > 0.01 (strict). He et al. 2019 use the unbiased variance and `>=`;
  with N in the hundreds the two differ by a factor N/(N-1) and rarely change the count.
- Posterior spread: mean_x sigma_j^2 > 0.8 means the dimension copies the prior (Asperti's practice).
- `collapsed_dims` are the dims with KL_j < 0.01 nats: a dim carrying (almost) no KL transmits
  (almost) no information about x, whatever its mean does. Each rule's own list is reported too,
  because under partial collapse the rules disagree.
- Decoder sensitivity: with every dim at its data mean, z_j is traversed over [-2, 2] (9 values);
  the sensitivity is the mean absolute pixel change |decode(z) - decode(z_mean)| over the 9 values
  and all pixels. It catches dims that carry KL but that the decoder ignores.

One vocabulary (`classify_dims`; every count and label of dimensions in the app and the report's
summary comes from it). Each dimension is in exactly one of three classes:
- **collapsed**: KL_j < 0.01 nats, whatever the other two views say. This is `collapsed_dims`.
- **partly collapsed**: KL_j >= 0.01 nats (it carries some information), but at least one of the
  other views says it behaves like the prior: its means barely move (Var(mu_j) <= 0.01, inactive)
  or each image's cloud stays prior-wide (mean sigma_j^2 > 0.8). This is where the views disagree.
- **active**: all three views agree the dim is used: KL_j >= 0.01, Var(mu_j) > 0.01 and
  mean sigma_j^2 <= 0.8.
So active + partly collapsed + collapsed = D. The report's `active_units` stays Burda's count
(Var(mu_j) > 0.01 alone): it can exceed the number of "active" dims, since a dim whose means move
but whose cloud is prior-wide counts there and is "partly collapsed" here. The decoder view is
not a class: a dim the decoder ignores keeps its class, and its verdict says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..data import Dataset
from ._common import as_numpy, check_posterior, encode_all, model_device

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016: active when Var_x(mu_j) > 0.01
KL_THRESHOLD = 0.01  # nats; collapsed when KL_j < this
PRIOR_SIGMA2_THRESHOLD = 0.8  # Asperti: mean sigma_j^2 above this = the dim copies the prior
TRAVERSAL = tuple(np.linspace(-2.0, 2.0, 9).tolist())  # values given to z_j for the sensitivity
IGNORED_FRACTION = 0.01  # a non-collapsed dim whose sensitivity is < 1% of the largest is "ignored"

ACTIVE, PARTLY_COLLAPSED, COLLAPSED = "active", "partly collapsed", "collapsed"
CLASSES = (ACTIVE, PARTLY_COLLAPSED, COLLAPSED)
CLASS_RULES = (
    f"**collapsed**: KL_j < {KL_THRESHOLD} nats, whatever the other views say: the dimension carries "
    f"(almost) no information. **partly collapsed**: KL_j >= {KL_THRESHOLD} nats, so it carries some "
    f"information, but its means barely move across images (Var(mu_j) <= {ACTIVE_THRESHOLD}) or each "
    f"image's cloud stays as wide as the prior (mean sigma_j^2 > {PRIOR_SIGMA2_THRESHOLD}): the views "
    f"disagree. **active**: all three views agree it is used (KL_j >= {KL_THRESHOLD}, Var(mu_j) > "
    f"{ACTIVE_THRESHOLD}, mean sigma_j^2 <= {PRIOR_SIGMA2_THRESHOLD}). Every dimension is in exactly one class.")
# Each class's rule in one line (the app's tooltips)
CLASS_HELP = {
    ACTIVE: f"All three views agree the dim is used: KL_j >= {KL_THRESHOLD} nats, Var_x(mu_j) > {ACTIVE_THRESHOLD} "
            f"and mean sigma_j^2 <= {PRIOR_SIGMA2_THRESHOLD}",
    PARTLY_COLLAPSED: f"KL_j >= {KL_THRESHOLD} nats, but its means barely move (Var_x(mu_j) <= {ACTIVE_THRESHOLD}) "
                      f"or its spread is prior-wide (mean sigma_j^2 > {PRIOR_SIGMA2_THRESHOLD}): the views disagree",
    COLLAPSED: f"KL_j < {KL_THRESHOLD} nats: the dim carries (almost) nothing",
}


def classify_dims(low_kl: Any, active: Any, prior_like: Any) -> list[str]:
    """The one collapse vocabulary: a class per dimension from the three views' flags, each (D,) bool.

    low_kl: KL_j < KL_THRESHOLD; active: Var_x(mu_j) > ACTIVE_THRESHOLD; prior_like:
    mean_x sigma_j^2 > PRIOR_SIGMA2_THRESHOLD. Returns, per dim, COLLAPSED when low_kl (whatever the
    other views say); else ACTIVE when active and not prior_like (all three views agree it is used);
    else PARTLY_COLLAPSED (it carries KL, but its means do not move or its spread is prior-wide).
    """
    low_kl, active, prior_like = (np.asarray(a, dtype=bool).reshape(-1) for a in (low_kl, active, prior_like))
    if not low_kl.shape == active.shape == prior_like.shape:
        raise ValueError(f"the three views need one flag per dimension, got {low_kl.shape}, {active.shape}, "
                         f"{prior_like.shape}")
    return [COLLAPSED if lo else (ACTIVE if a and not p else PARTLY_COLLAPSED)
            for lo, a, p in zip(low_kl, active, prior_like)]


def classify_values(kl_per_dim: Any, activity: Any, mean_sigma2: Any) -> list[str]:
    """`classify_dims` from the per-dimension values (nats, Var_x(mu_j), mean sigma_j^2), each (D,)."""
    kl, act, s2 = (np.asarray(v, dtype=float).reshape(-1) for v in (kl_per_dim, activity, mean_sigma2))
    return classify_dims(kl < KL_THRESHOLD, act > ACTIVE_THRESHOLD, s2 > PRIOR_SIGMA2_THRESHOLD)


def classify_index_lists(latent_dim: int, low_kl_dims: Any, active_dims: Any, prior_like_dims: Any) -> list[str]:
    """`classify_dims` from the index lists a report dict holds (its "collapse" part)."""
    def mask(idx: Any) -> np.ndarray:
        m = np.zeros(latent_dim, dtype=bool)
        m[np.asarray(list(idx), dtype=int)] = True
        return m
    return classify_dims(mask(low_kl_dims), mask(active_dims), mask(prior_like_dims))


def class_counts(classes: Any) -> dict[str, int]:
    """{class: number of dims} for the three classes, in the order of CLASSES (zeros included)."""
    classes = list(classes)
    return {c: classes.count(c) for c in CLASSES}


def dims_of(classes: Any, cls: str) -> list[int]:
    """The dims of one class, ascending."""
    return [j for j, c in enumerate(classes) if c == cls]


def counts_phrase(classes: Any) -> str:
    """"8 active, 8 partly collapsed, 0 collapsed": the counts as every page writes them."""
    n = class_counts(classes)
    return ", ".join(f"{n[c]} {c}" for c in CLASSES)


def verdicts(classes: Any, active: Any, prior_like: Any, decoder_ignored: Any = ()) -> list[str]:
    """Per dim: its class, then why in plain words ("partly collapsed: carries information, but its
    means barely move"). Each verdict starts with the class name; dims the decoder ignores say so."""
    active, prior_like = np.asarray(active, bool).reshape(-1), np.asarray(prior_like, bool).reshape(-1)
    ignored = set(int(j) for j in decoder_ignored)
    out = []
    for j, c in enumerate(classes):
        if c == COLLAPSED:
            if prior_like[j] and not active[j]:
                v = "collapsed: copies the prior"
            else:
                why = [w for w, on in (("its means still move", active[j]),
                                       ("its spread is narrower than the prior", not prior_like[j])) if on]
                v = "collapsed: no information, though " + " and ".join(why)
        elif c == PARTLY_COLLAPSED:
            why = [w for w, on in (("its means barely move", not active[j]),
                                   ("its spread is as wide as the prior", prior_like[j])) if on]
            v = "partly collapsed: carries information, but " + " and ".join(why)
        else:
            v = ACTIVE
        if j in ignored:
            v += ("; " if ":" in v else ": ") + "the decoder ignores it"
        out.append(v)
    return out


def _dims_text(dims: list[int], limit: int = 12) -> str:
    return ", ".join(map(str, dims[:limit])) + (f" and {len(dims) - limit} more" if len(dims) > limit else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class CollapseStats:
    """Per-dimension collapse statistics, each array (D,)."""

    kl_per_dim: np.ndarray  # mean_x KL_j, nats
    activity: np.ndarray  # Var_x(mu_j), population variance (ddof=0)
    mean_sigma2: np.ndarray  # mean_x sigma_j^2
    active: np.ndarray  # bool: activity > ACTIVE_THRESHOLD
    low_kl: np.ndarray  # bool: kl_per_dim < KL_THRESHOLD
    prior_like: np.ndarray  # bool: mean_sigma2 > PRIOR_SIGMA2_THRESHOLD
    sensitivity: np.ndarray | None = None  # mean |pixel change| under traversal; None if not computed

    @property
    def active_units(self) -> int:
        return int(self.active.sum())

    @property
    def collapsed_dims(self) -> list[int]:
        """Dims with KL_j < KL_THRESHOLD nats."""
        return [int(j) for j in np.flatnonzero(self.low_kl)]

    @property
    def inactive_dims(self) -> list[int]:
        return [int(j) for j in np.flatnonzero(~self.active)]

    @property
    def prior_like_dims(self) -> list[int]:
        return [int(j) for j in np.flatnonzero(self.prior_like)]

    @property
    def classes(self) -> list[str]:
        """One of "active", "partly collapsed", "collapsed" per dim (`classify_dims`)."""
        return classify_dims(self.low_kl, self.active, self.prior_like)

    @property
    def class_counts(self) -> dict[str, int]:
        return class_counts(self.classes)

    @property
    def partly_collapsed_dims(self) -> list[int]:
        """Dims with KL_j >= KL_THRESHOLD whose means do not move or whose spread is prior-wide."""
        return dims_of(self.classes, PARTLY_COLLAPSED)

    @property
    def verdicts(self) -> list[str]:
        """Per dim: its class and why, in plain words (`verdicts`)."""
        return verdicts(self.classes, self.active, self.prior_like, self.decoder_ignored_dims)

    def headline(self) -> list[str]:
        """The collapse sentences of the report summary, in the vocabulary of `classify_dims`."""
        cls, d = self.classes, len(self.kl_per_dim)
        col, part = dims_of(cls, COLLAPSED), dims_of(cls, PARTLY_COLLAPSED)
        s = [f"Of {d} latent dimensions: {counts_phrase(cls)}."]
        if col and len(col) == d:
            s.append(f"All {d} latent dimensions carry no information (posterior collapse): the model "
                     "ignores its latent code, so moving through the latent space changes nothing.")
        elif col:
            ins = self.insensitive
            heard = [j for j in col if ins is not None and not ins[j]]
            if heard:
                s.append(f"{len(col)} of {d} dimensions carry no information about the input (collapsed: KL "
                         f"below {KL_THRESHOLD} nats; dims {_dims_text(col)}), yet the decoder reacts to dims "
                         f"{_dims_text(heard)}: sampling them changes the image in ways unrelated to the data.")
            else:
                s.append(f"{len(col)} of {d} dimensions carry no information (collapsed: KL below {KL_THRESHOLD} "
                         f"nats; dims {_dims_text(col)})" + ("." if ins is None else
                                                           ": the decoder ignores them, and sampling them does nothing."))
        if part:
            s.append(f"{_plural(len(part), 'dimension')} (dims {_dims_text(part)}) "
                     f"{'is' if len(part) == 1 else 'are'} partly collapsed: "
                     f"{'it carries' if len(part) == 1 else 'they carry'} some information (KL above {KL_THRESHOLD}"
                     f" nats), yet the means barely move across images (Var(mu) <= {ACTIVE_THRESHOLD}) or each "
                     f"image's cloud stays as wide as the prior (sigma^2 > {PRIOR_SIGMA2_THRESHOLD}).")
        if not col and not part:
            s.append(f"All {d} dimensions are active: each carries information (KL above {KL_THRESHOLD} nats), "
                     "moves with the input and is narrower than the prior.")
        n_active = self.class_counts[ACTIVE]
        if self.active_units != n_active:
            s.append(f"(Burda's active-unit count, Var(mu) > {ACTIVE_THRESHOLD} alone, is {self.active_units}: "
                     "it also counts dims whose means move but that another view calls collapsed.)")
        return s

    @property
    def insensitive(self) -> np.ndarray | None:
        """bool (D,): sensitivity at most 1% of the largest one (None if not computed)."""
        if self.sensitivity is None:
            return None
        top = float(self.sensitivity.max()) if self.sensitivity.size else 0.0
        return self.sensitivity <= IGNORED_FRACTION * top

    @property
    def decoder_ignored_dims(self) -> list[int]:
        """Dims not collapsed by KL that the decoder barely reacts to (`insensitive`)."""
        ins = self.insensitive
        return [] if ins is None else [int(j) for j in np.flatnonzero(ins & ~self.low_kl)]


def collapse_stats(mu: Any, logvar: Any, sensitivity: np.ndarray | None = None, *,
                    active_threshold: float = ACTIVE_THRESHOLD, kl_threshold: float = KL_THRESHOLD,
                    sigma2_threshold: float = PRIOR_SIGMA2_THRESHOLD) -> CollapseStats:
    """The three collapse rules from posterior parameters mu, logvar (N, D)."""
    check_posterior(mu, logvar)
    mu_np = as_numpy(mu, "mu", 2)  # (N, D)
    logvar_np = as_numpy(logvar, "logvar", 2)  # (N, D)
    var = np.exp(logvar_np)
    kl = (0.5 * (mu_np ** 2 + var - logvar_np - 1.0)).mean(0)  # (D,) closed form, mean over x
    activity = mu_np.var(0, ddof=0)  # (D,) population variance, Burda et al.
    mean_sigma2 = var.mean(0)  # (D,)
    return CollapseStats(kl_per_dim=kl, activity=activity, mean_sigma2=mean_sigma2,
                         active=activity > active_threshold, low_kl=kl < kl_threshold,
                         prior_like=mean_sigma2 > sigma2_threshold, sensitivity=sensitivity)


@torch.inference_mode()
def decoder_sensitivity(decode: Callable[[torch.Tensor], torch.Tensor], z_mean: torch.Tensor,
                         values: tuple[float, ...] = TRAVERSAL, max_rows: int = 4096) -> np.ndarray:
    """Mean |decode(z) - decode(z_mean)| when z_j takes each of `values`, others at z_mean: (D,)."""
    z_mean = torch.as_tensor(z_mean).float().reshape(-1)  # (D,)
    d, v = z_mean.shape[0], len(values)
    if v < 1:
        raise ValueError("values must hold at least one traversal value")
    vals = torch.tensor(values, dtype=z_mean.dtype, device=z_mean.device)  # (V,)
    z = z_mean.repeat(d * v, 1)  # (D*V, D): row j*V + i has z_j = values[i]
    z.view(d, v, d)[torch.arange(d), :, torch.arange(d)] = vals
    z = torch.cat([z_mean[None], z])  # row 0 is the base point
    out = torch.cat([decode(z[s:s + max_rows]).float() for s in range(0, z.shape[0], max_rows)])
    base, trav = out[:1], out[1:]  # (1, C, H, W), (D*V, C, H, W)
    change = (trav - base).abs().flatten(1).mean(1)  # (D*V,)
    return change.view(d, v).mean(1).double().cpu().numpy()


def posterior_collapse(model: Any, data: Dataset, *, batch_size: int = 500) -> CollapseStats:
    """Collapse statistics and decoder sensitivity of `model` on all of `data`."""
    x = data.x.to(model_device(model))
    mu, logvar = encode_all(model, x, batch_size)
    sens = decoder_sensitivity(model.decode, mu.mean(0))
    return collapse_stats(mu, logvar, sens)
