"""Demo of the latent map element for the browser tests: `?n=1000000` draws a synthetic map of n
points (10 labels, one point in ten "fitted"); without n, a hand-made map of five points whose
positions the test knows."""
from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import figures
from explorer.components.latent_map import latent_map

st.set_page_config(page_title="Latent map demo", layout="wide")

HAND_MADE = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0], [2.0, 2.0]], dtype=np.float32)


@st.cache_data
def synthetic(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, 10, n),
            np.arange(n) % 10 == 0)


n = int(st.query_params.get("n", 0))
if n:
    coords, labels, fitted = synthetic(n)
else:
    coords, labels, fitted = HAND_MADE, np.array([0, 1, 2, 1, 0]), None
st.session_state.setdefault("selected", None)
st.session_state["runs"] = st.session_state.get("runs", 0) + 1


def on_click() -> None:
    c = st.session_state["map"].get("click") or {}
    st.session_state["selected"] = c.get("index")


sel = st.session_state["selected"]
overlay = figures.map_overlay_traces(None if sel is None else coords[sel], None, three=False)
latent_map("map", figure_id=f"demo-{n}", on_click=on_click, overlay=overlay, height=500,
           figure=lambda: figures.map_base_figure(coords, labels, categorical=True, color_name="label",
                                                  fitted=fitted).to_json())
st.text(f"selected={sel} runs={st.session_state['runs']}")
st.text(f"rerun button pressed: {st.button('rerun the page')}")
