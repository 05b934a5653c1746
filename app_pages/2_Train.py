"""Train: choose the settings, train in the background, watch the curves and KL per dimension live."""
import streamlit as st

from explorer import sidebar, sweep_ui, train_ui

sidebar.open_page("Train", need_model=False, need_data=False)

st.title("Train a VAE")
st.caption("Training runs in its own process: the other pages (and other people) stay usable while it "
           "runs. The finished run is saved under runs/ and appears in the model picker everywhere.")
with st.expander("What beta, KL annealing and free bits do", icon=":material/school:", key="xp_train_theory"):
    st.markdown(train_ui.EXPLAINER)

if not train_ui.training_allowed():
    st.info("Training is turned off on this server (it is open to the public: VAE_EXPLORER_PUBLIC is set). "
            "Run the app on your own machine to train, or ask whoever runs this server.",
            icon=":material/lock:")
    st.stop()

left, right = st.columns([2, 3], gap="large")
with left:
    st.subheader("Settings")
    sweep_ui.option_ui()
    running = train_ui.running()  # read once: the form and the progress panel agree on it
    train_ui.form_ui(running=running)
    sweep_ui.progress_ui()
with right:
    st.subheader("Progress")
    train_ui.job_ui(running)
