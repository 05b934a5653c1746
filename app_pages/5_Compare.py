"""Compare: two or more runs on the same data, side by side (a beta sweep is the typical case)."""
import streamlit as st

from explorer import compare_ui, linked_maps_ui, sidebar, sweep_ui

m, d, _, _ = sidebar.open_page("Compare", need_model=False)
data = compare_ui.active_dataset_ui(d)

st.title("Compare runs")
st.caption("Pick two or more runs: each is scored on the same held-out points of the active data set "
           "(chosen in the sidebar). Runs are sorted by beta where their config says it, so a beta sweep "
           "reads from top to bottom.")
with st.expander("β sweep: how the latents collapse as β rises", icon=":material/stacked_line_chart:", key="xp_sweep"):
    sweep_ui.compare_sweep_ui()
srcs = compare_ui.picker_ui(m, d)
opts = compare_ui.settings_ui()
entries = compare_ui.load_ui(srcs, d, m.src)
if len(entries) < 2:
    st.info("Pick at least two runs that fit the active data. Train more on the Train page "
            "(a beta sweep: the same settings with beta 0.5, 1, 4, ...).", icon=":material/info:")
    if not entries:
        st.stop()

reports = compare_ui.reports_ui(entries, d, opts)
st.subheader("Diagnostics")
compare_ui.table_ui(entries, reports)

st.subheader("KL per dimension")
compare_ui.kl_ui(entries, reports)

left, right = st.columns(2)
with left:
    st.subheader("Training curves")
    compare_ui.curves_ui(entries)
with right:
    st.subheader("Prior samples")
    compare_ui.samples_ui(entries, opts.seed)

st.subheader("Two maps, one selection")
linked_maps_ui.linked_maps_ui(entries, d, data)
