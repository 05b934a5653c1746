"""The Explore page's selection panel: what a box or lasso on the 2-D map selected.

Its size and label mix, its mean code decoded, its KL per dimension against the rest, exports
(indices and codes as CSV, images as .npz) and "keep as" a named selection in
`state.SAVED_SELECTIONS`, where the attribute vectors find it. The arithmetic is
`vae_core.maps.latent_tools` (tested against numpy); this module draws it.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from vae_core.maps import export, latent_tools as lt
from vae_core.data.lazy import Images, batch_rows
from vae_core.limits import check_bytes

from . import cache, figures, state

SCALE = 5  # nearest-neighbour upscaling of the decoded mean code


def _label_mix(summary: lt.SelectionSummary, class_names) -> str:
    """"label 1: 40 (80%), label 7: 10 (20%)", most common first (at most 6, then "...")."""
    def name(v) -> str:
        return str(class_names[int(v)]) if class_names is not None and isinstance(v, int) and \
            0 <= v < len(class_names) else str(v)
    parts = [f"{name(v)}: {c:,} ({c / summary.size:.0%})" for v, c in list(summary.label_counts.items())[:6]]
    more = len(summary.label_counts) - 6
    return ", ".join(parts) + (f", and {more} more labels" if more > 0 else "")


def _default_name(saved: dict) -> str:
    return next((n for n in ("A", "B") if n not in saved), f"selection {len(saved) + 1}")


def _keep(rows: np.ndarray) -> None:
    """Store the selection under the typed name (button callback: runs before the panel redraws)."""
    ss = st.session_state
    name = (ss.get(state.SELECTION_NAME) or "").strip()
    if not name:
        name = _default_name(ss[state.SAVED_SELECTIONS])
    ss[state.SAVED_SELECTIONS] = {**ss[state.SAVED_SELECTIONS], name: np.asarray(rows, dtype=np.int64).copy()}
    ss[state.SELECTION_NAME] = _default_name(ss[state.SAVED_SELECTIONS])


def _forget() -> None:
    st.session_state[state.SAVED_SELECTIONS] = {}


def saved_selections_ui() -> None:
    """The kept selections, by name and size, with a button to forget them."""
    saved = st.session_state[state.SAVED_SELECTIONS]
    if not saved:
        return
    c1, c2 = st.columns([4, 1])
    c1.markdown("Kept selections (the *Attribute vectors* tab can use any two): "
                + ", ".join(f"**{n}** ({len(r):,} points)" for n, r in saved.items()))
    c2.button("Forget them", key="sel_forget", on_click=_forget, help="Empty the list of kept selections")


def selection_ui(mdl, data, enc, rows: np.ndarray | None) -> None:
    """The panel under the map for the rows of a box/lasso selection (None: nothing selected)."""
    st.subheader("Selection")
    if rows is None:
        st.caption("Select points with the box or lasso tool of the 2-D map (top right of the map): this panel "
                   "then describes them, decodes their mean code and exports them.")
        saved_selections_ui()
        return
    mask = np.zeros(len(data), dtype=bool)
    mask[rows] = True
    s = lt.selection_summary(enc.mu, enc.logvar, data.y, mask)
    everything = s.kl_rest is None
    st.markdown(f"**{s.size:,} of {len(data):,} points** selected"
                + (f"; labels {_label_mix(s, data.meta.get('classes'))}" if s.label_counts else "") + ".")
    c1, c2 = st.columns([1, 3])
    mean_img = cache.decode(mdl, s.mean_code[None], scale=SCALE)[0]
    c1.image(mean_img, caption="decode(mean of their codes)")
    c1.caption("The decoder's picture of the selection's centre: the mean of the selected points' codes mu, "
               "decoded.")
    c2.plotly_chart(figures.selection_kl_figure(s.kl_selected, s.kl_rest), key="sel_kl_fig")
    c2.caption("KL per dimension, in nats: how much the selected points' codes use each dimension"
               + (" (every point is selected, so there is no rest to compare)." if everything else
                  ", beside the rest of the points. A dimension used far more here than elsewhere is one "
                     "that sets this group apart."))
    d1, d2 = st.columns(2)
    name = export.file_stem(data.name)  # 'blobs20k.npz' -> 'blobs20k': the extension stays at the end
    d1.download_button("Indices and codes (CSV)", on_click="ignore", mime="text/csv",
                       file_name=f"selection_{name}_{s.size}.csv",
                       data=lambda: lt.selection_csv(s.indices, enc.mu, enc.logvar, data.y),
                       help="One row per selected point: index into the data, label, mu and sigma per dimension")
    d2.download_button("Images (.npz)", on_click="ignore", mime="application/octet-stream",
                       file_name=f"selection_{name}_{s.size}.npz",
                       data=lambda: lt.selection_npz(_uint8_nchw(_rows(data.x, s.indices)), s.indices,
                                                     None if data.y is None else np.asarray(data.y)[s.indices]),
                       help="x (n, C, H, W) uint8, indices and y (labels): the app's own .npz upload reads it")
    ss = st.session_state
    if not ss.get(state.SELECTION_NAME):
        ss[state.SELECTION_NAME] = _default_name(ss[state.SAVED_SELECTIONS])
    k1, k2, _ = st.columns([1, 1, 2])
    k1.text_input("Name", key=state.SELECTION_NAME, help="Keep the selection under this name (e.g. A, B)")
    k2.button("Keep this selection", key="sel_keep", on_click=_keep, args=(s.indices,),
              help="Keep it by name so the Attribute vectors tab can take the difference of two selections' "
                   "mean codes")
    saved_selections_ui()


def _rows(x, indices: np.ndarray):
    """Rows `indices` of x: a tensor, or for a large file's lazy images a lazy view when they are many."""
    return x.take(indices) if isinstance(x, Images) else x[indices]


def _uint8_nchw(x) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] -> uint8 (n, C, H, W), as the .npz upload takes them; lazy images
    a batch at a time into the uint8 array (checked against max_data_mb), never whole as float32."""
    if isinstance(x, Images):
        check_bytes("the selected images as 8-bit pixels", len(x) * int(np.prod(tuple(x.shape[1:]))), "max_data_mb")
        out = np.empty(tuple(x.shape), dtype=np.uint8)
        step = batch_rows(x)
        for s in range(0, len(x), step):
            out[s:s + step] = _uint8_nchw(x[s:s + step])
        return out
    a = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    return (np.clip(a, 0.0, 1.0) * 255.0).round().astype(np.uint8)
