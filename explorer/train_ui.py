"""The Train page's panels: the settings form, the live progress of this session's job, the result.

The form starts a job in `training.registry()` (a subprocess running the CLI) from its submit
callback, so a bad value is reported with every form value kept, and a good one frees the run
name for the next run. Only this session knows its job's id (`JOB`), so no other session sees
its controls; the finished run appears in every session's picker (it is a run under runs/).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core import data as vdata
from vae_core.config import ARCHS, KL_SCHEDULES, LIKELIHOODS
from vae_core.errors import sentence
from vae_core.limits import limits

from . import cache, figures, selection, state, training

JOB = "train_job_id"  # this session's job id (str | None)
_ERR = "train_form_error"
_F = "tr_"  # prefix of the form's widget keys

EXPLAINER = """
**What a VAE trains for.** Each step asks two things: rebuild the image well from a code drawn from
q(z|x) (the *reconstruction* term), and keep q(z|x) close to the prior N(0, I) (the *KL* term, in
nats). The loss is `recon + beta * KL`, summed over pixels and dimensions, averaged over the batch.

**beta** weighs the KL term. beta = 1 is the true VAE objective (the ELBO). A larger beta (a
*beta-VAE*) pushes every code toward the prior: the space gets smoother and often more
disentangled, but images get blurrier and more dimensions *collapse* (carry no information:
their KL drops to 0). A smaller beta gives sharper reconstructions and a less regular space.

**KL annealing** fights collapse early in training, when the decoder cannot yet use the code and
the cheapest move is to switch dimensions off. *Linear*: the KL weight starts at 0 and rises to
beta over a warm-up fraction of training. *Cyclical* (Fu et al. 2019): that rise repeats M times;
in each cycle the weight rises over the first R fraction, then stays at beta.

**Free bits** (Kingma et al. 2016): each dimension's first lambda nats of KL are free, the term
becomes sum_j max(lambda, KL_j), so the model gains nothing by pushing a dimension below lambda
and keeps using it.

**Watch collapse happen:** while it trains, the heatmap below shows KL per dimension per epoch; a
row fading to dark is a dimension the model is switching off.
"""

HELP = {
    "data": "What to learn from. digits: 1,797 tiny 8x8 digits (trains in seconds). mnist: 5,000 28x28 "
            "digits. sprites: 5,000 64x64 shapes with known factors (slow on a CPU). Files you uploaded in the "
            "sidebar are listed too.",
    "arch": "mlp: fully connected layers; fast, fine for digits. conv: two stride-2 convolutions that look at "
            "neighbouring pixels together; slower on a CPU; needs height and width divisible by 4.",
    "hidden": "Sizes of the hidden layers, separated by commas, e.g. 400 or 512,256. Bigger learns more and "
              "trains slower. For conv: the fully connected layers after the convolutions.",
    "latent": "How many numbers the code z has (D). 2 lets you see the whole space at once; more keeps more "
              "detail. The KL heatmap shows which dimensions the model really uses.",
    "likelihood": "How the decoder scores a rebuilt image. bernoulli: for (nearly) black-and-white pixels. "
                  "gaussian: for grey or colour pixels; squared error with a fixed spread s.",
    "scale": "Gaussian only: the spread s of the pixel noise. A smaller s makes reconstruction count more "
             "against the KL term (a fixed-s Gaussian equals beta = 2 s^2 on summed squared error).",
    "beta": "Weight of the KL term. 1 = the true VAE objective (the ELBO). Above 1 (a beta-VAE): smoother, "
            "often more disentangled codes, blurrier images, more collapsed dimensions. Below 1: sharper "
            "images, a less regular space.",
    "schedule": "How the KL weight moves during training. constant: beta all along. linear: rise from 0 to "
                "beta over the warm-up, so the decoder learns to use the code before the KL pressure arrives "
                "(helps against collapse). cyclical: repeat that rise M times (Fu et al. 2019).",
    "warmup": "linear only: the fraction of training over which the KL weight rises from 0 to beta.",
    "cycles": "cyclical only: how many times the KL weight rises from 0 to beta (M; 4 in Fu et al.).",
    "ramp": "cyclical only: the fraction R of each cycle spent rising; the rest of the cycle stays at beta.",
    "free_bits": "Nats per dimension that come free (lambda): a dimension's KL below this is not penalised "
                 "(Kingma et al. 2016), so the model has no reason to switch a dimension off. 0 = off; try "
                 "0.1 to 0.5 when dimensions collapse.",
    "epochs": "Passes over the training split (80% of the data; 20% is held out to evaluate). More fits "
              "better and takes longer: the page shows the time left.",
    "batch": "Images per gradient step. 128 is the usual choice.",
    "lr": "Adam's step size; 0.001 is the standard. Too high and the loss blows up to NaN: training then "
          "stops and keeps the last good epoch.",
    "seed": "Fixes the data split, the initial weights and the batch order: same seed and settings, same run.",
    "name": "The folder under runs/ this run is saved to: letters, digits, '-' and '_' only; it must not exist.",
}


def _suggest_name() -> str:
    return "run-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _label(src: str) -> str:
    return src if src in vdata.BUILTIN else Path(src).name


def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in str(text).replace(",", " ").split())
    except ValueError:
        raise ValueError(f"hidden sizes must be whole numbers separated by commas, like 400 or 512,256; "
                         f"got {text!r}") from None
    if not vals:
        raise ValueError("hidden sizes must not be empty: give at least one layer size, like 400")
    return vals


def _spec_from_form() -> training.TrainSpec:
    """The form's values as a TrainSpec (ValueError naming the field when one cannot be read)."""
    ss = st.session_state
    data = ss[_F + "data"]
    return training.TrainSpec(
        data=data, name=str(ss[_F + "name"]).strip(), arch=ss[_F + "arch"], hidden=_parse_hidden(ss[_F + "hidden"]),
        latent_dim=int(ss[_F + "latent"]), likelihood=ss[_F + "likelihood"], gaussian_scale=float(ss[_F + "scale"]),
        beta=float(ss[_F + "beta"]), kl_schedule=ss[_F + "schedule"], warmup_fraction=float(ss[_F + "warmup"]),
        cycles=int(ss[_F + "cycles"]), ramp_fraction=float(ss[_F + "ramp"]), free_bits=float(ss[_F + "free_bits"]),
        epochs=int(ss[_F + "epochs"]), batch_size=int(ss[_F + "batch"]), lr=float(ss[_F + "lr"]),
        seed=int(ss[_F + "seed"]), n=5000 if data == "sprites" else None)  # the app's sprites set has 5,000


def _on_submit() -> None:
    """Validate and start; on any problem keep every value and say what is wrong."""
    ss = st.session_state
    try:
        spec = _spec_from_form()
        shape = cache.dataset(cache.source(spec.data)).shape
        spec.check(shape, state.RUNS_DIR)
        job = training.registry().start(spec, state.RUNS_DIR)
    except Exception as e:  # ModelConfig/TrainConfig/DataError/LimitError name the field; anything else too
        ss[_ERR] = f"Not started: {sentence(e)}"
        return
    ss[JOB], ss[_ERR] = job.id, None
    ss[_F + "name"] = _suggest_name()  # the next run needs a new name; this one is taken now


def training_allowed() -> bool:
    """False on a public server (VAE_EXPLORER_PUBLIC): strangers get no CPU for training."""
    return not limits().public


def form_ui(running: bool) -> None:
    """The settings form; submitting starts a job (see `_on_submit`)."""
    ss = st.session_state
    uploaded = list(ss[state.UPLOADED_DATA].values())
    data_opts = list(vdata.BUILTIN) + [p for p in uploaded if p not in vdata.BUILTIN]
    defaults = {"data": ss[state.DATA_SRC] if ss[state.DATA_SRC] in data_opts else "digits", "arch": "mlp",
                "hidden": "400", "latent": 16, "likelihood": "bernoulli", "scale": 0.1, "beta": 1.0,
                "schedule": "constant", "warmup": 0.3, "cycles": 4, "ramp": 0.5, "free_bits": 0.0, "epochs": 10,
                "batch": 128, "lr": 1e-3, "seed": 0, "name": _suggest_name()}
    for k, v in defaults.items():
        ss.setdefault(_F + k, v)
    if ss[_F + "data"] not in data_opts:
        ss[_F + "data"] = defaults["data"]

    with st.form("train_form", border=True):
        st.selectbox("Dataset", data_opts, key=_F + "data", format_func=_label, help=HELP["data"])
        c1, c2, c3 = st.columns(3)
        c1.selectbox("Architecture", ARCHS, key=_F + "arch", help=HELP["arch"])
        c2.text_input("Hidden sizes", key=_F + "hidden", help=HELP["hidden"])
        c3.number_input("Latent size D", min_value=1, max_value=512, step=1, key=_F + "latent", help=HELP["latent"])
        c1, c2 = st.columns(2)
        c1.selectbox("Likelihood p(x|z)", LIKELIHOODS, key=_F + "likelihood", help=HELP["likelihood"])
        c2.number_input("Gaussian scale s", min_value=1e-4, step=0.01, format="%g", key=_F + "scale",
                        help=HELP["scale"])
        c1, c2, c3 = st.columns(3)
        c1.number_input("beta (KL weight)", min_value=0.0, step=0.5, format="%g", key=_F + "beta", help=HELP["beta"])
        c2.selectbox("KL schedule", KL_SCHEDULES, key=_F + "schedule", help=HELP["schedule"])
        c3.number_input("Free bits lambda (nats/dim)", min_value=0.0, step=0.05, format="%g", key=_F + "free_bits",
                        help=HELP["free_bits"])
        c1, c2, c3 = st.columns(3)
        c1.number_input("Warm-up fraction (linear)", min_value=0.01, max_value=1.0, step=0.05, format="%g",
                        key=_F + "warmup", help=HELP["warmup"])
        c2.number_input("Cycles M (cyclical)", min_value=1, step=1, key=_F + "cycles", help=HELP["cycles"])
        c3.number_input("Ramp R (cyclical)", min_value=0.01, max_value=1.0, step=0.05, format="%g",
                        key=_F + "ramp", help=HELP["ramp"])
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input("Epochs", min_value=1, max_value=10_000, step=1, key=_F + "epochs", help=HELP["epochs"])
        c2.number_input("Batch size", min_value=1, step=32, key=_F + "batch", help=HELP["batch"])
        c3.number_input("Learning rate", min_value=0.0, step=1e-4, format="%g", key=_F + "lr", help=HELP["lr"])
        c4.number_input("Seed", min_value=0, step=1, key=_F + "seed", help=HELP["seed"])
        st.text_input("Run name", key=_F + "name", help=HELP["name"])
        st.form_submit_button("Train", type="primary", icon=":material/play_arrow:", on_click=_on_submit,
                              disabled=running, help="Wait for this session's training to end (or cancel it)"
                              if running else "Start training in the background; other pages stay usable")
    if ss.get(_ERR):
        st.error(ss[_ERR])


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "estimating the time left..."
    s = int(round(s))
    return f"about {s // 60} min {s % 60:02d} s left" if s >= 60 else f"about {s} s left"


def _history_figures(rows: list[dict]) -> None:
    """Loss/recon/KL/beta per epoch, and the KL-per-dimension heatmap (dims x epochs)."""
    if not rows:
        return
    ep = [r["epoch"] for r in rows]

    def col(k: str) -> list[float]:
        return [np.nan if r.get(k) is None else r[k] for r in rows]

    st.markdown("**Loss and its terms** (training split, nats per data point, per epoch)")
    curves = {"loss (recon + beta KL)": col("loss"), "recon": col("recon_nll"), "KL": col("kl")}
    st.plotly_chart(figures.training_curves_figure(ep, curves, beta=col("beta")), key="train_curves")
    dims = sorted((k for k in rows[0] if k.startswith("kl_dim_")), key=lambda k: int(k[7:]))
    st.markdown("**KL per dimension** (held-out data, nats): a row fading to dark is a dimension collapsing")
    kl = np.array([col(k) for k in dims], dtype=float)  # (D, E)
    st.plotly_chart(figures.kl_heatmap_figure(kl, ep), key="train_kl_heatmap")


def _progress_body(job: training.TrainingJob) -> None:
    p = job.progress
    spec = job.spec
    head = f"Training **runs/{spec.name}** on {_label(spec.data)}"
    if p.step == 0:
        st.progress(0.0, text=f"{head}: loading the data and starting ({p.elapsed:.0f} s)...")
    else:
        st.progress(p.fraction(), text=f"{head}: epoch {p.epochs_done}/{p.epochs} done, step {p.step}/"
                                      f"{p.total_steps}; {_fmt_seconds(p.seconds_left())}")
    st.button("Cancel", icon=":material/stop:", key="train_cancel", on_click=job.cancel,
              help="Stop the training process now; nothing is saved")
    if p.rows:
        _history_figures(p.rows)
    else:
        st.caption("The curves and the KL heatmap appear when the first epoch ends.")


@st.fragment(run_every=1)
def _live(job_id: str) -> None:
    job = training.registry().get(job_id)
    if job is None:
        return
    if job.poll().finished:
        st.rerun()  # the whole page: the result panel, and the new run in the sidebar picker
    _progress_body(job)


def _open_in_explore(run: str, data: str) -> None:
    selection.select(run, data)


def result_ui(job: training.TrainingJob) -> None:
    """The end of a job: saved (maybe stopped early), failed with its last error line, or cancelled."""
    p, name = job.progress, job.spec.name
    if job.status in ("done", "stopped"):
        last = p.rows[-1] if p.rows else {}
        elbo = last.get("eval_elbo")
        elbo_txt = f", held-out ELBO {elbo:.2f} nats" if elbo is not None else ""
        if job.status == "done":
            st.success(f"Saved **runs/{name}**: {p.epochs_done} epochs{elbo_txt}. It is in the model picker "
                       "of every page now.", icon=":material/check_circle:")
        else:
            st.warning(f"Training stopped early and saved the last good epoch as **runs/{name}** "
                       f"({p.epochs_done} of {p.epochs} epochs): {job.message}", icon=":material/warning:")
        if st.button("Open in Explore", type="primary", icon=":material/explore:", key="train_open",
                     on_click=_open_in_explore, args=(str(job.out), job.spec.data)):
            st.switch_page("app_pages/1_Explore.py")
    elif job.status == "failed":
        st.error(f"Training of runs/{name} failed, nothing was saved: {job.message}", icon=":material/error:")
    else:
        st.info(f"Training of runs/{name} was cancelled after {p.epochs_done} epoch(s); nothing was saved.",
                icon=":material/cancel:")
    _history_figures(p.rows)


def job_ui() -> None:
    """This session's job, if any: live progress (a fragment polling every second) or its result."""
    job = training.registry().get(st.session_state.get(JOB))
    if job is None:
        st.caption("No training in this session yet: choose the settings and press Train.")
        return
    if job.poll().finished:
        result_ui(job)
    else:
        _live(job.id)


def running() -> bool:
    """True while this session's job runs (the form's Train button is disabled meanwhile)."""
    job = training.registry().get(st.session_state.get(JOB))
    return job is not None and not job.poll().finished
