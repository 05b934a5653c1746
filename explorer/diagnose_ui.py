"""The Diagnose page's panels: the report of `vae_core.metrics.diagnose` as pictures and words.

Each `*_ui()` draws one panel from the `Report` (`cache.report_job`: typed attributes, the JSON dict
only for the download) and returns what the page needs next. The controls of the diagnose options
come from their one declaration (`vae_core.metrics.pipeline.options`, `option_ui`). Plain words first
for a newcomer; exact numbers (nats per data point) beside.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from vae_core.maps.export import file_stem
from vae_core.limits import limits
from vae_core.metrics import Report, collapse as vocab, theory
from vae_core.metrics.pipeline.options import AUTO, DiagnoseOptions, option_field

from . import cache, disentanglement_ui, figures, images, state, widgets

OPTIONS = DiagnoseOptions()  # the declared defaults: points and k chosen by the time budget, seed 0
N_POINTS = 1000  # evaluation points of the Blurriness page's images (held-out split)
UNITS = "nats per data point (means over the held-out evaluation points)"
PARTS = {"pilot": "timing the model", "encode": "encoding the data", "iwae": "importance-weighted bound",
         "collapse": "collapse rules", "mutual_info": "mutual information", "aggregate": "aggregate posterior",
         "blur": "blurriness", "mig": "disentanglement (MIG)", "done": "done"}

ACTIVE, PARTLY, COLLAPSED = vocab.ACTIVE, vocab.PARTLY_COLLAPSED, vocab.COLLAPSED  # the one vocabulary

WHY_DISAGREE = (
    "The three rules look at different things. **KL_j** (mean over images of KL(q(z_j|x) || N(0, 1))) "
    "measures how much the code along z_j says about the image at all. **Var(mu_j)** (Burda et al. 2016) "
    "looks only at the means: does the encoder put different images at different places? A dimension "
    "can keep a small mean spread (inactive) while its sigma shrinks a little and it still carries some "
    "KL, or spread its means a bit while sigma stays near 1. **E[sigma_j^2] > 0.8** (Asperti) asks whether "
    "each image's cloud is as wide as the prior. In full collapse all three agree (mu = 0, sigma = 1, "
    "KL = 0); in *partial* collapse they cut at different points, so the counts differ. On this project's "
    "beta=16 MNIST run, 15 dims were active, 11 had KL > 0.01 and 19 had sigma^2 > 0.8. The decoder "
    "sensitivity is a fourth view: a dim can carry KL that the decoder then ignores.\n\n"
    "**How each dimension's class is decided** (the same three classes and counts in the summary above, "
    "the verdict table and the Compare page): " + vocab.CLASS_RULES + " The summary's *Active* count is "
    "therefore not Burda's active units (Var(mu_j) > 0.01 alone, the report's `active_units`): that count "
    "also includes dimensions whose means move while another view calls them collapsed.")


def option_ui(name: str, key: str, *, default: Any = None, where: Any = st, choose: bool = True) -> Any:
    """The control of diagnose option `name`, from its declaration (label, help, bounds, step, choices):
    a select box over its choices where it declares them (and choose), else a number input; returns its
    value. default: the control's first value (the declared default when None); kept in session state `key`."""
    m = option_field(name).metadata
    state.first_value(key, option_field(name).default if default is None else default)
    if choose and m["choices"] is not None:
        return where.selectbox(m["label"], m["choices"], key=key, help=m["ui_help"],
                               format_func=lambda v: "auto (fit the budget)" if v == AUTO else str(v))
    kind = m["kind"]
    lo = m["ui_lo"] if m["ui_lo"] is not None else m["lo"]  # ui_lo: where lo itself is refused (an open bound)
    lo = None if lo is None else kind(lo)
    hi = m["hi"] if m["limit"] is None else getattr(limits(), m["limit"])  # the limit's setting raises it
    return kind(where.number_input(m["label"], min_value=lo, max_value=None if hi is None else kind(hi),
                                   step=kind(m["step"] or 1), key=key, help=m["ui_help"],
                                   format="%g" if kind is float else None))  # 60, not 60.00


def options_ui(k_where: Any = st, budget_where: Any = st) -> DiagnoseOptions:
    """The Diagnose page's controls, IWAE k (auto by default) and the time budget, drawn in the containers
    given; the points are chosen by the budget and the seed is the declared one. Returns the options
    the report is made with."""
    k = option_ui("iwae_k", state.IWAE_K, where=k_where)
    budget = option_ui("budget_s", state.DIAG_BUDGET, where=budget_where)
    return DiagnoseOptions(iwae_k=k, budget_s=budget)


def page_options() -> DiagnoseOptions:
    """The options of this session's Diagnose page (its controls' values, or the declared defaults before
    it was opened): the Blurriness page shows the same report."""
    ss = st.session_state
    return DiagnoseOptions(iwae_k=ss.get(state.IWAE_K, OPTIONS.iwae_k), budget_s=ss.get(state.DIAG_BUDGET,
                                                                                        OPTIONS.budget_s))


def report_ui(m: cache.Source, d: cache.Source, opts: DiagnoseOptions) -> Report:
    """The diagnose report from the server's job queue; while it computes, a progress bar and the page
    stops there (leave and come back: it goes on, and is shown finished or progressing)."""
    job = cache.report_job(m, d, opts)  # the points (and an auto k) chosen to fit the budget
    k_words = "k chosen by the budget" if opts.iwae_k == AUTO else f"k = {opts.iwae_k}"
    budget = "" if opts.budget_s is None else f"; budget {opts.budget_s:g} s"
    return widgets.job_result_ui(job, note=f" IWAE with {k_words}{budget}.", words=PARTS)


def figure_points(rep: Report) -> str:
    """Which points and samples each figure used (empty for a report without the per-figure counts)."""
    p = rep.points
    if not p:
        return ""
    text = (f" Points per figure: KL, collapse views and aggregate posterior {p['encoder']}, mutual information "
            f"{p['mutual_info']} (one sample each), ELBO and IWAE {p['iwae']} (k = {rep.iwae_k} samples each), "
            f"blur {p['blur']}; the sensitivity decodes {p['sensitivity_images']} traversal images.")
    for part, cut in rep.budget_cut.items():
        text += (f" The budget stopped {'the IWAE' if part == 'iwae' else part} on {cut['used']} of "
                 f"{cut['planned']} points: {cut['reason']}.")
    return text


def settings_caption(rep: Report) -> str:
    """Which points and k the report used, who chose them and why, and the time it took."""
    if rep.chosen_by != "budget":
        return f" {rep.n_points} points and k = {rep.iwae_k}, as given." + figure_points(rep)
    took = f"; it took {rep.seconds:.1f} s" if _finite(rep.seconds) else ""
    over = " (over the budget: even the first chunk of each part did not fit)" if rep.over_budget else ""
    k_by = "chosen" if rep.iwae_k_chosen_by == "budget" else "given"
    why = rep.iwae_k_choice or rep.choice
    return (f" Settings: {rep.n_points} points and k = {rep.iwae_k} ({k_by}) for the bounds, under the "
            f"{rep.budget_s:g} s time budget{over}: {why}{took}." + figure_points(rep))


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _pm(value: float, se: float | None, digits: int = 2) -> str:
    """"value ± standard error" of a report figure (the value alone where there is no SE)."""
    return f"{value:.{digits}f}" + (f" ± {se:.{digits}f}" if _finite(se) else "")


def _scale_caption(rep: Report) -> str:
    """Which Gaussian scale the bounds used (empty for a Bernoulli decoder)."""
    src = rep.gaussian_scale_source
    if src is None:
        return ""
    text = f" Gaussian decoder scored with its {src} scale s = {rep.gaussian_scale:.4g}"
    cal = rep.calibrated
    if cal is not None:
        text += (f"; at the calibrated s = {rep.gaussian_scale_calibrated:.4g} (Rybkin et al. 2021) the ELBO "
                 f"is {_pm(cal.elbo, cal.elbo_se)} and the IWAE bound {_pm(cal.iwae, cal.iwae_se)}")
    elif src == "calibrated":
        text += " (it declares none; s^2 = mean squared error, Rybkin et al. 2021)"
    return text + "."


def summary_ui(rep: Report) -> None:
    """The plain-language summary and the headline numbers."""
    st.info(rep.summary)
    d = rep.latent_dim
    c = st.columns(6)
    n = vocab.class_counts(dim_classes(rep))
    c[0].metric("ELBO", f"{rep.elbo:.2f}", help=f"Evidence lower bound, higher is better; {UNITS}.")
    c[1].metric("Reconstruction NLL", f"{rep.recon_nll:.2f}", help=f"-E_q log p(x|z); {UNITS}.")
    c[2].metric("KL", f"{rep.kl:.2f}", help=f"KL(q(z|x) || N(0, I)), summed over dims; {UNITS}.")
    c[3].metric("Active dims", f"{n[ACTIVE]} / {d}", help=vocab.CLASS_HELP[ACTIVE])
    c[4].metric("Partly collapsed", f"{n[PARTLY]} / {d}", help=vocab.CLASS_HELP[PARTLY])
    c[5].metric("Collapsed dims", f"{n[COLLAPSED]} / {d}", help=vocab.CLASS_HELP[COLLAPSED])
    n_enc = rep.points.get("encoder", rep.n_points)
    st.caption(f"{rep.dataset}, {n_enc} held-out points, {d} latent dims, {rep.likelihood} "
               f"decoder. Units: {UNITS}. ELBO = -(reconstruction NLL + KL). With one standard error over the "
               f"points: ELBO {_pm(rep.elbo, rep.elbo_se)}, reconstruction NLL {_pm(rep.recon_nll, rep.recon_nll_se)}, "
               f"KL {_pm(rep.kl, rep.kl_se)}." + _scale_caption(rep) + settings_caption(rep) + notes_pointer(rep))


def notes_ui(rep: Report) -> None:
    """The report's caveats (e.g. Bernoulli likelihood on grey pixels), folded: the page draws them
    below its pictures and verdicts, and the summary says they are there."""
    if not rep.notes:
        return
    with st.expander(f"Notes on this report ({len(rep.notes)})", icon=":material/info:", key="xp_report_notes"):
        for note in rep.notes:
            st.markdown(f"- {note}")


def notes_pointer(rep: Report) -> str:
    """The summary's sentence pointing at the folded notes ('' when there are none)."""
    n = len(rep.notes)
    return f" {n} note{'s' if n > 1 else ''} on this report are folded at the bottom of the page." if n else ""


def kl_ui(rep: Report) -> None:
    """KL per dimension on a log axis with the collapse threshold's line."""
    thr = vocab.KL_THRESHOLD
    st.caption("How much each latent dimension tells about the image, in nats. Below the dashed line "
               f"({thr:g} nats, red bars) a dimension carries almost nothing: it has collapsed. Log scale, so "
               "equal steps are equal ratios: a 0.03-nat dimension stands well above the line even beside a "
               "2-nat one, where a linear axis would flatten it to nothing. Each bar's value is written on it; "
               "bars under 0.001 nats are drawn at 0.001.")
    st.plotly_chart(figures.threshold_bar_figure(np.array(rep.kl_per_dim), thr, y_title="KL_j (nats)",
                                                 log_y=True, line_name=f"{thr:g} nats", value_text=True),
                    key="diag_kl")


def dim_classes(rep: Report) -> list[str]:
    """active / partly collapsed / collapsed per dimension: `vae_core.metrics.collapse.classify_dims`
    on the report's three views."""
    return rep.collapse.classes


def verdicts(rep: Report) -> list[str]:
    """One plain-words verdict per dimension: its class (`dim_classes`), then why, and whether the
    decoder ignores it."""
    return rep.collapse.verdicts


def verdict_table(rep: Report) -> pd.DataFrame:
    """dim, KL, Var mu, E sigma^2, sensitivity, variance law, verdict: one row per dimension."""
    c = rep.collapse
    return pd.DataFrame({
        "dim": np.arange(rep.latent_dim), "KL (nats)": rep.kl_per_dim, "Var mu": np.asarray(c.activity, float),
        "E sigma^2": np.asarray(c.mean_sigma2, float),
        "sensitivity": np.asarray(c.sensitivity, float) if c.sensitivity is not None else [np.nan] * rep.latent_dim,
        "verdict": verdicts(rep)})


def collapse_ui(rep: Report) -> pd.DataFrame:
    """The three collapse views side by side, the verdict table, and why the rules can disagree."""
    c = rep.collapse
    t_act, t_kl, t_s2 = vocab.ACTIVE_THRESHOLD, vocab.KL_THRESHOLD, vocab.PRIOR_SIGMA2_THRESHOLD
    cols = st.columns(3)
    views = [("Var(mu_j): do the means move?", np.asarray(c.activity, float), t_act, "below", True,
              "Var_x(mu_j)", "Inactive (red) when the encoder puts every image at about the same mean: "
              f"Var(mu_j) <= {t_act} (population variance, Burda et al. 2016)."),
             ("KL_j: does it carry information?", np.array(rep.kl_per_dim), t_kl, "below", True,
              "KL_j (nats)", f"Collapsed (red) below {t_kl} nats: the code along z_j says almost nothing."),
             ("E[sigma_j^2]: is the cloud as wide as the prior?", np.asarray(c.mean_sigma2, float), t_s2,
              "above", False, "mean sigma_j^2", f"Prior-like (red) above {t_s2}: each image's cloud "
              "is as wide as N(0, 1), so z_j is mostly noise (Asperti).")]
    for col, (title, v, thr, flag, log_y, ytitle, cap) in zip(cols, views):
        col.markdown(f"**{title}**")
        col.plotly_chart(figures.threshold_bar_figure(v, thr, y_title=ytitle, flag=flag, log_y=log_y,
                                                      line_name=f"{thr:g}"), key=f"diag_rule_{ytitle}")
        col.caption(cap)
    table = verdict_table(rep)
    n = vocab.class_counts(dim_classes(rep))
    st.markdown(f"**Verdict per dimension**: {vocab.counts_phrase(dim_classes(rep))}")
    st.caption(vocab.CLASS_RULES + f" Burda's active units (Var(mu_j) > {t_act} alone): "
               f"{rep.active_units}; by KL alone, {rep.latent_dim - n[COLLAPSED]} carry information; "
               f"{len(c.prior_like_dims)} have a prior-wide spread.")
    st.dataframe(table, hide_index=True, key="diag_verdicts", height=35 * (min(len(table), 32) + 1) + 3,
                 column_config={
        "KL (nats)": st.column_config.NumberColumn(format="%.4f"),
        "Var mu": st.column_config.NumberColumn(format="%.4f"),
        "E sigma^2": st.column_config.NumberColumn(format="%.3f"),
        "sensitivity": st.column_config.NumberColumn(format="%.4f", help="mean |pixel change| when z_j sweeps "
                                                     "[-2, 2], the others at their data mean")})
    with st.expander("Why can the three rules disagree?", key="xp_rules"):
        st.markdown(WHY_DISAGREE)
    return table


def sensitivity_ui(rep: Report) -> None:
    """Decoder sensitivity per dimension, with the 'ignored' cut (1% of the largest)."""
    sens = rep.collapse.sensitivity
    if sens is None:
        st.caption("Decoder sensitivity was not computed for this model.")
        return
    s = np.array(sens)
    st.caption("How much the decoded image changes when one dimension sweeps from -2 to 2 with the others "
               "at their data mean (mean absolute pixel change, pixels in [0, 1]). Below the dashed line "
               "(1% of the largest) the decoder ignores the dimension, whatever its KL.")
    st.plotly_chart(figures.threshold_bar_figure(s, vocab.IGNORED_FRACTION * float(s.max()), y_title="mean |pixel change|",
                                                 line_name="1% of the largest"), key="diag_sens")


def information_ui(rep: Report) -> None:
    """Mutual information I(x; z) beside its log B ceiling."""
    mi, log_b, b = rep.mutual_info, rep.mutual_info_max, rep.mutual_info_detail.batch_size
    st.caption("How much the code tells about which image it came from (He et al. 2019). The estimate "
               f"uses batches of B = {b} points, so it can never exceed "
               f"log B = {log_b:.3f} nats (black mark): near it, the true value may be larger.")
    if rep.mi_at_ceiling:
        st.caption(f"**At its ceiling**: {mi:.3f} nats is within 0.1 nats of log B = {log_b:.3f}, the most an "
                   f"estimate over {b} points can show. The true I(x; z) may be "
                   "larger; only more points would show how much.")
    c1, c2 = st.columns([1, 3])
    c1.metric("I(x; z)", f"{mi:.3f} nats", help=f"ceiling log B = {log_b:.3f} nats")
    c2.plotly_chart(figures.mutual_info_figure(mi, log_b), key="diag_mi")
    c1.caption(f"I(x; z) = {_pm(mi, rep.mutual_info_se, 3)} nats (± one standard error over the points)")


def bounds_ui(rep: Report) -> None:
    """ELBO and the IWAE bound at the chosen k, and the gap between them."""
    k = rep.iwae_k
    c = st.columns(3)
    c[0].metric("ELBO (k = 1)", f"{rep.elbo:.2f}", help=UNITS)
    c[1].metric(f"IWAE bound (k = {k})", f"{rep.iwae:.2f}", help=UNITS)
    c[2].metric("Gap IWAE - ELBO", f"{rep.iwae - rep.elbo:.2f}", help=UNITS)
    st.caption(f"With one standard error over the {rep.n_points} points (sd of the per-point values / "
               f"sqrt(N)): ELBO {_pm(rep.elbo, rep.elbo_se)}, IWAE bound {_pm(rep.iwae, rep.iwae_se)}." + _scale_caption(rep))
    st.caption("Both are lower bounds on log p(x), the log-likelihood of the data, in nats per data point "
               "(higher is better). The IWAE bound (Burda et al. 2016) averages k importance-weighted samples "
               "of q(z|x): ELBO = L_1 <= L_k <= log p(x), and L_k rises with k. So the IWAE value is a tighter "
               "bound, and the gap says how much the ELBO undersells the model because q(z|x) is not the "
               "true posterior. Change k above to see it move.")


def aggregate_ui(rep: Report) -> None:
    """The variance law per dimension and histograms of the aggregate posterior against N(0, 1)."""
    st.caption("If the encoded data fill the prior, Var(mu_j) + E[sigma_j^2] is about 1 in every dimension "
               "(green band 0.5-1.5, Asperti 2019). Far from 1 (red), samples from the prior land in 'holes' "
               "where the decoder never saw data.")
    st.plotly_chart(figures.variance_law_figure(np.array(rep.variance_law)), key="diag_vlaw")
    order = np.argsort(-np.array(rep.kl_per_dim))
    default = [int(order[0])] + ([int(rep.collapsed_dims[0])] if rep.collapsed_dims else
                                 [int(j) for j in order[1:3]])
    dims = st.multiselect("Dimensions for the histograms", list(range(rep.latent_dim)), default=default,
                          format_func=lambda j: f"z{j}", key="diag_hist_dims", max_selections=6)
    st.caption("Blue: one sample z_j ~ q(z|x) per image, pooled over the data (the aggregate posterior). "
               "Black: the prior N(0, 1). A good match means prior samples look like encoded data.")
    agg = rep.aggregate
    cols = st.columns(max(len(dims), 1))
    for col, j in zip(cols, dims):
        col.plotly_chart(figures.aggregate_hist_figure(np.asarray(agg.hist_edges[j], float),
                                                       np.asarray(agg.hist_density[j], float), j), key=f"diag_hist_{j}")


def traversal_ui(mdl, rep: Report, mu_mean: np.ndarray) -> None:
    """One strip per dimension (sorted by KL): decode the mean code with z_j swept over [-3, 3]."""
    st.caption("Visual proof: each strip starts from the average code and sweeps one dimension from -3 to 3, "
               "the others fixed. Strips are sorted by KL (left to right, then down); a collapsed dimension "
               "gives a strip of identical images.")
    d = rep.latent_dim
    order = np.argsort(-np.array(rep.kl_per_dim))
    vals = np.linspace(-3.0, 3.0, 9, dtype=np.float32)
    zs = np.repeat(mu_mean[None].astype(np.float32), d * len(vals), 0)  # (D*9, D)
    zs[np.arange(d * len(vals)), np.repeat(order, len(vals))] = np.tile(vals, d)
    frames = cache.decode(mdl, zs)  # (D*9, H, W[, 3]) uint8, rows in KL order
    scale = max(1, 56 // frames.shape[1])
    verdict = dim_classes(rep)
    cols = st.columns(2)
    for r, j in enumerate(order):
        strip = images.grid(np.stack([images.upscale(f, scale) for f in frames[r * 9:(r + 1) * 9]]), ncol=9, pad=2)
        cols[r % 2].image(strip, caption=f"z{j} (KL {rep.kl_per_dim[j]:.3f} nats, {verdict[j]}): -3 to 3")
    # one sheet of every strip (rows in KL order), and a GIF whose frame v shows every dimension at value v
    tiles = np.stack([images.upscale(f, scale) for f in frames])
    by_value = tiles.reshape(d, len(vals), *tiles.shape[1:]).swapaxes(0, 1)
    widgets.image_downloads_ui("traversal_strips", png=lambda: images.png_bytes(images.grid(tiles, ncol=9, pad=2)),
                               gif=lambda: images.gif_bytes([images.grid(f, ncol=min(d, 8), pad=2) for f in by_value]))


def mig_ui(rep: Report) -> None:
    """MIG and the factor-by-latent MI heatmap when the data has ground-truth factors."""
    if rep.mig is None or rep.mig_detail is None:
        st.caption("MIG (disentanglement) needs ground-truth factors; this data has none. Pick `sprites` to see it.")
        return
    st.metric("MIG", f"{rep.mig:.3f}", help="Mutual Information Gap (Chen et al. 2018), 0 to 1, higher is "
                                                "more disentangled")
    st.caption("Each row is a true factor of the images, each column a latent dimension; bright = the dimension "
               "tells a lot about the factor. Disentangled: one bright cell per row (MIG near 1).")
    st.plotly_chart(figures.mig_heatmap_figure(np.asarray(rep.mig_detail.mi_matrix, float), list(rep.factor_names)),
                    key="diag_mig")
    disentanglement_ui.scores_ui(rep)  # InfoMEC and DCI beside MIG


THEORY_INTRO = (
    "A check against theory (docs/science.md, \"Theory checks\"): a *linear* VAE with a Gaussian decoder of noise "
    "variance sigma^2 keeps a latent direction only where the data varies more than the noise, i.e. for each "
    "eigenvalue lambda_i of the data's covariance (in pixel space) above beta sigma^2 (Tipping & Bishop 1999; "
    "Lucas et al. 2019), and that direction then carries 0.5 log(lambda_i / (beta sigma^2)) nats.")
THEORY_BERNOULLI = (
    "The linear-Gaussian theory does not apply directly to this Bernoulli decoder: its prediction compares each "
    "eigenvalue of the data's covariance with the decoder's fixed noise variance sigma^2, and a Bernoulli "
    "decoder has none (its pixel variance p(1 - p) changes with every decoded image). Train with a Gaussian "
    "decoder (try the `planted` data) to see the check.")


def theory_words(n_pred: int, n_meas: int, latent_dim: int) -> str:
    """The prediction against the measurement in plain words, with what a mismatch suggests."""
    cap = min(n_pred, latent_dim)
    head = (f"The linear theory predicts **{n_pred}** active dimension{'s' if n_pred != 1 else ''}"
            + (f" (more than the model's {latent_dim} latents, so at most {latent_dim})" if n_pred > latent_dim else "")
            + f"; the model has **{n_meas}** (KL_j >= {vocab.KL_THRESHOLD:g} nats).")
    if n_meas == cap:
        return head + " They agree: the model uses as many dimensions as the data has directions above the noise."
    if n_meas < cap:
        return head + (" The model uses fewer than predicted. A linear model at its optimum would not, so this "
                       "suggests an optimisation problem (training stopped early, a KL weight or schedule that "
                       "switched directions off, a poor local optimum); or non-linearity at work: a non-linear "
                       "decoder can explain the data with fewer dimensions than its covariance suggests.")
    return head + (" The model uses more than predicted: non-linearity at work (a non-linear encoder and decoder "
                   "find structure the covariance does not show), or training not finished (the KL of surplus "
                   "dimensions falls towards 0 slowly), or free bits keeping dimensions open.")


def theory_ui(m: cache.Source, d: cache.Source, rep: Report) -> dict | None:
    """The data's covariance spectrum beside sigma^2 and the latents' KL, and the predicted against the
    measured number of active dimensions; for a Bernoulli decoder, why the theory does not apply.
    Returns {"predicted", "measured", "sigma2", "beta"} (None for a Bernoulli decoder)."""
    st.caption(THEORY_INTRO)
    src = rep.gaussian_scale_source
    if src is None:
        st.info(THEORY_BERNOULLI)
        return None
    s = float(rep.gaussian_scale)
    sigma2 = s * s
    beta, free_bits = cache.training_objective(m)
    spectrum = widgets.job_result_ui(cache.spectrum_job(d), note=" For the theory check.")
    pred = theory.linear_prediction(spectrum, sigma2, beta if beta is not None else 1.0)
    kl = np.array(rep.kl_per_dim, dtype=float)
    n_meas = int(np.sum(kl >= vocab.KL_THRESHOLD))
    c = st.columns(3)
    c[0].metric("Predicted active (linear theory)", pred["active"],
                help="#{i: lambda_i > beta sigma^2}, from the data's covariance spectrum")
    c[1].metric("Active by KL (model)", n_meas, help=f"dimensions with KL_j >= {vocab.KL_THRESHOLD:g} nats")
    c[2].metric("beta sigma^2", f"{pred['threshold']:.4g}", help="the line in the plot")
    st.markdown(theory_words(pred["active"], n_meas, int(rep.latent_dim)))
    name = f"beta sigma^2 = {pred['threshold']:.4g}"
    st.plotly_chart(figures.theory_spectrum_figure(spectrum, pred["threshold"], np.sort(kl)[::-1],
                                                   pred["kl_per_dim_pred"], threshold_name=name), key="diag_theory")
    scale = (f"sigma^2 = s^2 = {sigma2:.4g}, where s = {s:.4g} is the decoder's {src} scale, the one the report "
             "used (`gaussian_scale`)")
    if src == "calibrated":
        scale += "; the model declares none, so s^2 is its mean squared error (Rybkin et al. 2021)"
    obj = (f"beta = {beta:g}, from the run's config" if beta is not None else
           "beta = 1 assumed: this model is not a run, so its training objective is unknown")
    if free_bits > 0:
        obj += f"; it was trained with free bits ({free_bits:g} nats per dimension), which the theory leaves out"
    data = cache.dataset(d)
    exact = int(np.prod(data.shape)) <= theory.EXACT_UP_TO
    n_points = min(len(data), theory.MAX_POINTS if exact else theory.MAX_POINTS_TOP_K)
    collapse_all = (" Here beta sigma^2 is above even the largest eigenvalue: theory for deep VAEs too predicts "
                    "that every dimension collapses (arXiv 2510.01621)." if pred["active"] == 0 else "")
    how = "" if exact else f", of the largest {len(spectrum)} found by a randomized SVD"
    st.caption(f"Bars: the largest {min(len(spectrum), 30)} eigenvalues of the data's covariance in pixel space "
               f"({n_points:,} points of the whole data set{how}; blue above the line). Dashed line: beta "
               f"sigma^2, with {scale}; {obj}. Diamonds (right axis): each latent's measured KL (the report's, on "
               "the held-out points), largest first; open circles: the KL the theory predicts for each direction "
               "above the line." + collapse_all + " A prediction under the linear model's assumptions (a linear "
               "encoder and decoder, isotropic Gaussian noise, trained to its optimum), not a verdict: this app's "
               "decoders end in a sigmoid and may have hidden layers.")
    return {"predicted": pred["active"], "measured": n_meas, "sigma2": sigma2, "beta": beta}


def download_ui(rep: Report) -> None:
    """The whole report as JSON."""
    st.download_button("Download report (JSON)", json.dumps(rep.to_dict(), indent=2, allow_nan=False),
                       f"diagnose_{file_stem(rep.dataset)}_k{rep.iwae_k}.json", "application/json", key="diag_json")
