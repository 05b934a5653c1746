"""The ELBO and the importance-weighted bound L_k (Burda et al. 2016), on the same k samples.

Per data point x, with z_i ~ q(z|x), i = 1..k, and log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x):
- iwae(x) = logsumexp_i log w_i - log k  (L_k; tends to log p(x) as k grows)
- elbo(x) = mean_i log w_i                (the k-sample Monte Carlo ELBO = L_1 averaged)
- kl(x)   = closed-form KL(q(z|x) || N(0, I)), summed over dims
- recon_nll(x) = -elbo(x) - kl(x): an unbiased estimate of -E_q log p(x|z) from the same k samples
  (its expectation is (recon + KL) - KL), exact when q is the true posterior.
So elbo = -(recon_nll + kl) holds exactly and iwae >= elbo holds per point by Jensen's inequality.
All are nats per data point; the report gives their means over the evaluation points.
Memory stays bounded whatever N and k: the k x N samples are never decoded at once. Points go in
noise blocks (`noise_batch`: batch_size points, fewer when k x B x D noise values would pass
NOISE_ELEMENTS), each drawing its (k, B, D) noise at once, so the samples depend only on the
generator, batch_size, k and D, never on how the work is chunked; each block is decoded in chunks
of at most `max_rows` images (default `row_limit`: ROW_ELEMENTS output values per call, so a
64x64 conv decoder's activations stay in the hundreds of MB), over samples and over points. The
per-point logsumexp over the k samples is accumulated across chunks (`_LogSumExp`).

Standard errors: each figure is a mean over N points of per-point values (elbo(x), recon_nll(x),
kl(x), iwae(x) = the per-point L_k); its standard error is sd(per-point values, ddof=1) / sqrt(N).

Gaussian decoders: every figure is computed from the squared error SSE summed over pixels, so it
can be rescored at another scale without decoding again; which scale a model is scored with
(declared, trained or calibrated) is `gaussian_scale`'s to say.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..data import Dataset
from ..losses import kl_per_dim
from ..models import VAE
from ._common import check_batch_size, check_posterior, encode_all, model_device, std_error
from .gaussian_scale import LOG_2PI, calibrated_scale, decoder_scale, gaussian_log_px, own_log_scale

MAX_ROWS = 10_000  # images decoded per call, at most (small images)
ROW_ELEMENTS = 1 << 19  # output values (images x pixels) of one decode call by default: 2 MB of float32
#   (128 images of 64x64, 668 of 28x28); a model's activations are a multiple of its output (a
#   VanillaVAE-like decoder: 32 channels at full resolution, ~100 MB per layer at 128 images)
NOISE_ELEMENTS = 1 << 22  # k x B x D noise values drawn at once per block of points (16 MB)
STORE_BUDGET = 1 << 23  # k * N float64 values kept per array to rescore a Gaussian decoder (64 MB);
#                         past it the samples are drawn again from the same generator state


@dataclass(frozen=True)
class Bounds:
    """Means over the data, nats per point: elbo = -(recon_nll + kl) and iwae >= elbo.

    `*_se`: standard errors over points (NaN for one point). For a Gaussian decoder,
    `gaussian_scale` is the s the figures used and `gaussian_scale_source` says where it came from.
    """

    elbo: float
    recon_nll: float
    kl: float
    iwae: float
    k: int
    elbo_se: float = float("nan")
    recon_nll_se: float = float("nan")
    kl_se: float = float("nan")
    iwae_se: float = float("nan")
    gaussian_scale: float | None = None
    gaussian_scale_source: str | None = None


def check_k(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"iwae_k must be >= 1, got {k!r}")
    return int(k)


def row_limit(n_pixels: int, max_rows: int | None = None) -> int:
    """Images per decode call: max_rows when given, else as many as fit ROW_ELEMENTS (at most MAX_ROWS)."""
    if max_rows is not None:
        return max(1, int(max_rows))
    return max(1, min(MAX_ROWS, ROW_ELEMENTS // max(1, int(n_pixels))))


def noise_batch(batch_size: int, k: int, d: int) -> int:
    """Points per noise block: batch_size, fewer when k x B x D noise values would pass NOISE_ELEMENTS."""
    return max(1, min(int(batch_size), NOISE_ELEMENTS // max(1, k * d)))


def _sub_blocks(b: int, k: int, rows: int):
    """(k0, k1, p0, p1): a (k, b) block of samples x points in pieces of at most `rows` images,
    samples outer (a whole block of points per piece when it fits, else `rows` points of one sample)."""
    kc, pc = (max(1, min(k, rows // b)), b) if rows >= b else (1, rows)
    for k0 in range(0, k, kc):
        for p0 in range(0, b, pc):
            yield k0, min(k, k0 + kc), p0, min(b, p0 + pc)


class _LogSumExp:
    """Per-point logsumexp over samples, accumulated over chunks: add(p0, p1, v) with v (kc, p1 - p0)."""

    def __init__(self, n: int, device: torch.device | str = "cpu"):
        self.m = torch.full((n,), -math.inf, dtype=torch.float64, device=device)  # running max
        self.s = torch.zeros(n, dtype=torch.float64, device=device)  # sum of exp(v - m)

    def add(self, p0: int, p1: int, v: torch.Tensor) -> None:
        m_old = self.m[p0:p1]
        m_new = torch.maximum(m_old, v.amax(0))  # amax: max(0).values is slow on a (1, B) tensor
        shift = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))
        self.s[p0:p1] = self.s[p0:p1] * torch.exp(m_old - shift) + torch.exp(v - shift).sum(0)
        self.m[p0:p1] = m_new

    def result(self) -> torch.Tensor:
        shift = torch.where(torch.isfinite(self.m), self.m, torch.zeros_like(self.m))
        return shift + torch.log(self.s)


def _gaussian_sse(model: Any, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """sum over pixels of (x_b - f(z_sb))^2 for x (B, C, H, W), z (S, B, D) -> (S, B), float64."""
    s, b, d = z.shape
    mean = model.decode(z.reshape(s * b, d)).reshape(s, b, -1)  # (S, B, P)
    if mean.shape[-1] != x[0].numel():
        raise ValueError(f"decode(z) gave {mean.shape[-1]} values per image, the data has {x[0].numel()}")
    return (x.reshape(1, b, -1).double() - mean.double()).pow(2).sum(-1)


def _log_px_given_z(model: Any, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x_b|z_sb) for x (B, C, H, W) and z (S, B, D) -> (S, B), summed over pixels."""
    s, b, d = z.shape
    if isinstance(model, VAE) and model.likelihood == "bernoulli":
        # BCE with logits = softplus(l) - x * l (exactly `losses.bernoulli_nll`); the x * l sum is a
        # batched dot product, so x is never copied S times and one (S*B, P) temporary is saved
        logits = model.decode_logits(z.reshape(s * b, d)).reshape(s, b, -1)  # (S, B, P)
        return torch.einsum("sbp,bp->sb", logits, x.reshape(b, -1).to(logits.dtype)) - F.softplus(logits).sum(-1)
    xr = x.unsqueeze(0).expand(s, *x.shape).reshape(s * b, *x.shape[1:])  # (S*B, C, H, W)
    return -model.nll(xr, z.reshape(s * b, d)).view(s, b)


@torch.inference_mode()
def _log_weights(model: Any, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int, *,
                 generator: torch.Generator | None = None, max_rows: int | None = None) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x): x (B, C, H, W) -> (k, B)."""
    log_px_z, log_ratio, _ = log_weight_parts(model, x, mu, logvar, k, generator=generator, max_rows=max_rows)
    return log_px_z + log_ratio


def _chunk_parts(model: Any, x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor, logvar_sum: torch.Tensor,
                 eps: torch.Tensor, own_log_s: float | None,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One chunk: x (p, C, H, W), mu/std (p, D), logvar_sum (p,), eps (kc, p, D) -> (log p(x|z),
    log p(z) - log q(z|x), SSE or None), each (kc, p) float64; own_log_s is None for a Bernoulli decoder."""
    d = mu.shape[1]
    z = mu + std * eps  # (kc, p, D)
    if own_log_s is not None:
        sse = _gaussian_sse(model, x, z)
        log_px = gaussian_log_px(sse, int(x[0].numel()), own_log_s)
    else:
        sse, log_px = None, _log_px_given_z(model, x, z).double()
    log_pz = -0.5 * (z.double() ** 2).sum(-1) - 0.5 * d * LOG_2PI
    log_qz = -0.5 * (eps.double() ** 2).sum(-1) - 0.5 * logvar_sum - 0.5 * d * LOG_2PI
    return log_px, log_pz - log_qz, sse


@torch.inference_mode()
def log_weight_parts(model: Any, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int, *,
                      generator: torch.Generator | None = None, max_rows: int | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(log p(x|z_i) at the model's own scale, log p(z_i) - log q(z_i|x), SSE or None), each (k, B)
    float64; SSE (the squared error summed over pixels) for a Gaussian decoder only. The (k, B, D)
    noise is drawn at once, so the result does not depend on max_rows (images per decode call)."""
    check_posterior(mu, logvar)
    b, d = mu.shape
    k = check_k(k)
    rows = row_limit(x[0].numel(), max_rows)
    eps_all = torch.randn(k, b, d, generator=generator, device=mu.device, dtype=mu.dtype)
    gaussian = str(getattr(model, "likelihood", "bernoulli")) == "gaussian"
    own_log_s = own_log_scale(model) if gaussian else None
    std, lv_sum = (0.5 * logvar).exp(), logvar.double().sum(-1)
    log_px = torch.empty(k, b, dtype=torch.float64, device=mu.device)
    ratio = torch.empty(k, b, dtype=torch.float64, device=mu.device)
    sse = torch.empty(k, b, dtype=torch.float64, device=mu.device) if gaussian else None
    for k0, k1, p0, p1 in _sub_blocks(b, k, rows):
        lp, r, e = _chunk_parts(model, x[p0:p1], mu[p0:p1], std[p0:p1], lv_sum[p0:p1], eps_all[k0:k1, p0:p1],
                                own_log_s)
        log_px[k0:k1, p0:p1], ratio[k0:k1, p0:p1] = lp, r
        if sse is not None:
            sse[k0:k1, p0:p1] = e
    return log_px, ratio, sse


def _weight_chunks(model: Any, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int, *,
                   generator: torch.Generator | None, batch_size: int, rows: int,
                   stop: Callable[[int], bool] | None = None):
    """Yield (p0, p1, k0, log p(x|z), log-prior ratio, SSE or None) over every point of x (N, ...):
    points p0:p1, samples k0:k0 + kc, each array (kc, p1 - p0) float64. Noise blocks of `noise_batch`
    points are drawn in order from generator, each decoded in pieces of at most `rows` images.
    stop(points done) is asked after each whole block: True ends the walk there (the points done are
    then exactly the first ones, each with all its k samples)."""
    n, d = mu.shape
    nb = noise_batch(batch_size, k, d)
    gaussian = str(getattr(model, "likelihood", "bernoulli")) == "gaussian"
    own_log_s = own_log_scale(model) if gaussian else None
    for s in range(0, n, nb):
        mb, lb = mu[s:s + nb], logvar[s:s + nb]
        b = mb.shape[0]
        eps = torch.randn(k, b, d, generator=generator, device=mu.device, dtype=mu.dtype)
        std, lv_sum = (0.5 * lb).exp(), lb.double().sum(-1)
        for k0, k1, p0, p1 in _sub_blocks(b, k, rows):
            yield (s + p0, s + p1, k0, *_chunk_parts(model, x[s + p0:s + p1], mb[p0:p1], std[p0:p1], lv_sum[p0:p1],
                                                 eps[k0:k1, p0:p1], own_log_s))
        if stop is not None and s + b < n and stop(s + b):
            return


def _bounds_core(model: Any, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int, *,
                 generator: torch.Generator | None = None,
                 max_rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per point (B,), float64: (iwae L_k, elbo = mean_i log w_i, closed-form kl)."""
    log_w = _log_weights(model, x, mu, logvar, k, generator=generator, max_rows=max_rows)  # (k, B)
    elbo = log_w.mean(0)
    iwae = torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
    iwae = torch.maximum(iwae, elbo)  # Jensen makes this hold; guards only float rounding
    kl = kl_per_dim(mu.double(), logvar.double()).sum(1)
    return iwae, elbo, kl


def elbo_terms(elbo_mean: float, kl: float) -> tuple[float, float]:
    """(recon_nll, elbo) from the mean Monte Carlo ELBO and the mean KL: recon_nll = -elbo - kl, and
    the elbo recomputed from the two so that elbo = -(recon_nll + kl) holds exactly in floats."""
    recon = -elbo_mean - kl
    return recon, -(recon + kl)


def _summarise(iwae: torch.Tensor, elbo: torch.Tensor, kl: torch.Tensor, k: int) -> Bounds:
    """Means over points, arranged so elbo = -(recon_nll + kl) holds exactly in floats, with SEs."""
    kl_m = float(kl.mean())
    recon, elbo_m = elbo_terms(float(elbo.mean()), kl_m)
    return Bounds(elbo=elbo_m, recon_nll=recon, kl=kl_m, iwae=max(float(iwae.mean()), elbo_m), k=k,
                  elbo_se=std_error(elbo), recon_nll_se=std_error(-elbo - kl), kl_se=std_error(kl),
                  iwae_se=std_error(iwae))


@dataclass(frozen=True)
class PointBounds:
    """Per-point values (N,), float64, for every evaluation point.

    iwae/elbo/kl at the model's own decoder (for a Gaussian, at its own log_scale); for a Gaussian
    decoder also iwae_cal/elbo_cal at the calibrated scale `calibrated_scale`.
    """

    iwae: torch.Tensor
    elbo: torch.Tensor
    kl: torch.Tensor
    k: int
    n_pixels: int
    own_scale: float | None = None  # exp(log_scale) of a Gaussian decoder
    calibrated_scale: float | None = None
    iwae_cal: torch.Tensor | None = None
    elbo_cal: torch.Tensor | None = None
    redrawn: bool = False  # the calibrated IWAE drew the samples a second time (over STORE_BUDGET)

    def summary(self, calibrated: bool = False) -> Bounds:
        """Bounds at the model's own scale, or at the calibrated one (Gaussian decoders)."""
        if not calibrated:
            return _summarise(self.iwae, self.elbo, self.kl, self.k)
        if self.elbo_cal is None:
            raise ValueError("calibrated bounds exist for Gaussian decoders only")
        return _summarise(self.iwae_cal, self.elbo_cal, self.kl, self.k)


class _Sums:
    """Per-point sums over the k samples of every point, accumulated chunk by chunk (`add`): the
    logsumexp and the sum of log w; for a Gaussian decoder also the squared errors and log-prior
    ratios summed per point and over everything, and, when `keep`, every sample's (k, N)."""

    def __init__(self, n: int, k: int, gaussian: bool, keep: bool, device: torch.device):
        f64 = dict(dtype=torch.float64, device=device)
        self.lse, self.sum_lw = _LogSumExp(n, device), torch.zeros(n, **f64)
        self.sse_pt, self.ratio_pt = (torch.zeros(n, **f64), torch.zeros(n, **f64)) if gaussian else (None, None)
        self.sse_all, self.ratio_all = (torch.empty(k, n, **f64), torch.empty(k, n, **f64)) if keep else (None, None)
        self.sse_sum = 0.0

    def truncate(self, n: int) -> None:
        """Keep the first n points (a stop after a whole block: they have all their samples)."""
        self.lse.m, self.lse.s, self.sum_lw = self.lse.m[:n], self.lse.s[:n], self.sum_lw[:n]
        if self.sse_pt is not None:
            self.sse_pt, self.ratio_pt = self.sse_pt[:n], self.ratio_pt[:n]
        if self.sse_all is not None:
            self.sse_all, self.ratio_all = self.sse_all[:, :n], self.ratio_all[:, :n]

    def add(self, p0: int, p1: int, k0: int, log_px: torch.Tensor, ratio: torch.Tensor,
            sse: torch.Tensor | None) -> None:
        """One chunk: points p0:p1, samples k0:k0 + kc, each array (kc, p1 - p0)."""
        kc = log_px.shape[0]
        log_w = log_px + ratio  # (kc, p)
        self.lse.add(p0, p1, log_w)
        self.sum_lw[p0:p1] += log_w.sum(0)
        if sse is not None:
            self.sse_sum += float(sse.sum())
            self.sse_pt[p0:p1] += sse.sum(0)
            self.ratio_pt[p0:p1] += ratio.sum(0)
            if self.sse_all is not None:
                self.sse_all[k0:k0 + kc, p0:p1], self.ratio_all[k0:k0 + kc, p0:p1] = sse, ratio


class _Ticks:
    """on_batch(fraction of the samples scored), called before each chunk of kc samples of p points."""

    def __init__(self, on_batch: Callable[[float], None] | None, total: int):
        self.on_batch, self.total, self.done = on_batch, total, 0

    def __call__(self, kc: int, p: int) -> None:
        if self.on_batch is not None:
            self.on_batch(self.done / self.total)
        self.done += kc * p


@torch.inference_mode()
def point_bounds(model: Any, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, k: int, *,
                  batch_size: int = 500, generator: torch.Generator | None = None, max_rows: int | None = None,
                  store_budget: int = STORE_BUDGET, on_batch: Callable[[float], None] | None = None,
                  stop: Callable[[int], bool] | None = None) -> PointBounds:
    """Per-point bounds of every point of x (N, C, H, W) with its posterior (mu, logvar) (N, D).

    Points go in noise blocks of `noise_batch(batch_size, k, D)`; each draws its k samples from
    `generator` in turn, so the result depends only on the generator's state, batch_size, k and D;
    each block is decoded in pieces of at most `max_rows` images (default `row_limit`), and every
    per-point sum (the logsumexp over samples included) is accumulated across the pieces. For a
    Gaussian decoder, the calibrated scale needs every point's squared errors first: the (k, N)
    squared errors and log-prior ratios are kept when k * N <= store_budget, else the same samples
    are drawn again from a copy of the generator's starting state. on_batch(fraction done) is
    called before each piece.

    stop(points done), asked after each noise block but the last, may end the work early (a time
    budget): the result then holds the first n' points only, each with all its k samples, so the
    figures are exact for those points (unbiased for the whole when the points are in a random
    order); a Gaussian decoder's calibrated scale and second pass use those n' points.
    """
    k = check_k(k)
    batch_size = check_batch_size(batch_size)
    n, n_pixels = x.shape[0], int(x[0].numel())
    rows = row_limit(n_pixels, max_rows)
    gaussian = str(getattr(model, "likelihood", "bernoulli")) == "gaussian"
    if gaussian and generator is None:  # a second pass must see the same samples
        generator = torch.Generator(device=mu.device).manual_seed(int(torch.randint(2 ** 62, ()).item()))
    start = generator.get_state() if gaussian else None
    keep = gaussian and k * n <= store_budget
    ticks = _Ticks(on_batch, (2 if gaussian and not keep else 1) * k * n)
    sums = _Sums(n, k, gaussian, keep, mu.device)
    done = [n]

    def stop_at(m: int) -> bool:
        if stop(m):
            done[0] = m
            return True
        return False

    for p0, p1, k0, log_px, ratio, sse in _weight_chunks(model, x, mu, logvar, k, generator=generator,
                                                         batch_size=batch_size, rows=rows,
                                                         stop=None if stop is None else stop_at):
        ticks(log_px.shape[0], p1 - p0)
        sums.add(p0, p1, k0, log_px, ratio, sse)
    if done[0] < n:  # stopped early: keep the first points, which have all their samples
        n = done[0]
        x, mu, logvar = x[:n], mu[:n], logvar[:n]
        sums.truncate(n)
        ticks.total = ticks.done + (k * n if gaussian and not keep else 0)  # what is left: the second pass
    elbo = sums.sum_lw / k
    iwae = torch.maximum(sums.lse.result() - math.log(k), elbo)  # max: float rounding only
    kl = kl_per_dim(mu.double(), logvar.double()).sum(1)
    out = dict(iwae=iwae.cpu(), elbo=elbo.cpu(), kl=kl.cpu(), k=k, n_pixels=n_pixels)
    if not gaussian:
        return PointBounds(**out)
    scale = calibrated_scale(sums.sse_sum, k * n * n_pixels)
    log_s = math.log(scale)
    # elbo is linear in SSE: the per-point means suffice
    elbo_cal = gaussian_log_px(sums.sse_pt / k, n_pixels, log_s) + sums.ratio_pt / k
    if keep:
        log_w = gaussian_log_px(sums.sse_all, n_pixels, log_s) + sums.ratio_all  # (k, N)
        iwae_cal = torch.logsumexp(log_w, 0) - math.log(k)
    else:
        again = torch.Generator(device=mu.device)
        again.set_state(start)
        lse_cal = _LogSumExp(n, mu.device)
        for p0, p1, _, _, ratio, sse in _weight_chunks(model, x, mu, logvar, k, generator=again,
                                                       batch_size=batch_size, rows=rows):
            ticks(sse.shape[0], p1 - p0)
            lse_cal.add(p0, p1, gaussian_log_px(sse, n_pixels, log_s) + ratio)
        iwae_cal = lse_cal.result() - math.log(k)
    return PointBounds(**out, own_scale=math.exp(own_log_scale(model)), calibrated_scale=scale,
                       iwae_cal=torch.maximum(iwae_cal, elbo_cal).cpu(), elbo_cal=elbo_cal.cpu(), redrawn=not keep)


def log_likelihood_bounds(model: Any, data: Dataset, *, k: int = 100, batch_size: int = 500,
                          seed: int = 0) -> Bounds:
    """ELBO, its two terms and IWAE L_k of `model` on all of `data`, with standard errors.

    A Gaussian decoder is scored at its declared or trained scale, or, when it declares none,
    at the calibrated scale (see the module docstring); the Bounds say which.
    """
    k = check_k(k)
    batch_size = check_batch_size(batch_size)
    dev = model_device(model)
    x = data.x.to(dev)
    gen = torch.Generator(device=dev).manual_seed(seed)
    with torch.inference_mode():
        mu, logvar = encode_all(model, x, batch_size)
        pts = point_bounds(model, x, mu, logvar, k, batch_size=batch_size, generator=gen)
    scale, source, _ = decoder_scale(model)
    if source is None:
        return pts.summary()
    if source == "calibrated":
        b, scale = pts.summary(calibrated=True), pts.calibrated_scale
    else:
        b = pts.summary()
    return replace(b, gaussian_scale=scale, gaussian_scale_source=source)
