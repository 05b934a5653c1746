"""Diagnose: the report of vae_core.metrics.diagnose as pictures, plain words and exact numbers."""
import streamlit as st

from explorer import diagnose_ui as ui, epochs_ui, sidebar

m, d, mdl, data = sidebar.open_page("Diagnose")

st.title("Diagnose the model")
st.caption("What did the model learn, and where did it fail? Every number below is computed on the "
           "held-out evaluation points, in nats per data point. Pictures first; exact numbers beside them.")
left, mid, right = st.columns([1, 1, 2], vertical_alignment="bottom")
opts = ui.options_ui(left, mid)  # the declared diagnose options (vae_core.metrics.pipeline.options)
rep = ui.report_ui(m, d, opts)
with right:
    ui.download_ui(rep)

ui.summary_ui(rep)

st.header("Information per dimension")
ui.kl_ui(rep)

st.header("Posterior collapse: three views")
st.caption("A dimension has *collapsed* when the encoder stops using it: its code is the same N(0, 1) "
           "cloud for every image, so it tells the decoder nothing. Three common rules check this.")
ui.collapse_ui(rep)

st.subheader("Does the decoder listen?")
ui.sensitivity_ui(rep)

st.subheader("Traversals: each dimension at work")
ui.traversal_ui(mdl, rep, sidebar.encoded_ui(m, d).mu.mean(0))

st.header("How well does the model explain the data?")
ui.bounds_ui(rep)
st.subheader("Mutual information between images and codes")
ui.information_ui(rep)

st.header("Does the encoded data fill the prior?")
ui.aggregate_ui(rep)

st.header("Disentanglement")
ui.mig_ui(rep)

st.header("How the latent space formed during training")
epochs_ui.replay_ui(m.src, key="diagnose_replay")

st.header("Theory check: how many dimensions should be active?")
ui.theory_ui(m, d, rep)

ui.notes_ui(rep)  # the caveats, folded below the pictures and verdicts
