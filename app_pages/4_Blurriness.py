"""Blurriness: how much fine detail reconstructions and prior samples keep, against the data."""
import streamlit as st

from explorer import blur_ui as ui, cache, diagnose_ui, sidebar, widgets

m, d, mdl, data = sidebar.open_page("Blurriness")

st.title("Why are VAE images blurry?")
st.caption("A VAE rebuilds each image from a noisy code and is scored on the average pixel error, so where it "
           "is unsure it paints the average of the possibilities: a soft, blurred image. This page measures "
           "how much fine detail survives, in reconstructions and in new samples from the prior.")

opts = diagnose_ui.page_options()  # the Diagnose page's options: the same report, shared
rep = diagnose_ui.report_ui(m, d, opts)
imgs = widgets.job_result_ui(cache.blur_job(m, d, diagnose_ui.N_POINTS, opts.seed))

st.header("Side by side")
ui.grids_ui(imgs)

st.header("Sharpness in numbers")
ui.blur_numbers_ui(rep)

st.header("Which frequencies are lost?")
ui.spectrum_ui(rep)

st.header("Sharpest and blurriest reconstructions")
ui.extremes_ui(imgs)

st.header("Where on the map are reconstructions worst?")
ui.error_map_ui(m, d, data)
