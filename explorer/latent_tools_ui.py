"""The Explore page's tools over codes: the selected point's nearest codes, and attribute vectors
(Latent Space Cartography: the difference of two groups' mean codes, applied to a point).

The arithmetic is `vae_core.latent_tools` (numpy, tested against brute force); this module draws it.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from vae_core import latent_tools as lt, map_plane

from . import cache, images, state, widgets

TILE_SCALE = 3  # nearest-neighbour upscaling of the small images in these panels


@st.cache_resource(show_spinner=False, max_entries=8)
def code_neighbours(m: cache.Source, d: cache.Source) -> lt.CodeNeighbours:
    """The k-d tree over every code mu of (model, data): built once (0.2 s at 100k x 64), asked per click."""
    return lt.CodeNeighbours(cache.encoded(m, d).mu)


def _caption(data, i: int, dist: float | None = None) -> str:
    label = f", label {data.y[i]}" if data.y is not None else ""
    return f"#{i}{label}" + (f", d = {dist:.2f}" if dist is not None else "")


def neighbours_ui(m: cache.Source, d: cache.Source, data, select) -> None:
    """The selected point's k nearest codes, with images, distances and label agreement; a click selects one.

    select(idx): the page's way to make a point the selected one.
    """
    sel = st.session_state[state.SELECTED]
    st.caption("The points whose codes lie closest to the selected point's code: Euclidean distance "
               "between the encoder's means mu (the spread sigma is not used). Close codes should "
               "look alike; a neighbour of another class shows where the model mixes them up.")
    if sel is None:
        st.info("Select a point on the map (or by its number above) to see its nearest codes.")
        return
    k = int(st.number_input("Neighbours k", 1, min(64, len(data) - 1), 8, key=state.NEIGHBOURS_K,
                            help="How many nearest codes to show"))
    idx, dist = code_neighbours(m, d).query(int(sel), k)
    if data.y is not None:
        same = lt.label_agreement(data.y, int(sel), idx)
        st.markdown(f"**{same} of {k}** share its label ({data.y[sel]}).")
    tiles = images.to_uint8(data.x[idx])
    cols = st.columns(min(k, 8))
    for n, (i, dd) in enumerate(zip(idx.tolist(), dist.tolist())):
        col = cols[n % len(cols)]
        col.image(images.upscale(tiles[n], TILE_SCALE), caption=_caption(data, i, dd))
        col.button("Select", key=f"nb_select_{n}", on_click=select, args=(i,),
                   help=f"Make point {i} the selected point")
    widgets.image_downloads_ui("neighbours", png=lambda: images.png_bytes(images.grid(
        np.stack([images.upscale(t, TILE_SCALE) for t in tiles]), ncol=min(k, 8), pad=2)))


def _groups(data) -> dict[str, np.ndarray]:
    """Groups a vector can join: each label value and each factor value, as name -> (N,) mask."""
    out: dict[str, np.ndarray] = {}
    if data.y is not None:
        names = data.meta.get("classes")
        for c in np.unique(data.y):
            name = names[int(c)] if names is not None and int(c) < len(names) else str(c)
            out[f"label {name}"] = data.y == c
    for j, fname in enumerate(data.factor_names):
        for v in np.unique(data.factors[:, j]):
            out[f"{fname} = {v}"] = data.factors[:, j] == v
    return out


def attribute_vector_ui(mdl, data, enc) -> None:
    """From group A to group B: the difference of their mean codes, added to the selected point's code."""
    st.caption("An attribute vector is the difference between the average code of one group and that of "
               "another (Latent Space Cartography). Add it to a point's code and decode: the image moves "
               "from A towards B. Strength 1 moves group A's average exactly onto group B's.")
    groups = _groups(data)
    if len(groups) < 2:
        st.info("This data has no labels or factors to form groups from.")
        return
    names = list(groups)
    c1, c2, c3 = st.columns([2, 2, 3])
    a = c1.selectbox("From group A", names, index=0, key="vec_group_a")
    b = c2.selectbox("To group B", names, index=1, key="vec_group_b")
    strength = c3.slider("Strength", -2.0, 2.0, 1.0, 0.1, key="vec_strength",
                         help="0: the point itself; 1: moved by the full difference of the two means")
    try:
        v = lt.attribute_vector(enc.mu, groups[a], groups[b])
    except ValueError as e:
        st.warning(str(e))
        return
    sel = st.session_state[state.SELECTED]
    base = enc.mu[sel] if sel is not None else lt.group_mean(enc.mu, groups[a], "group A")
    start = f"point #{sel}" if sel is not None else f"the mean code of {a}"
    z = lt.apply_vector(base, v, strength).astype(np.float32)
    strengths = np.linspace(-2, 2, 9)
    strip = cache.decode(mdl, lt.vector_strip(base, v, strengths).astype(np.float32), scale=TILE_SCALE)
    left, right = st.columns([1, 4])
    left.image(cache.decode(mdl, z[None], scale=5)[0], caption=f"{start} + {strength:g} x vector")
    right.image(images.grid(strip, ncol=len(strengths), pad=2),
                caption=f"Along the vector from {start}: strength {strengths[0]:g} to {strengths[-1]:g} "
                        f"(|vector| = {np.linalg.norm(v):.2f})")
    b1, b2 = st.columns(2)
    b1.button("Send this code to the sliders", key="vec_to_sliders", on_click=state.set_z, args=(z.tolist(),),
              help="The latent sliders above take this code: move any dimension from there")
    b2.download_button("Vector (JSON)", on_click="ignore", mime="application/json", file_name="attribute_vector.json",
                       data=lt.vector_json(v, {"from": a, "to": b, "dataset": data.name}), key="vec_json")
    widgets.image_downloads_ui("attribute_strip", png=lambda: images.png_bytes(images.grid(strip, ncol=9, pad=2)))


def manifold_ui(mdl, proj, bounds: tuple[float, float, float, float]) -> None:
    """A grid of images decoded over the 2-D map's plane, aligned with the map (Kingma & Welling's figure)."""
    exact = proj.inverse_is_exact
    st.caption("Each tile is the decoder's image at one spot of the 2-D map: rows run from the map's top to "
               "its bottom, columns from left to right, over the same area the drag pad shows. "
               + ("On a PCA map every spot has one exact code (the inverse of the projection)." if exact else
                  "A t-SNE/UMAP map has no exact way back: each spot's code is a weighted mean of the codes "
                  "of its nearest points (a local inverse); tiles far from any point are guesses."))
    n = st.slider("Grid size", 4, 24, 12, key="manifold_n", help="Tiles per side")
    z, dist = map_plane.manifold_grid(proj, bounds, n, return_distance=True)
    tiles = cache.decode(mdl, z.astype(np.float32), scale=2)
    img = images.grid(tiles, ncol=n, pad=1)
    far = int((dist > 5).sum())
    st.image(img, caption=f"{n} x {n} codes decoded over the {proj.method.upper()} map"
                          + (f"; {far} tile(s) lie far from any encoded point" if far and not exact else ""))
    widgets.image_downloads_ui("manifold", png=lambda: images.png_bytes(img))
