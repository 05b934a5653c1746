"""Demo of the drag pad over a large map for the browser tests: `?n=1000000` puts a synthetic map of n
points (10 labels) behind the pad; the pad draws its bounded, label-stratified sample."""
from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.components.pad import latent_pad, pad_state

st.set_page_config(page_title="Latent pad, large map")


@st.cache_data
def synthetic(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, 10, n)


n = int(st.query_params.get("n", 1000))
pts, labels = synthetic(n)
state = pad_state("pad")
x, y = (state["x"], state["y"]) if state else (0.0, 0.0)
latent_pad("pad", points=pts, colors=labels, points_id=f"demo-{n}", bounds=(-3.0, 3.0, -3.0, 3.0),
           pos=(x, y), ack=state["seq"] if state else 0)
st.text(f"pad_z={x!r},{y!r}")
st.text(f"rerun button pressed: {st.button('rerun the page')}")
