"""Explore: the latent map, the drag pad, the selected point, sliders, neighbours, grids and vectors."""
import numpy as np
import streamlit as st

from explorer import (cache, explore_ui as ui, latent_tools_ui as tools, selection_ui, share_ui as share, sidebar,
                      state, walks_ui as walks)

m, d, mdl, data = sidebar.open_page("Explore")

st.title("Explore the latent space")
st.caption("Each dot is one image, placed by its code: the mean mu of q(z|x) that the encoder gives, "
           "drawn in 2-D or 3-D. Nearby dots have similar codes. Drag the marker on the pad to walk "
           "through the space and watch the decoder answer.")
enc = sidebar.encoded_ui(m, d, note=" The map draws when every image has its code.")
order = np.argsort(-enc.kl_per_dim)  # dimensions by KL, most informative first
collapsed = [int(j) for j in np.flatnonzero(enc.kl_per_dim < ui.KL_THRESHOLD)]
share.apply_link_view(data, enc)  # a link's view, once, checked against this data and model
share.notes_ui()

method, dims, color = ui.map_controls_ui(data)
proj = ui.map_projection_ui(m, d, method, dims)
sel = st.session_state[state.SELECTED]  # read once (callbacks set it before this run); passed down
posterior = None
if sel is not None:
    samples = ui.posterior_samples(enc, sel, 200)
    posterior = cache.posterior_on_map(m, d, proj.method, proj.n_components, sel, proj, samples)

shown, highlight = share.filter_ui(data, enc)
left, right = st.columns([3, 2])
with left:
    share.copy_link_ui()
    picked = ui.map_ui(m, d, proj, data, enc, color, sel, posterior, shown, highlight)
with right:
    st.markdown("**Drag pad**")
    ui.decode_toggle_ui(mdl, m, d)
    pad_proj = proj if proj.n_components == 2 else cache.map_job(m, d, "pca", 2).result
    ui.pad_ui(mdl, m, d, pad_proj, data.y, sel)

selection_ui.selection_ui(mdl, data, enc, picked)
ui.selected_point_ui(mdl, data, enc, collapsed, sel)

st.subheader("Latent sliders")
st.caption("One slider per dimension, most informative (highest KL) first. "
           + (f"{len(collapsed)} collapsed dimension(s) are marked: the model stores nothing there."
              if collapsed else f"No dimension is collapsed (all carry more than {ui.KL_THRESHOLD:g} nats)."))
ui.sliders_ui(mdl, m, d, enc, order, set(collapsed), sel)

# A key: the tabs keep the user's tab when the page above them grows or shrinks (a point or a selection
# made or cleared); without it they came back on Neighbours. The open tab is a session setting (TOOL_TAB),
# so the link and a saved session hold it and can open it (`state.setting_widget`)
state.first_value(state.TOOL_TAB, share.TABS[0])
t0, t1, t2, t3, t4, t5 = st.tabs(list(share.TABS), **state.setting_widget(state.TOOL_TABS, state.TOOL_TAB, "default"))
with t0:
    tools.neighbours_ui(m, d, data, sel, lambda i: ui.select_point(i, enc))
with t1:
    st.caption("Change one dimension at a time and keep the others fixed: what does each one control?")
    walks.traversal_ui(mdl, enc, order, sel)
with t2:
    st.caption("Walk in a straight line (or along the sphere) from one code to another and decode each step.")
    walks.interpolation_ui(mdl, enc, len(data), sel)
with t3:
    st.caption("Draw codes from the prior N(0, I) and decode them: this is how a VAE generates.")
    walks.prior_samples_ui(mdl)
with t4:
    tools.attribute_vector_ui(mdl, m, d, data, enc, sel)
with t5:
    tools.manifold_ui(mdl, pad_proj, ui.pad_bounds(m, d, pad_proj))
with st.expander("Export", key="xp_export"):
    ui.export_ui(proj, data, enc)
share.session_ui(m, d, data, enc)
share.write_url()  # the address bar holds the view as it is now
