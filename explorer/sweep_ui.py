"""β sweeps in the app: queue one training per β from the Train page, and draw a sweep's collapse
cascade on Compare (vae_core/sweep.py; docs/science.md, "β sweeps").

Train: `SweepJob` trains the runs one after another, each a `training.TrainingJob` (a `python -m
vae_core train` subprocess) into runs/sweep-NAME/beta-<β>/, and keeps runs/sweep-NAME/sweep.json
current (the CLI's `sweep` writes the same). A thread of its own starts the next run when one ends,
so the queue goes on when the page is left; cancel stops the running one and drops the rest.

Compare: the sweep's runs are measured on the server's job queue (`measure_sweep`: each run's KL per
latent on its held-out points, the principal direction each latent follows), then drawn: each
latent's KL against β (log axis) with the collapse threshold, the measured active units against
the linear theory's prediction, and the order in which the data's principal directions collapse
beside the spectrum's order.
"""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from vae_core import sweep as vsweep

from . import jobs, state, training, widgets

DEFAULT_BETAS = "0.25,0.5,1,2,4,8"
FINAL = ("done", "stopped", "failed", "cancelled")


class SweepJob:
    """One β sweep: its runs trained one after another by a thread of its own."""

    def __init__(self, spec: training.TrainSpec, betas: Sequence[float], runs_dir: str | Path):
        self.spec = spec
        self.betas = tuple(betas)
        self.out = Path(runs_dir) / spec.name
        self.id = f"sweep-{spec.name}-{id(self):x}"
        self.status: dict[float, str] = {b: "pending" for b in self.betas}
        self.current: training.TrainingJob | None = None
        self.message = ""
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sweep {spec.name}", daemon=True)

    @property
    def finished(self) -> bool:
        return all(s in FINAL for s in self.status.values())

    def start(self) -> "SweepJob":
        self.out.mkdir(parents=True, exist_ok=False)
        self._write()
        self._thread.start()
        return self

    def _write(self) -> None:
        vsweep.write_sweep_json(self.out, self.betas, self.status, dataset=self.spec.data)

    def _run(self) -> None:
        for b in self.betas:
            if self._cancel.is_set():
                break
            sub = replace(self.spec, name=vsweep.beta_dirname(b), train=replace(self.spec.train, beta=b))
            self.status[b] = "running"
            self._write()
            job = self.current = training.TrainingJob(sub, self.out).start()
            while not job.poll().finished:
                if job.proc is not None:
                    try:
                        job.proc.wait(0.5)  # wakes at once when the process ends
                    except Exception:  # subprocess.TimeoutExpired: still running
                        pass
            self.status[b] = job.status
            if job.status == "failed":
                self.message = f"β = {b:g}: {job.message}"
            self._write()
        for b in self.betas:
            if self.status[b] not in FINAL:
                self.status[b] = "cancelled"
        self._write()

    def cancel(self) -> None:
        self._cancel.set()
        if self.current is not None:
            self.current.cancel()

    def fraction(self) -> float:
        done = sum(s in FINAL for s in self.status.values())
        part = self.current.progress.fraction() if self.current is not None and not self.current.finished else 0.0
        return min((done + part) / len(self.betas), 1.0)


@st.cache_resource(show_spinner=False)
def sweeps() -> dict[str, SweepJob]:
    """Every session's sweep jobs by id (this session holds its own id)."""
    return {}


# ------------------------------------------------------------------------------------- Train page
def option_ui() -> None:
    """The Train page's "β sweep" option, above the form: on, the form's Train button queues one run
    per β (train_ui's submit calls `start_from_form`). Outside the form, so it applies at once."""
    ss = st.session_state
    ss.setdefault(state.SWEEP_BETAS, DEFAULT_BETAS)
    st.toggle("β sweep", key=state.SWEEP_ON, help="Train the settings below once per β (identical but for β, same "
              "seed), one run after another, into runs/sweep-NAME/beta-<β>/. Compare then draws how the "
              "latent dimensions collapse as β rises.")
    if ss.get(state.SWEEP_ON):
        st.text_input("β values (comma-separated)", key=state.SWEEP_BETAS,
                      help="The form's β is replaced by each of these in turn.")


def requested() -> bool:
    return bool(st.session_state.get(state.SWEEP_ON))


def start_from_form(spec: training.TrainSpec) -> None:
    """Queue the sweep of the form's spec (ValueError when the betas or the name are not usable)."""
    if training.limits().public:
        raise ValueError("training is turned off on this server (VAE_EXPLORER_PUBLIC is set)")
    betas = vsweep.parse_betas(st.session_state.get(state.SWEEP_BETAS, DEFAULT_BETAS))
    busy = sum(not j.poll().finished for j in list(training.registry().jobs.values())) + \
        sum(not j.finished for j in list(sweeps().values()))
    if busy >= training.MAX_RUNNING:  # a sweep trains one run at a time: it takes one of the slots
        raise ValueError(f"{busy} trainings are running on this server already (the limit is {training.MAX_RUNNING}, "
                         "one per core); try again when one has finished")
    spec = replace(spec, name=spec.name if spec.name.startswith("sweep-") else f"sweep-{spec.name}")
    spec.check(state.RUNS_DIR)
    job = SweepJob(spec, betas, state.RUNS_DIR).start()
    sweeps()[job.id] = job
    st.session_state[state.SWEEP_JOB] = job.id


def progress_ui() -> None:
    """This session's sweep, if any: each β's status, the share done, cancel."""
    job = sweeps().get(st.session_state.get(state.SWEEP_JOB) or "")
    if job is not None:
        _sweep_progress(job.id)


@st.fragment(run_every=1.0)
def _sweep_progress(job_id: str) -> None:
    job = sweeps().get(job_id)
    if job is None:
        return
    st.progress(job.fraction(), text=f"β sweep {job.out.name}: " + ", ".join(
        f"β {b:g} {s}" for b, s in job.status.items()))
    if job.message:
        st.warning(job.message)
    if not job.finished:
        if st.button("Cancel the sweep", key="sweep_cancel", icon=":material/stop:"):
            job.cancel()
    else:
        st.success(f"Sweep saved in {job.out}: open Compare to see its collapse cascade.", icon=":material/check:")


# ------------------------------------------------------------------------------------ Compare page
def sweep_job(path: Path) -> jobs.Job:
    """measure_sweep + cascade on the job queue, keyed by the sweep and its runs' fingerprints."""
    from vae_core.runs.run_load import fingerprint

    runs = vsweep.finished_runs(path)
    key = ("beta_sweep", str(path), tuple((b, fingerprint(p)) for b, p in runs))

    def work(job: jobs.Job) -> dict[str, Any]:
        measured = []
        for i, (_, p) in enumerate(runs):
            job.report("measure", i / max(len(runs), 1))
            measured.append(vsweep.measure_run(p))
        return vsweep.cascade(measured)

    return jobs.queue().submit(key, "the β sweep's measurements", work)


def _beta_axis(betas: Sequence[float]) -> dict[str, Any]:
    """A log β axis ticked at the sweep's βs only."""
    return dict(type="log", title="β", tickvals=list(betas), ticktext=[f"{b:g}" for b in betas])


def kl_beta_figure(c: dict[str, Any]) -> go.Figure:
    """Each latent's KL (nats) against β, log x; the collapse threshold as a dashed line."""
    fig = go.Figure()
    kl = np.asarray(c["kl"])
    for j in range(kl.shape[1]):
        cb = c["collapse_beta"][j]
        fig.add_scatter(x=list(c["betas"]), y=np.maximum(kl[:, j], 1e-4).tolist(), mode="lines+markers", name=f"z{j}",
                        hovertemplate=f"z{j}: KL %{{y:.3g}} nats at β %{{x:g}}"
                                      + ("" if cb is None else f"<br>collapsed from β = {cb:g}") + "<extra></extra>")
    fig.add_hline(y=c["threshold"], line_dash="dash", line_color="grey",
                  annotation_text=f"collapse threshold {c['threshold']:g} nats")
    fig.update_layout(xaxis=_beta_axis(c["betas"]), yaxis=dict(type="log", title="KL per latent (nats)"),
                      height=380, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def active_figure(c: dict[str, Any]) -> go.Figure:
    """Measured active units against β, with the linear theory's prediction where it applies."""
    fig = go.Figure()
    fig.add_scatter(x=c["betas"], y=c["active_measured"], mode="lines+markers", name="measured (KL ≥ threshold)")
    if c["active_predicted"] is not None:
        fig.add_scatter(x=c["betas"], y=c["active_predicted"], mode="lines+markers", line_dash="dot",
                        name="predicted: #{λᵢ > β σ²}")
    fig.update_layout(xaxis=_beta_axis(c["betas"]), yaxis=dict(title="active latents", rangemode="tozero"),
                      height=300, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def order_table(c: dict[str, Any]) -> pd.DataFrame:
    """One row per principal direction, in the order it collapses: measured and predicted β."""
    rows = [{"principal direction (1 = largest λ)": o["direction"] + 1, "eigenvalue λ": o["eigenvalue"],
             "collapses from β (measured)": "never (in this sweep)" if o["collapse_beta"] is None
             else f"{o['collapse_beta']:g}",
             "predicted: collapses above β = λ/σ²": None if o["predicted_beta"] is None
             else f"{o['predicted_beta']:.3g}"} for o in c["order"]]
    return pd.DataFrame(rows)


def order_words(c: dict[str, Any]) -> str:
    if c["spectrum_order"] is None:
        return ("No principal direction stops being used within this sweep: widen the β range upwards to see "
                "the cascade.")
    if c["spectrum_order"]:
        return ("The directions collapse in the spectrum's order, smallest eigenvalue first, as the linear theory "
                "predicts.")
    return ("The directions do **not** collapse in the spectrum's order: non-linearity at work (the decoder "
            "uses the latents for more than the data's principal directions), or training that has not settled.")


def compare_sweep_ui() -> None:
    """Compare's β-sweep view: pick a sweep under runs/; its cascade."""
    found = vsweep.list_sweeps(state.RUNS_DIR)
    if not found:
        st.info("No β sweep yet. Start one on the Train page (the β sweep option) or with "
                "`python -m vae_core sweep --beta 0.25,0.5,1,2,4,8 --data ... --out runs/sweep-NAME`.",
                icon=":material/info:")
        return
    names = [p.name for p in found]
    pick = st.selectbox("β sweep", names, key=state.SWEEP_PICK)
    path = state.RUNS_DIR / pick
    runs = vsweep.finished_runs(path)
    if len(runs) < 2:
        st.info(f"{pick} has {len(runs)} finished run(s) so far; the cascade needs two.", icon=":material/info:")
        return
    job = sweep_job(path)
    if not job.done.is_set():  # the rest of Compare goes on drawing meanwhile (job_result_ui would stop the page)
        st.progress(job.progress, text=jobs.status_text(job, {}))
        widgets.rerun_when_done(job)
        return
    if job.error is not None:
        st.error(f"The β sweep could not be measured: {job.error}", icon=":material/error:")
        return
    c = job.result
    sigma = "" if c["sigma2"] is None else f" Decoder variance σ² = {c['sigma2']:.4g}."
    st.caption(f"{len(c['betas'])} runs, β = {', '.join(f'{b:g}' for b in c['betas'])}: each latent's KL on its "
               f"run's held-out points.{sigma}")
    st.plotly_chart(kl_beta_figure(c), key="sweep_kl_beta")
    left, right = st.columns(2)
    with left:
        st.markdown("**Active latents: measured and predicted**")
        st.plotly_chart(active_figure(c), key="sweep_active")
        if c["active_predicted"] is None:
            st.caption("The linear theory's prediction needs a Gaussian decoder (λᵢ > β σ²); these runs have a "
                       "Bernoulli one, so only the measurement is shown.")
    with right:
        st.markdown("**Order of collapse beside the spectrum's order**")
        st.dataframe(order_table(c), hide_index=True)
        st.markdown(order_words(c))


__all__ = ["SweepJob", "active_figure", "compare_sweep_ui", "kl_beta_figure", "option_ui", "order_table",
           "order_words", "progress_ui", "requested", "start_from_form"]
