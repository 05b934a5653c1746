"""Demo of the latent map's hover thumbnails, thumbnails view and box/lasso selection for the browser
tests: a hand-made map (`hand_made()`: a 6 x 6 grid of points, each with its own random 12 x 12
image) whose positions and images the tests know; `?n=3000` adds random points around it (more
than the thumbnails view draws until zoomed in); `?thumbs=1` turns the thumbnails view on."""
from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import figures
from explorer.components.latent_map import MapLayer, latent_map, selected_rows, thumbs_payload
from vae_core.maps.map_plane import thumbnail_sheet


def hand_made(n: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coords (N, 2) float32, labels (N,), images (N, 12, 12) uint8): the 36 grid points at
    (0..5, 0..5) first (point r * 6 + c at x = c, y = r), then n - 36 random ones when n > 36."""
    rng = np.random.default_rng(7)
    gx, gy = np.meshgrid(np.arange(6.0), np.arange(6.0))
    coords = np.column_stack([gx.ravel(), gy.ravel()])
    if n > 36:
        coords = np.vstack([coords, rng.uniform(-1, 6, (n - 36, 2))])
    images = rng.integers(0, 256, (len(coords), 12, 12), dtype=np.uint8)
    return coords.astype(np.float32), np.arange(len(coords)) % 3, images


if __name__ == "__main__":
    st.set_page_config(page_title="Map selection demo", layout="wide")
    n = int(st.query_params.get("n", 0))
    coords, labels, imgs = hand_made(n)
    fid = f"hand-{n}"
    layers = {"thumbs": MapLayer(f"{fid}-thumbs", lambda: thumbs_payload(thumbnail_sheet(imgs), len(imgs))),
              "density": None}
    latent_map("map", figure_id=fid, overlay=[], height=500, layers=layers, selection_id=fid,
               thumbnails_view=st.toggle("Thumbnails", value=st.query_params.get("thumbs") == "1"),
               figure=lambda: figures.map_base_figure(coords, labels, categorical=True,
                                                      color_name="label").to_json())
    rows = selected_rows("map", len(coords), fid)
    st.text(f"selection={'none' if rows is None else ','.join(map(str, rows.tolist()))}")
