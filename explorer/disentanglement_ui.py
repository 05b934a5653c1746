"""InfoMEC and DCI beside MIG on the Diagnose page (report keys infom ... dci_i, with *_se; see
vae_core/metrics/infomec_dci.py and docs/science.md, "Disentanglement: MIG, InfoMEC, DCI")."""
from __future__ import annotations

import streamlit as st

SCORES = (
    ("infom", "InfoM", "modularity: each latent is about one factor (Hsu et al. 2023)"),
    ("infoc", "InfoC", "compactness: each factor lives in one latent (Hsu et al. 2023)"),
    ("infoe", "InfoE", "explicitness: how well a linear (logistic) read-out of the code predicts each factor"),
    ("dci_d", "DCI D", "disentanglement: each latent's importance is concentrated on one factor "
                       "(Eastwood & Williams 2018)"),
    ("dci_c", "DCI C", "completeness: each factor's importance is concentrated on one latent"),
    ("dci_i", "DCI I", "informativeness: held-out accuracy of a random forest predicting each factor"),
)


def score_text(value: float | None, se: float | None) -> str:
    """'0.812 ± 0.021', '0.812' without a standard error, 'n/a' when undefined."""
    if value is None:
        return "n/a"
    return f"{value:.3f}" + ("" if se is None else f" ± {se:.3f}")


def scores_ui(rep) -> None:
    """The six scores in one row of metrics, each with its half-sample standard error (rep: the typed
    Report; its `disentanglement_detail` is None where the data has no factors)."""
    d = rep.disentanglement_detail
    if d is None or all(d.scores.get(k) is None for k, _, _ in SCORES):
        return
    st.markdown("**InfoMEC and DCI** (0 to 1, higher is better; ± one standard error over half-samples of the "
                "points)")
    cols = st.columns(len(SCORES))
    for col, (key, name, help_text) in zip(cols, SCORES):
        col.metric(name, score_text(d.scores.get(key), d.se.get(key)), help=help_text)
    st.caption(f"On {d.n_points} points. InfoMEC prunes latents whose means barely move (range "
               "below 1/20 of the largest) before scoring; an entangled code (one latent mixing factors) scores low "
               "on InfoM and DCI D, a code spread over many latents low on InfoC and DCI C.")
