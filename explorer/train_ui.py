"""The Train page's panels: the settings form, the live progress of this session's job, the result.

The form starts a job in `training.registry()` (a subprocess running the CLI) from its submit
callback, so a bad value is reported with every form value kept, and a good one frees the run
name for the next run. Only this session knows its job's id (`state.TRAIN_JOB`), so no other session sees
its controls; the finished run appears in every session's picker (it is a run under runs/).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import Field
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from vae_core import data as vdata
from vae_core.config import ModelConfig, TrainConfig, configs_from_options, ints_text, option, option_fields, parse_ints
from vae_core.runs.epoch_codes import FILE_NAME as EPOCH_CODES
from vae_core.errors import sentence
from vae_core.limits import limits

from . import cache, epochs_ui, figures, selection, state, sweep_ui, training
from .messages import for_user


EXPLAINER = """
**What a VAE trains for.** Each step asks two things: rebuild the image well from a code drawn from
q(z|x) (the *reconstruction* term), and keep q(z|x) close to the prior N(0, I) (the *KL* term, in
nats). The loss is `recon + beta * KL`, summed over pixels and dimensions, averaged over the batch.

**beta** weighs the KL term. beta = 1 is the true VAE objective (the ELBO). A larger beta (a
*beta-VAE*) pushes every code toward the prior: the space gets smoother and often more
disentangled, but images get blurrier and more dimensions *collapse* (carry no information:
their KL drops to 0). A smaller beta gives sharper reconstructions and a less regular space.

**KL annealing** fights collapse early in training, when the decoder cannot yet use the code and
the cheapest move is to switch dimensions off. *Linear*: the KL weight starts at 0 (or beta start) and
rises to beta over a warm-up fraction of training. *Cyclical* (Fu et al. 2019): that rise repeats M times;
in each cycle the weight rises over the first R fraction, then stays at beta.

**Free bits** (Kingma et al. 2016): each dimension's first lambda nats of KL are free, the term
becomes sum_j max(lambda, KL_j), so the model gains nothing by pushing a dimension below lambda
and keeps using it.

**Watch collapse happen:** while it trains, the heatmap below shows KL per dimension per epoch; a
row fading to dark is a dimension the model is switching off.
"""

# Help of the two controls that are not config fields; each config field's help, label, default and
# bounds are declared once, in vae_core.config.
HELP = {
    "data": "What to learn from. digits: 1,797 tiny 8x8 digits (trains in seconds). mnist: 5,000 28x28 "
            "digits. sprites: 5,000 64x64 shapes with known factors (slow on a CPU). Files you uploaded in the "
            "sidebar are listed too.",
    "name": "The folder under runs/ this run is saved to: letters, digits, '-' and '_' only; it must not exist.",
}

# The form's rows: which config fields sit side by side (layout only), two to a row: the form sits
# in the page's narrower column, where four side by side clipped their labels. A field in no row,
# such as a newly declared option, still gets its control, in rows of two at the end.
ROWS = (("latent_dim", "hidden"), ("conv_channels",),
        ("gaussian_scale", "learn_scale"),
        ("beta", "free_bits"),
        ("warmup_fraction", "beta_start"), ("cycles", "ramp_fraction"),
        ("epochs", "batch_size"), ("lr", "eval_fraction"),
        ("seed", "bf16"))
# The choices that decide which other fields apply: drawn above the form (outside it, so that a change
# redraws the form at once), and the fields each value brings (a field not named here always applies).
CHOOSERS = ("arch", "likelihood", "kl_schedule")
APPLIES = {"conv_channels": ("arch", "conv"),
           "gaussian_scale": ("likelihood", "gaussian"), "learn_scale": ("likelihood", "gaussian"),
           "warmup_fraction": ("kl_schedule", "linear"), "beta_start": ("kl_schedule", "linear"),
           "cycles": ("kl_schedule", "cyclical"), "ramp_fraction": ("kl_schedule", "cyclical")}


def applies(name: str, values: dict[str, Any]) -> bool:
    """Whether config field `name` does anything with the choices in `values` (field name -> value)."""
    if name not in APPLIES:
        return True
    chooser, value = APPLIES[name]
    return values.get(chooser) == value


def _suggest_name() -> str:
    return "run-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _rows(values: dict[str, Any]) -> list[list[Field]]:
    """The form's config fields that apply with the choices in `values`, row by row: ROWS, then any
    field ROWS does not name (the choosers are drawn above the form)."""
    left = {f.name: f for f in option_fields() if f.name not in CHOOSERS}
    rows = [[left.pop(n) for n in row if n in left] for row in ROWS]
    rest = list(left.values())
    rows = [[f for f in r if applies(f.name, values)] for r in rows + [rest[i:i + 2] for i in range(0, len(rest), 2)]]
    return [r for r in rows if r]


def _form_default(f: Field) -> Any:
    """The field's default as its control holds it: a tuple of ints as the text '512,256'."""
    return ints_text(f.default) if isinstance(f.default, tuple) else f.default


def _config_value(f: Field, value: Any) -> Any:
    """A control's value as the config takes it (ValueError naming the field when a text box cannot be read)."""
    if not isinstance(f.default, tuple):
        return value
    try:
        return parse_ints(value)
    except ValueError as e:
        raise ValueError(f"{option(f.name)}: {e}") from None


def _configs_from_form(input_shape: tuple[int, int, int]) -> tuple[ModelConfig, TrainConfig]:
    """The form's values as the configs themselves (ValueError naming the field when one is bad)."""
    ss = st.session_state
    # a field that does not apply was not drawn, and Streamlit may have dropped its key: its default then
    values = {f.name: _config_value(f, ss.get(state.TRAIN_FIELD + f.name, _form_default(f))) for f in option_fields()}
    return configs_from_options(values, input_shape)


def _spec_from_form() -> training.TrainSpec:
    """The form's values as a TrainSpec: the configs for the chosen data's shape, its name and n."""
    ss = st.session_state
    data = ss[state.TRAIN_FIELD + "data"]
    model, train = _configs_from_form(cache.dataset(cache.source(data)).shape)
    return training.TrainSpec(data=data, name=str(ss[state.TRAIN_FIELD + "name"]).strip(), model=model, train=train,
                              n=5000 if data == "sprites" else None)  # the app's sprites set has 5,000


def _on_submit() -> None:
    """Validate and start; on any problem keep every value and say what is wrong."""
    ss = st.session_state
    try:
        spec = _spec_from_form()
        if sweep_ui.requested():  # the "β sweep" option: one run per β, one after another
            sweep_ui.start_from_form(spec)
            ss[state.TRAIN_ERROR] = None
            ss[state.TRAIN_FIELD + "name"] = _suggest_name()
            return
        spec.check(state.RUNS_DIR)
        job = training.registry().start(spec, state.RUNS_DIR)
    except Exception as e:  # ModelConfig/TrainConfig/DataError/LimitError name the field; anything else too
        ss[state.TRAIN_ERROR] = f"Not started: {sentence(e)}"
        return
    ss[state.TRAIN_JOB], ss[state.TRAIN_ERROR] = job.id, None
    ss[state.TRAIN_FIELD + "name"] = _suggest_name()  # the next run needs a new name; this one is taken now


def training_allowed() -> bool:
    """False on a public server (VAE_EXPLORER_PUBLIC): strangers get no CPU for training."""
    return not limits().public


def _control(col: Any, f: Field) -> None:
    """The control of config field f, keyed tr_<field>: its kind, bounds, label and help from the declaration."""
    m = f.metadata
    label = m["label"] or f.name.replace("_", " ").capitalize()
    kw = dict(key=state.TRAIN_FIELD + f.name, help=m["newcomer_help"])
    if isinstance(f.default, bool):
        col.checkbox(label, **kw)
    elif m["choices"] is not None:
        col.selectbox(label, m["choices"], **kw)
    elif isinstance(f.default, tuple):
        col.text_input(label, **kw)
    elif isinstance(f.default, int):  # the upper bound: hi, or the limit in force (VAE_EXPLORER_MAX_*)
        his = [h for h in (m["hi"], getattr(limits(), m["limit"]) if m["limit"] else None) if h is not None]
        col.number_input(label, min_value=m["lo"], max_value=min(his, default=None), step=m["step"] or 1, **kw)
    else:  # a float (Streamlit wants every bound a float too); an open lower bound (lr > 0) is the
        # config's to refuse, with its message
        lo, hi = (None if v is None else float(v) for v in (m["lo"], m["hi"]))
        col.number_input(label, min_value=lo, max_value=hi, step=float(m["step"] or 0.1), format="%g", **kw)


def form_ui(running: bool) -> None:
    """The settings form, one control per config field; submitting starts a job (see `_on_submit`)."""
    ss = st.session_state
    uploaded = list(ss[state.UPLOADED_DATA].values())
    data_opts = list(vdata.BUILTIN) + [p for p in uploaded if p not in vdata.BUILTIN]
    default_data = ss[state.DATA_SRC] if ss[state.DATA_SRC] in data_opts else "digits"
    ss.setdefault(state.TRAIN_FIELD + "data", default_data)
    ss.setdefault(state.TRAIN_FIELD + "name", _suggest_name())
    for f in option_fields():
        ss.setdefault(state.TRAIN_FIELD + f.name, _form_default(f))
    if ss[state.TRAIN_FIELD + "data"] not in data_opts:
        ss[state.TRAIN_FIELD + "data"] = default_data

    by_name = {f.name: f for f in option_fields()}
    with st.container(border=True):  # two to a row, as in the form
        c = st.columns(2) + st.columns(2)
        c[0].selectbox("Dataset", data_opts, key=state.TRAIN_FIELD + "data", format_func=selection.label,
                       help=HELP["data"])
        for col, name in zip(c[1:], CHOOSERS):
            _control(col, by_name[name])
    choices = {n: ss[state.TRAIN_FIELD + n] for n in CHOOSERS}
    with st.form("train_form", border=True):
        for row in _rows(choices):
            for col, f in zip(st.columns(2), row):
                _control(col, f)
        st.text_input("Run name", key=state.TRAIN_FIELD + "name", help=HELP["name"])
        st.form_submit_button("Train", type="primary", icon=":material/play_arrow:", on_click=_on_submit,
                              disabled=running, help="Wait for this session's training to end (or cancel it)"
                              if running else "Start training in the background; other pages stay usable")
    if ss.get(state.TRAIN_ERROR):
        st.error(for_user(ss[state.TRAIN_ERROR]))


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
    st.markdown("**KL per dimension** (held-out data, nats, one log colour scale for every run): a row fading "
                "to dark is a dimension collapsing")
    kl = np.array([col(k) for k in dims], dtype=float)  # (D, E)
    st.plotly_chart(figures.kl_heatmap_figure(kl, ep), key="train_kl_heatmap")


def _progress_body(job: training.TrainingJob) -> None:
    p = job.progress
    spec = job.spec
    head = f"Training **runs/{spec.name}** on {selection.label(spec.data)}"
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
                       f"({p.epochs_done} of {p.epochs} epochs): {for_user(job.message)}", icon=":material/warning:")
        if st.button("Open in Explore", type="primary", icon=":material/explore:", key="train_open",
                     on_click=_open_in_explore, args=(str(job.out), job.spec.data)):
            st.switch_page("app_pages/1_Explore.py")
    elif job.status == "failed":
        st.error(f"Training of runs/{name} failed, nothing was saved: {for_user(job.message)}", icon=":material/error:")
    else:
        st.info(f"Training of runs/{name} was cancelled after {p.epochs_done} epoch(s); nothing was saved.",
                icon=":material/cancel:")
    _history_figures(p.rows)
    # The replay picker stays: it opens on the run just saved, and any other run can be picked
    _replay_any_ui(job.out if job.status in ("done", "stopped") else None, job.id)


def job_ui(running: bool) -> None:
    """This session's job, if any: live progress (a fragment polling every second) or its result.
    `running` is what the form above was drawn with (`running()` earlier in this run): a job that ends
    between the two is shown live, and the live panel reruns the page at once, so the page never shows
    the result beside a Train button still disabled."""
    job = training.registry().get(st.session_state.get(state.TRAIN_JOB))
    if job is None:
        st.caption("No training in this session yet: choose the settings and press Train.")
        _replay_any_ui()
        return
    if running:
        _live(job.id)
    else:
        result_ui(job)


def _replay_any_ui(just_saved: Path | None = None, job_id: str | None = None) -> None:
    """Replay the training of a run under runs/ (the finished runs of any session, or the CLI's). The
    picker is there whenever no job of this session runs; when one has just saved a run, it moves to
    that run once, and the user can pick any other after."""
    ss = st.session_state
    runs = [r for r in cache.run_choices() if Path(r).is_dir()]
    if not runs:
        return
    if just_saved is not None and str(just_saved) in runs and ss.get(state.TRAIN_REPLAY_OPENED_FOR) != job_id:
        ss[state.TRAIN_REPLAY_RUN], ss[state.TRAIN_REPLAY_OPENED_FOR] = str(just_saved), job_id
    if ss.get(state.TRAIN_REPLAY_RUN) not in (None, *runs):
        del ss[state.TRAIN_REPLAY_RUN]  # a run that is gone (deleted under runs/): the picker starts afresh
    st.markdown("**Replay a run's training**: its map of held-out codes, epoch by epoch")
    recorded = [i for i, r in enumerate(runs) if (Path(r) / EPOCH_CODES).is_file()]
    if state.TRAIN_REPLAY_RUN not in ss:  # first shown: a run that has a recording (an index beside a set value warns)
        ss[state.TRAIN_REPLAY_RUN] = runs[recorded[0] if recorded else 0]
    run = st.selectbox("Run to replay", runs, format_func=lambda r: Path(r).name,
                       key=state.TRAIN_REPLAY_RUN, help="Runs trained with Record codes > 0 replay their latent map forming.")
    epochs_ui.replay_ui(run, key="train_replay_any")


def running() -> bool:
    """True while this session's job runs (the form's Train button is disabled meanwhile)."""
    job = training.registry().get(st.session_state.get(state.TRAIN_JOB))
    return job is not None and not job.poll().finished
