"""Every `st.cache_resource` / `st.cache_data` of the app, keyed by stable ids, never by objects.

A model is keyed by (path, content fingerprint[, input shape]); a dataset by (id or path,
fingerprint). Cached models are shared by every session: eval mode, read-only, and every call
runs under `torch.inference_mode()`.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from vae_core import data as vdata
from vae_core.runs import run_load

from . import jobs
from .model_leases import Leases

if TYPE_CHECKING:  # imported where a map is made: scipy (0.6 s) is not on the app's start
    from vae_core.maps.projection import Projection
    from vae_core.metrics.pipeline.options import DiagnoseOptions

# torch and what imports it (vae_core.devices, .metrics, .models, explorer.images) are imported in the
# functions that use them: the sidebar and Home's picture from disk draw before torch loads (~2 s).


@dataclass(frozen=True)
class Source:
    """A model or dataset as a stable id: what it is and a hash of its content."""

    src: str
    fp: str


_HASH_UP_TO = 256 * 2**20  # bytes: a larger file (an .npy read in batches) is known by its size and time


@st.cache_data(show_spinner=False, max_entries=256)
def _fingerprint(path: str, mtime_ns: int, size: int) -> str:
    if size > _HASH_UP_TO:  # hashing would read it whole (a server-side data file, never an upload)
        return f"{size:x}-{mtime_ns:x}"
    return run_load.fingerprint(path)


def source(src: str) -> Source:
    """A Source for a run dir / model file / data file (content hash) or a built-in dataset id."""
    p = Path(src)
    if src in vdata.BUILTIN or not p.exists():
        return Source(src, src)
    st_ = (p / "model.safetensors").stat() if p.is_dir() else p.stat()
    return Source(src, _fingerprint(src, st_.st_mtime_ns, st_.st_size))


@st.cache_resource(show_spinner="Loading the model...", max_entries=16)
def model(m: Source, input_shape: tuple[int, int, int] | None):
    """The model (eval mode, shared by all sessions: never train or modify it).

    A run's model sits on the GPU when there is one; a user's model file runs in its sandboxed
    worker on the CPU. Callers move inputs to `devices.model_device(model)` and results back.
    """
    from vae_core import devices
    from vae_core.models import VAE

    out = _take_checked(m, input_shape) if input_shape is not None else None
    if out is None:
        out = run_load.load_model(m.src, input_shape)
    if callable(getattr(out, "close", None)):  # a user's model in its worker: stopped when no session holds m
        _leases().add(m, out)
    if isinstance(out, VAE):
        out.to(devices.resolve("auto"))
    out.eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out


CHECKED_KEPT = 4  # uploaded models loaded by their check and not yet paired with data, kept with their workers


@st.cache_resource
def _checked() -> tuple[threading.Lock, dict]:
    return threading.Lock(), {}  # Source -> a user's model that `check_model_file` loaded, in load order


def check_model_file(m: Source) -> None:
    """Load a user's model file (in its worker) as an upload's check: it raises what the file's refusal
    says. The loaded model waits for the pairing that follows: `model(m, shape)` takes it over and tries
    each data shape on its worker, instead of starting one worker per shape (1.3-2 s each)."""
    out = run_load.load_model(m.src, None)
    _leases().add(m, out)  # its worker stops when no session holds m
    lock, checked = _checked()
    with lock:
        checked.pop(m, None)
        checked[m] = out
        while len(checked) > CHECKED_KEPT:
            checked.pop(next(iter(checked))).close()


def _take_checked(m: Source, shape: tuple[int, int, int]):
    """The model `check_model_file` loaded for m, given `shape`; None when there is none, or when it declares
    another shape (loading says why). A shape it cannot take raises, and it waits for the next one."""
    lock, checked = _checked()
    with lock:
        out = checked.pop(m, None)
    if out is None:
        return None
    if out.input_shape is None:  # a file that declares no shape: probed on this one in its worker
        try:
            out.try_input_shape(shape)
            return out
        except Exception:
            _put_back(m, out)
            raise
    if tuple(out.input_shape) == tuple(shape):  # a zip's meta.json declares it
        return out
    _put_back(m, out)
    return None


def _put_back(m: Source, out) -> None:
    lock, checked = _checked()
    with lock:
        checked.setdefault(m, out)


@st.cache_resource
def _leases() -> Leases:
    return Leases()


@st.cache_resource
def _data_leases() -> Leases:
    # clearing a cache entry is quick and never waits for a call: done in the caller's thread
    return Leases(run=lambda fn: fn())


class _DataRelease:
    """Frees what the server keeps in memory for one uploaded data set: its cached arrays and the
    finished jobs computed on it (encodings, maps, reports). The files on disk stay."""

    def __init__(self, d: Source, keep: dict) -> None:
        self.d, self._keep = d, keep

    def close(self) -> None:
        self._keep.pop(self.d, None)  # registered again when a session picks the data again
        dataset.clear(self.d)
        jobs.forget(lambda key: self.d in key)


@st.cache_resource
def _data_releases() -> dict:
    return {}  # Source -> its _DataRelease, held strongly while the data may be in memory


def _session_end(lease: tuple[Leases, Leases, str]) -> None:
    models, data, session = lease
    models.end(session)
    data.end(session)


@st.cache_resource(scope="session", show_spinner=False, on_release=_session_end)
def _session_lease(session: str) -> tuple[Leases, Leases, str]:
    # cleared by Streamlit when the session disconnects, which calls on_release: the session let go
    return _leases(), _data_leases(), session


def is_upload(d: Source | None) -> bool:
    """True for data a user uploaded (kept in memory only while a session holds it)."""
    return d is not None and Path(d.src).resolve().is_relative_to(uploads_dir().resolve())


def hold_pair(m: Source | None, d: Source | None) -> None:
    """This session uses model m and data d now (every page calls it): a model worker no session holds
    is stopped, and an uploaded data set no session holds leaves the server's memory."""
    ctx = get_script_run_ctx()
    if ctx is None:  # outside a session (a script importing this module): nothing to hold
        return
    models, data, session = _session_lease(ctx.session_id)
    models.hold(session, m)
    if is_upload(d):
        releases = _data_releases()
        if d not in releases:
            releases[d] = _DataRelease(d, releases)
            data.add(d, releases[d])
        data.hold(session, d)
    else:
        data.hold(session, None)


@st.cache_resource(show_spinner="Loading the data...", max_entries=8)
def dataset(d: Source) -> vdata.Dataset:
    """The whole dataset (built-in id or a user's file), as float32 (N, C, H, W)."""
    return vdata.load_dataset(d.src, n=5000 if d.src == "sprites" else None, seed=0)


def model_for(m: Source, d: Source):
    """The model that fits dataset d: raises DataError/CheckpointError with a clear message if not."""
    import torch
    from vae_core import devices

    data = dataset(d)
    shape = None
    if not Path(m.src).is_dir():  # a model file may store no input shape: the data gives it
        shape = data.shape
    mdl = model(m, shape)
    vdata.check_fits(data, mdl.input_shape)
    try:
        with torch.inference_mode():
            mu, _ = mdl.encode(data.x[:2].to(devices.model_device(mdl)))
            out = mdl.decode(mu)
    except Exception as e:  # a user's TorchScript can fail in any way on this data
        raise vdata.DataError(f"the model could not encode/decode '{data.name}': {str(e).splitlines()[0]}") from None
    if tuple(out.shape[1:]) != data.shape:
        raise vdata.DataError(f"the model decodes to {tuple(out.shape[1:])}, the data is {data.shape}")
    return mdl


def batch_rows(shape: tuple[int, ...], max_values: int = 2**20) -> int:
    """Images per model call: 1000 of 28x28, fewer of larger images (a 64x64 conv decoder's activations
    for 1000 images took a user's model worker to about 2 GB)."""
    return max(1, min(1000, max_values // max(1, int(np.prod(shape)))))


@dataclass(frozen=True)
class Encoded:
    """Per-point results of encoding a dataset once (numpy, float32)."""

    mu: np.ndarray  # (N, D)
    logvar: np.ndarray  # (N, D)
    kl: np.ndarray  # (N,) KL(q(z|x) || p(z)) per point, nats
    recon_err: np.ndarray  # (N,) -log p(x | z = mu) per point, nats (Gaussian: at `scale`)
    kl_per_dim: np.ndarray  # (D,) mean over points
    scale: float | None = None  # the Gaussian decoder's scale s used for recon_err; None for Bernoulli
    scale_source: str | None = None  # "declared", "trained" or "calibrated" (as the diagnose report says)
    total: int | None = None  # set while encoding: these are the first len(mu) rows of `total` (see encode_all)

    def scale_words(self) -> str:
        """Which scale recon_err used, in words ("" for a Bernoulli decoder)."""
        if self.scale_source is None:
            return ""
        if self.scale_source == "calibrated":
            return (f"Gaussian decoder scored with its calibrated scale s = {self.scale:.4g}: it declares none, so "
                    "s^2 is the mean squared error, as Diagnose does (Rybkin et al. 2021; here at the mean code)")
        return f"Gaussian decoder scored with its {self.scale_source} scale s = {self.scale:.4g}, as Diagnose does"


ENCODED_FORMAT = 2  # bump when what `encode_all` stores changes: older files on disk are ignored


PARTIAL_EVERY_S = 2.0  # how often a running encoding refreshes its result so far (pages read it when they run)


def encode_all(mdl, data: vdata.Dataset, progress=None, partial=None) -> Encoded:
    """Encode every point once, in chunks, under inference_mode; `progress(fraction)` after each chunk.
    `partial(enc)`, when given, gets the result so far (the first rows, `enc.total` = all rows) after
    the first chunk and then every PARTIAL_EVERY_S seconds, so a page can draw before the end.

    recon_err is -log p(x | z = mu) per point. A Gaussian decoder is scored at the scale the diagnose
    report uses (docs: one scale everywhere): its declared or trained s, or, when it declares none, the
    calibrated s with s^2 = the mean squared error over every point and pixel (Rybkin et al. 2021; in
    a partial result, over the points so far).
    """
    import torch
    from vae_core import devices

    from vae_core.metrics.gaussian_scale import calibrated_scale, decoder_scale, gaussian_log_px

    scale, source, _ = decoder_scale(mdl)
    n_pixels = int(np.prod(data.shape))

    def assemble(mus: list, lvs: list, errs: list, total: int | None) -> Encoded:
        mu, lv, err = torch.cat(mus).float(), torch.cat(lvs).float(), torch.cat(errs)
        s = scale
        if source is not None:
            if source == "calibrated":
                s = calibrated_scale(float(err.sum()), len(err) * n_pixels)
            err = -gaussian_log_px(err, n_pixels, float(np.log(s)))
        kl_dims = 0.5 * (mu.pow(2) + lv.exp() - lv - 1.0)  # (N, D), docs/science.md closed form
        return Encoded(mu=mu.numpy(), logvar=lv.numpy(), kl=kl_dims.sum(1).numpy(), recon_err=err.float().numpy(),
                       kl_per_dim=kl_dims.mean(0).numpy(), scale=s, scale_source=source, total=total)

    mus, lvs, errs = [], [], []
    dev = devices.model_device(mdl)
    n, step = len(data), batch_rows(data.shape)
    last = None
    with torch.inference_mode():
        for i in range(0, n, step):
            xb = data.x[i:i + step].to(dev)
            mu, lv = mdl.encode(xb)
            mus.append(mu.cpu())
            lvs.append(lv.cpu())
            if source is None:  # Bernoulli: the model's own log-likelihood (from logits where it has them)
                errs.append(mdl.nll(xb, mu).cpu().double())
            else:  # Gaussian: the summed squared error (B,), scored below at the report's scale
                errs.append(((xb - mdl.decode(mu)).double() ** 2).flatten(1).sum(1).cpu())
            if progress is not None:
                progress(min(1.0, (i + step) / n))
            if partial is not None and i + step < n and (last is None or time.monotonic() - last >= PARTIAL_EVERY_S):
                partial(assemble(mus, lvs, errs, n))
                last = time.monotonic()
    return assemble(mus, lvs, errs, None)


def cache_dir(what: str) -> Path:
    """Where computed results are kept on disk by content (VAE_EXPLORER_CACHE, default ~/.cache/vae_explorer)."""
    d = Path(os.environ.get("VAE_EXPLORER_CACHE", Path.home() / ".cache" / "vae_explorer")) / what
    d.mkdir(parents=True, exist_ok=True)
    return d


def _encoded_path(m: Source, d: Source) -> Path:
    key = hashlib.sha256(f"{ENCODED_FORMAT}|{m.src}|{m.fp}|{d.src}|{d.fp}".encode()).hexdigest()[:24]
    return cache_dir("encoded") / f"{key}.npz"


def _load_encoded(path: Path) -> Encoded | None:
    """Our own file (plain arrays, no pickle); None when absent or unreadable (then it is computed again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            scale = float(z["scale"]) if z["scale"].size else None
            source = str(z["scale_source"]) or None
            return Encoded(mu=z["mu"], logvar=z["logvar"], kl=z["kl"], recon_err=z["recon_err"],
                           kl_per_dim=z["kl_per_dim"], scale=scale, scale_source=source)
    except (OSError, ValueError, KeyError):
        return None


def save_npz(path: Path, **arrays) -> None:
    """Plain arrays written to a temporary file, then renamed: a reader never sees half a file. A full or
    read-only disk only costs the next visit the work again, so an OSError leaves nothing behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def _save_encoded(path: Path, enc: Encoded) -> None:
    save_npz(path, mu=enc.mu, logvar=enc.logvar, kl=enc.kl, recon_err=enc.recon_err, kl_per_dim=enc.kl_per_dim,
             scale=np.array([] if enc.scale is None else enc.scale, dtype=np.float64),
             scale_source=np.array(enc.scale_source or ""))


def encoded_job(m: Source, d: Source) -> Job:
    """The encoding of data d by model m: from disk at once when this pair was encoded before (on this
    server, before a restart too), else on the job queue's encoding lane with progress, then kept on disk."""
    key = ("encode", m, d)
    q = jobs.queue("encode")
    job = q.peek(key)
    if job is not None and job.error is None:
        return job
    path = _encoded_path(m, d)
    enc = _load_encoded(path) if path.exists() else None
    if enc is not None:
        return q.put_done(key, "the encoding of the data", enc)
    mdl, data = model_for(m, d), dataset(d)

    def work(job: Job) -> Encoded:
        out = encode_all(mdl, data, progress=lambda f: job.report("encoding", f),
                         partial=lambda enc: setattr(job, "partial", enc))
        _save_encoded(path, out)
        return out

    return q.submit(key, "the encoding of the data", work)


def encoded(m: Source, d: Source) -> Encoded:
    """`encoded_job`'s result, waiting for it (pages wait through `widgets.job_result_ui` first)."""
    job = encoded_job(m, d)
    job.done.wait()
    if job.error is not None:
        raise vdata.DataError(job.error)
    return job.result


def decode(mdl, z: np.ndarray | list, scale: int = 1) -> np.ndarray:
    """z (B, D) -> uint8 images (B, H, W[, 3]), upscaled by `scale` (nearest)."""
    import torch
    from vae_core import devices
    from . import images

    with torch.inference_mode():
        z = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, mdl.latent_dim)
        x = mdl.decode(z.to(devices.model_device(mdl))).cpu()
    imgs = images.to_uint8(x)
    return np.stack([images.upscale(im, scale) for im in imgs]) if scale > 1 else imgs


# --- maps: PCA at once, t-SNE/UMAP on the server's job queue with progress ------------------------

Job = jobs.Job

MAP_PARAMS = {"pca": {}, "tsne": {"perplexity": 30.0}, "umap": {"n_neighbors": 15, "min_dist": 0.1}}


MAP_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}  # the methods' own names, for people
# What a map job is doing, from its Progress event (vae_core.maps.projection's phases)
MAP_PHASES = {"early_exaggeration": "t-SNE's first phase (early exaggeration), iteration {done} of {total}",
              "embedding": "t-SNE's main phase, iteration {done} of {total}",
              "umap_graph": "UMAP's nearest-neighbour graph and initial layout (it reports no progress "
                            "inside this stage)",
              "umap_epochs": "UMAP's layout, epoch {done} of {total}",
              "transform": "placing the points beyond the fit sample, {done:,} of {total:,}",
              "pca": "PCA"}


def map_phase(p: Any) -> str:
    """A map fit's Progress event in words: its stage and how far within it."""
    return MAP_PHASES.get(p.what, p.what).format(done=int(p.done), total=int(p.total))


def map_job(m: Source, d: Source, method: str, dims: int) -> Job:
    """The map of the encoded means: PCA computed now, t-SNE/UMAP queued on the job queue (`jobs`)."""
    if method == "pca":
        return _pca_job(m, d, dims)
    enc = encoded(m, d)
    labels = dataset(d).y

    def fit(job: Job) -> Projection:
        from vae_core.maps.projection import Projection

        return Projection(method, dims, seed=0, progress=lambda p: job.report(map_phase(p), p.fraction),
                          n_jobs=jobs.workers(), **MAP_PARAMS[method]).fit(enc.mu, labels)

    return jobs.queue().submit(("map", m, d, method, dims), f"the {MAP_NAMES[method]} map", fit)


@st.cache_resource(max_entries=32)
def _pca_job(m: Source, d: Source, dims: int) -> Job:
    from vae_core.maps.projection import Projection

    job = Job(key=("map", m, d, "pca", dims), what="the PCA map", phase="done", progress=1.0,
              result=Projection("pca", dims).fit(encoded(m, d).mu))
    job.done.set()
    return job


def linear_inverse(proj: Projection) -> tuple[np.ndarray, np.ndarray] | None:
    """For an exact (PCA) 2-D map: origin (D,) and axes (2, D) with z = origin + x*a0 + y*a1."""
    if not proj.inverse_is_exact or proj.n_components != 2:
        return None
    z, _ = proj.inverse(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    return z[0], np.stack([z[1] - z[0], z[2] - z[0]])


def uploads_dir() -> Path:
    """Where uploads are written, named by content hash (shared safely: same bytes, same file)."""
    d = Path(os.environ.get("VAE_EXPLORER_UPLOADS", Path.home() / ".cache" / "vae_explorer" / "uploads"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_choices() -> list[str]:
    """Run directories under runs/ (complete ones only: a half-written run is never listed)."""
    from .state import RUNS_DIR

    return [str(p) for p in run_load.list_runs(RUNS_DIR)]


_transform_lock = threading.Lock()  # openTSNE's transform re-centres the shared map in place


@st.cache_data(show_spinner=False, max_entries=64)
def posterior_on_map(m: Source, d: Source, method: str, dims: int, idx: int, _proj: Projection,
                     _samples: np.ndarray) -> np.ndarray:
    """Map positions (S, dims) of samples of q(z|x) for point idx (keyed by ids, not objects)."""
    with _transform_lock:
        return _proj.transform(_samples)


# --- diagnose report and blurriness images (Diagnose and Blurriness pages) ---------------------

def split_of(m: Source) -> run_load.EvalSplit:
    """(split seed, eval fraction, n, dataset) the model was trained with, so reports use its held-out points."""
    return run_load.eval_split(m.src)


@dataclass(frozen=True)
class BlurImages:
    """The report's evaluation images, their reconstructions, prior samples (uint8) and per-image sharpness."""

    originals: np.ndarray  # (N, H, W[, 3]) uint8: the evaluation points of `report`
    reconstructions: np.ndarray  # (N, H, W[, 3]) uint8: decode(mu(x))
    samples: np.ndarray  # (S, H, W[, 3]) uint8: decode(z), z ~ N(0, I)
    sharpness_ratio: np.ndarray  # (N,) Laplacian variance recon / original; NaN where the original is flat


def _blur_images(mdl, data: vdata.Dataset, split: run_load.EvalSplit, n_points: int, seed: int,
                 n_samples: int) -> BlurImages:
    import torch
    from vae_core import devices
    from vae_core import metrics
    from vae_core.metrics.pipeline.heldout import eval_points
    from . import images

    ev = eval_points(data, n_points, *split)
    dev = devices.model_device(mdl)
    with torch.inference_mode():
        step = batch_rows(ev.shape)
        recon = torch.cat([mdl.decode(mdl.encode(ev.x[i:i + step].to(dev))[0]).cpu()
                           for i in range(0, len(ev), step)]).float()
        # drawn on the CPU: the same samples whatever device the model is on
        z = torch.randn((n_samples, mdl.latent_dim), generator=torch.Generator().manual_seed(seed))
        samples = mdl.decode(z.to(dev)).float().cpu()
    lap_x, lap_r = metrics.laplacian_variance(ev.x), metrics.laplacian_variance(recon)  # (N,) each
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(lap_x > 0, lap_r / lap_x, np.nan)
    return BlurImages(originals=images.to_uint8(ev.x), reconstructions=images.to_uint8(recon),
                      samples=images.to_uint8(samples), sharpness_ratio=ratio)


def blur_job(m: Source, d: Source, n_points: int = 1000, seed: int = 0, n_samples: int = 64) -> Job:
    """Images for the Blurriness page (`BlurImages`), on the job queue: the evaluation points of the
    report, their reconstructions and prior samples."""
    mdl, data, split = model_for(m, d), dataset(d), split_of(m)
    return jobs.queue().submit(("blur", m, d, n_points, seed, n_samples), "the blurriness images",
                               lambda job: _blur_images(mdl, data, split, n_points, seed, n_samples))


def report_job(m: Source, d: Source, opts: DiagnoseOptions) -> Job:
    """`diagnose(model, data, **opts)`, the typed `Report`, on the job queue: computed once for every session
    and page asking with the same ids and options (the Diagnose and Blurriness pages, and Compare at the
    same options), going on when its page is left, found finished or progressing on return.

    Points and k = "auto" are chosen to fit opts.budget_s seconds (counted from when the job starts); the
    split is the run's (`split_of`) unless opts.split_seed says another. The model and data are resolved
    here, in the page's script, so their errors show on the page.
    """
    from vae_core import metrics

    mdl, data, split = model_for(m, d), dataset(d), split_of(m)

    def work(job: Job) -> metrics.Report:
        return metrics.diagnose(mdl, data, **opts.kwargs(run_split_seed=split.seed),
                                eval_fraction=split.eval_fraction, train_n=split.n, train_dataset=split.dataset,
                                progress=lambda p: job.report(p.what, p.fraction))

    return jobs.queue().submit(("report", m, d, opts), "the diagnose report", work)


def spectrum_job(d: Source) -> Job:
    """`vae_core.metrics.theory.data_spectrum` of dataset d (its covariance eigenvalues in pixel space,
    on at most 5,000 points), on the job queue: once per dataset for every session (a second for
    64x64 images, milliseconds for small ones), kept with the finished jobs."""
    data = dataset(d)

    def work(job: Job):
        from vae_core.metrics.theory import data_spectrum

        return data_spectrum(data.x)

    return jobs.queue().submit(("spectrum", d), "the data's covariance spectrum", work)


def training_objective(m: Source) -> tuple[float | None, float]:
    """(beta, free bits) a run was trained with, from its config.json; (None, 0) for a model that is not
    a run (its objective is unknown)."""
    train = run_load.run_config(m.src).get("train")
    if not isinstance(train, dict):
        return None, 0.0
    try:
        return float(train.get("beta", 1.0)), float(train.get("free_bits", 0.0))
    except (TypeError, ValueError):
        return None, 0.0


@st.cache_resource(show_spinner=False, max_entries=16)
def decoder_payload(m: Source, d: Source) -> dict | None:
    """`browser_decoder.mlp_decoder_payload` of the model, built once per model (3 ms and ~2 MB of
    base64 otherwise rebuilt on every pad/slider rerun); None where the browser cannot decode it.
    Shared by all sessions: read-only."""
    from .components.browser_decoder import mlp_decoder_payload

    return mlp_decoder_payload(model_for(m, d))


ONNX_PREPARING = ("its decoder is being made ready for your browser (exported to ONNX and checked against "
                  "the model); the server decodes meanwhile.")


def onnx_decoder(m: Source, d: Source) -> tuple[dict | None, str | None]:
    """(the ONNX payload, None), or (None, why not, one sentence) -- ONNX_PREPARING while `onnx_decoder_job`
    runs: the page never waits for an export (a user's model exports in a fresh worker, 6-22 s here)."""
    job = onnx_decoder_job(m, d)
    if not job.done.is_set():
        return None, ONNX_PREPARING
    if job.error is not None:
        return None, f"its decoder could not be exported to ONNX: {job.error}"
    return job.result


def onnx_decoder_job(m: Source, d: Source) -> Job:
    """`_onnx_decoder` on the job queue's encoding lane, once per model and data (shared by all sessions)."""
    key = ("onnx", m, d)
    job = jobs.queue("encode").peek(key)
    if job is not None and job.error is None:
        return job
    mdl = model_for(m, d)
    return jobs.queue("encode").submit(key, "the decoder for your browser", lambda job: _onnx_decoder(mdl))


def _onnx_decoder(mdl) -> tuple[dict | None, str | None]:
    """(`browser_decoder.onnx_decoder_payload` of the model's decoder, None) or (None, why not, one sentence).

    A run's model is exported here (`vae_core.onnx_export.decoder_onnx`: checked against torch's decode,
    kept on disk by the model's content, so a restart does not export again); a user's model only by its
    sandbox worker (`model.decoder_onnx()`), never in this process. Built once per model; shared by all
    sessions: read-only."""
    from vae_core.models import VAE

    from vae_core.errors import CheckpointError
    from vae_core.onnx_export import MAX_ONNX_BYTES, OnnxExportError, decoder_onnx

    from .components.browser_decoder import onnx_decoder_payload

    try:
        if isinstance(mdl, VAE):
            data = decoder_onnx(mdl)
        else:
            export = getattr(mdl, "decoder_onnx", None)  # the sandbox worker's export, where it has one
            if export is None:
                return None, ("this uploaded model's sandboxed worker cannot export its decoder to ONNX, and its "
                              "code runs nowhere else.")
            data = export()
            if len(data) > MAX_ONNX_BYTES:
                return None, (f"its decoder's ONNX graph is {len(data) / 2**20:.0f} MB, more than the "
                              f"{MAX_ONNX_BYTES // 2**20} MB a browser is sent.")
    except Exception as e:  # noqa: BLE001 - OnnxExportError/CheckpointError, or anything a worker does: fall back
        why = (str(e).strip().splitlines() or [""])[0].rstrip(".")
        if isinstance(e, (OnnxExportError, CheckpointError)):
            why = why[:1].lower() + why[1:]  # a sentence of ours, now inside another
        else:
            why = f"{type(e).__name__}: {why}"[:300]
        return None, f"its decoder could not be exported to ONNX: {why}."
    return onnx_decoder_payload(data, mdl.latent_dim, mdl.input_shape), None
