"""Compare's two linked maps (`explorer.linked_maps_ui.maps_ui`) at scale, for the browser tests:
`?n=` points (default 100,000) of 10 labels, normal around 0; the right map is the left one turned
by 90°, doubled and blurred (seeded, so the tests can rebuild it)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import linked_maps_ui


def maps(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left (N, 2), right (N, 2), labels (N,))."""
    rng = np.random.default_rng(0)
    left = rng.normal(size=(n, 2))
    right = 2 * left @ np.array([[0.0, 1.0], [-1.0, 0.0]]) + rng.normal(scale=0.3, size=(n, 2))
    return left, right, rng.integers(0, 10, n)


if __name__ == "__main__":
    st.set_page_config(page_title="Linked maps at scale", layout="wide")
    left, right, labels = maps(int(st.query_params.get("n", 100_000)))
    linked_maps_ui.maps_ui(["**left**", "**right**"], [left, right], labels, None)
