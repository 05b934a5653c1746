"""The Compare page's panels: pick runs, one table of their diagnostics, KL per dimension side by
side, training curves overlaid, prior samples from the same codes.

Numbers come from `cache.report_job` (typed diagnose `Report`s on the server's job queue), keyed by the
model, the data and the `DiagnoseOptions`: a report is computed once for every page and session asking
with the same options. Compare's defaults (`OPTIONS`) score every run on the same 1,000 held-out points
with k = 100 and no time budget, so the runs are compared on equal terms; the Diagnose page's report
(points and k chosen per model by its time budget) is therefore another job, shared with Compare only
where a person sets the same options.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from vae_core.runs.run_load import read_history as _history, run_config as _config  # {} / [] when absent
from vae_core.metrics import Report, collapse as vocab
from vae_core.metrics.pipeline.budget import TARGET_K, TARGET_POINTS
from vae_core.metrics.pipeline.options import DiagnoseOptions

from . import cache, diagnose_ui, figures, images, selection, state, widgets
from .messages import for_user

MAX_DEFAULT = 6  # runs pre-selected on first visit (more make the table and the grids hard to read)
N_SAMPLES = 8  # prior samples per run
# every run on the same points with the same k, no time budget: the runs compared on equal terms
OPTIONS = DiagnoseOptions(n_points=TARGET_POINTS, iwae_k=TARGET_K, budget_s=None)


@dataclass
class Entry:
    """One run (or the active TorchScript model) that fits the active data."""

    src: str
    label: str
    source: cache.Source
    model: Any
    config: dict[str, Any] = field(default_factory=dict)  # config.json ({} for a TorchScript file)
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def beta(self) -> float | None:
        b = self.config.get("train", {}).get("beta")
        return float(b) if b is not None else None


def _beta_key(src: str) -> tuple:
    b = _config(src).get("train", {}).get("beta")
    return (b is None, b if b is not None else 0.0, selection.label(src))


def picker_ui(m: cache.Source, d: cache.Source) -> list[str]:
    """Multiselect over the runs under runs/ and the active model; sorted by beta where known."""
    ss = st.session_state
    runs = cache.run_choices()
    options = sorted(runs + ([m.src] if m.src not in runs else []), key=_beta_key)
    if state.COMPARE_RUNS not in ss:  # first visit: the active model and runs trained on the active data
        same = [r for r in options if r == m.src or _config(r).get("dataset") == d.src]
        ss[state.COMPARE_RUNS] = same[:MAX_DEFAULT]
    # a run deleted meanwhile is dropped, not an error
    ss[state.COMPARE_RUNS] = [r for r in ss[state.COMPARE_RUNS] if r in options]
    return st.multiselect("Runs to compare", options, key=state.COMPARE_RUNS, format_func=lambda s: selection.label(
        s) + (" (active)" if s == m.src else ""), help="Runs under runs/ (newly trained ones included) and the "
        "active model of the sidebar. All are evaluated on the active data set.")


def settings_ui() -> DiagnoseOptions:
    """The evaluation's points, k and seed (controls from the options' declaration, Compare's defaults
    `OPTIONS`); returns the options every run's report is made with."""
    with st.expander("Evaluation settings", key="xp_cmp_settings"):
        c1, c2, c3 = st.columns(3)
        n = diagnose_ui.option_ui("n_points", state.COMPARE_POINTS, default=OPTIONS.n_points, where=c1, choose=False)
        k = diagnose_ui.option_ui("iwae_k", state.COMPARE_K, default=OPTIONS.iwae_k, where=c2, choose=False)
        seed = diagnose_ui.option_ui("seed", state.COMPARE_SEED, default=OPTIONS.seed, where=c3)
    return DiagnoseOptions(n_points=n, iwae_k=k, seed=seed, budget_s=OPTIONS.budget_s)


def load_ui(srcs: list[str], d: cache.Source, m_src: str) -> list[Entry]:
    """The picked runs that fit the active data, sorted by beta; the others listed as skipped."""
    out, skipped = [], []
    for src in srcs:
        s = cache.source(src)
        try:
            mdl = cache.model_for(s, d)
        except (ValueError, FileNotFoundError, OSError) as e:  # DataError, CheckpointError are ValueErrors
            skipped.append(f"- **{selection.label(src)}**: {for_user(str(e))}")
            continue
        label = selection.label(src) + (" (active)" if src == m_src else "")
        out.append(Entry(src, label, s, mdl, _config(src), _history(src)))
    if skipped:
        st.warning(f"Skipped {len(skipped)} run(s) that do not fit {selection.label(d.src)}:\n" + "\n".join(skipped),
                   icon=":material/block:")
    return sorted(out, key=lambda e: (e.beta is None, e.beta or 0.0, e.label))


def reports_ui(entries: list[Entry], d: cache.Source, opts: DiagnoseOptions) -> list[Report]:
    """One diagnose report per run, from the server's job queue (queued together, shared with any page or
    session asking the same options); while any computes, a progress bar and the page stops there."""
    queued = [cache.report_job(e.source, d, opts) for e in entries]
    return [widgets.job_result_ui(job, note=f" Run {i + 1} of {len(entries)}: {e.label}.")
            for i, (e, job) in enumerate(zip(entries, queued))]


def _fmt(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def dim_class_counts(r: Report) -> dict[str, int]:
    """{active, partly collapsed, collapsed: count} of one report, by `collapse.classify_dims` (the
    Diagnose page's summary and verdict table count with the same function)."""
    return vocab.class_counts(r.collapse.classes)


def table_ui(entries: list[Entry], reports: list[Report]) -> pd.DataFrame:
    """One row per run: the bound, its terms, collapse (the three classes), MI and sharpness."""
    rows = []
    for e, r in zip(entries, reports):
        t = e.config.get("train", {})
        blur = r.blur
        n = dim_class_counts(r)
        rows.append({
            "run": e.label, "beta": e.beta, "KL schedule": t.get("kl_schedule"),
            "free bits": t.get("free_bits"), "D": r.latent_dim, "ELBO": r.elbo, "IWAE": r.iwae,
            "recon": r.recon_nll, "KL": r.kl, "active": n[vocab.ACTIVE],
            "partly collapsed": n[vocab.PARTLY_COLLAPSED], "collapsed": n[vocab.COLLAPSED],
            "MI": r.mutual_info,
            "Laplacian ratio recon": _fmt(blur["reconstructions"]["laplacian_ratio"]),
            "Laplacian ratio samples": _fmt(blur["samples"]["laplacian_ratio"]),
        })
    df = pd.DataFrame(rows)
    k, mi_max = reports[0].iwae_k, reports[0].mutual_info_max
    num = st.column_config.NumberColumn
    st.dataframe(df, hide_index=True, key="cmp_table", column_config={
        "beta": num(format="%g", help="KL weight at the end of training (config.json); TorchScript: unknown"),
        "free bits": num(format="%g", help="lambda, nats per dimension (0 = off)"),
        "ELBO": num(format="%.2f", help="Evidence lower bound, nats per data point: higher is better"),
        "IWAE": num(format="%.2f", help=f"Importance-weighted bound with k={k}: at least the ELBO, closer to log p(x)"),
        "recon": num(format="%.2f", help="-E_q log p(x|z): reconstruction error, nats"),
        "KL": num(format="%.2f", help="KL(q(z|x) || p(z)), nats: the sum of KL per dimension"),
        **{name: num(help=vocab.CLASS_HELP[name]) for name in vocab.CLASSES},  # as on the Diagnose page
        "MI": num(format="%.2f", help=f"Mutual information I(x; z), nats; cannot exceed log B = {mi_max:.2f}"),
        "Laplacian ratio recon": num(format="%.3f", help="Sharpness of reconstructions / of the data (1 = as sharp)"),
        "Laplacian ratio samples": num(format="%.3f", help="Sharpness of prior samples / of the data"),
    })
    st.caption(f"Nats per data point on {reports[0].n_points} held-out points of {reports[0].dataset}; "
               f"IWAE with k={k}; MI is bounded by log B = {mi_max:.2f}. In a beta sweep, expect a larger beta "
               "to lower the KL and MI, raise the reconstruction error, collapse more dims and blur more "
               "(a lower Laplacian ratio). Every dimension is counted in exactly one of active / partly "
               "collapsed / collapsed: " + vocab.CLASS_RULES)
    return df


def kl_ui(entries: list[Entry], reports: list[Report]) -> None:
    st.plotly_chart(figures.compare_kl_figure([e.label for e in entries], [r.kl_per_dim for r in reports]),
                    key="cmp_kl")
    st.caption("Mean KL per latent dimension (nats), each cell labelled with its value. The colour follows "
               "log KL (every tick of the colour bar labelled in full), so a 0.03-nat dimension stands out "
               f"from a collapsed one (under {vocab.KL_THRESHOLD:g} nats) even beside a 2-nat one; cells under 0.001 nats show "
               "<0.001.")


CURVES = {"held-out ELBO": "eval_elbo", "loss (recon + beta KL)": "loss", "recon": "recon_nll", "KL": "kl",
          "beta": "beta"}


def curves_ui(entries: list[Entry]) -> None:
    with_hist = [e for e in entries if e.history]
    if not with_hist:
        st.caption("None of these runs has a training history (history.csv).")
        return
    name = st.selectbox("Curve", list(CURVES), key="cmp_curve", help="From each run's history.csv, per epoch")
    col = CURVES[name]
    curves = {e.label: ([h["epoch"] for h in e.history], [h.get(col, math.nan) for h in e.history])
              for e in with_hist}
    st.plotly_chart(figures.history_overlay_figure(curves, name + (" (nats)" if col != "beta" else "")),
                    key="cmp_curves")
    missing = [e.label for e in entries if not e.history]
    if missing:
        st.caption(f"No history for: {', '.join(missing)} (a TorchScript file has none).")


def samples_ui(entries: list[Entry], seed: int) -> None:
    dims = {e.model.latent_dim for e in entries}
    if len(dims) == 1:
        st.caption(f"Every run decodes the same {N_SAMPLES} codes z ~ N(0, I) (seed {seed}): differences are the "
                   "models', not the draws'.")
    else:
        st.caption(f"The runs have different latent sizes ({', '.join(map(str, sorted(dims)))}), so they cannot "
                   f"share codes: runs with the same size D decode the same {N_SAMPLES} codes z ~ N(0, I).")
    for e in entries:
        z = np.random.default_rng(seed).standard_normal((N_SAMPLES, e.model.latent_dim)).astype(np.float32)
        imgs = cache.decode(e.model, z, scale=max(1, 56 // e.model.input_shape[-1]))
        st.image(images.grid(imgs, ncol=N_SAMPLES, pad=2), caption=f"{e.label}: prior samples")


def active_dataset_ui(d: cache.Source):
    """The active data set, or an error and a stop (nothing can be compared without it)."""
    try:
        return cache.dataset(d)
    except (ValueError, FileNotFoundError, OSError) as e:
        st.error(f"The data {selection.label(d.src)} cannot be loaded: {for_user(str(e))} "
                 "Pick another data set in the sidebar.")
        st.stop()

