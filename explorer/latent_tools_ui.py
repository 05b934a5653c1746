"""The Explore page's tools over codes: the selected point's nearest codes, and attribute vectors
(Latent Space Cartography: the difference of two groups' mean codes, applied to a point, with a
strength slider decoded live on the latent sliders' paths: `strength_decoder` folds the vector into an
MLP decoder's first layer so the browser decodes every step; other decoders answer here per step).

The arithmetic is `vae_core.maps.latent_tools` (numpy, tested against brute force); this module draws it.
"""
from __future__ import annotations

import base64
import hashlib

import numpy as np
import streamlit as st

from vae_core.maps import latent_tools as lt, map_plane

from . import cache, images, state, widgets
from .components.sliders import latent_sliders, slider_state
from .explore_ui import browser_decoder

TILE_SCALE = 3  # nearest-neighbour upscaling of the small images in these panels


@st.cache_resource(show_spinner=False, max_entries=8)
def code_neighbours(m: cache.Source, d: cache.Source) -> lt.CodeNeighbours:
    """The k-d tree over every code mu of (model, data): built once (0.2 s at 100k x 64), asked per click."""
    return lt.CodeNeighbours(cache.encoded(m, d).mu)


def _caption(data, i: int, dist: float | None = None) -> str:
    label = f", label {data.y[i]}" if data.y is not None else ""
    return f"#{i}{label}" + (f", d = {dist:.2f}" if dist is not None else "")


def neighbours_ui(m: cache.Source, d: cache.Source, data, sel: int | None, select) -> None:
    """The selected point's k nearest codes, with images, distances and label agreement; a click selects one.

    sel: the page's selected point (None: a hint to pick one). select(idx): the page's way to make a
    point the selected one.
    """
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
    """Groups a vector can join: each label value, each factor value and each saved map selection,
    as name -> (N,) mask."""
    out: dict[str, np.ndarray] = {}
    if data.y is not None:
        names = data.meta.get("classes")
        for c in np.unique(data.y):
            name = names[int(c)] if names is not None and int(c) < len(names) else str(c)
            out[f"label {name}"] = data.y == c
    for j, fname in enumerate(data.factor_names):
        for v in np.unique(data.factors[:, j]):
            out[f"{fname} = {v}"] = data.factors[:, j] == v
    n = len(data)
    for name, rows in (st.session_state.get(state.SAVED_SELECTIONS) or {}).items():
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if rows.size and rows.min() >= 0 and rows.max() < n:  # rows of other data never join
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            out[f"selection {name}"] = mask
    return out


def strength_decoder(payload: dict, base: np.ndarray, vector: np.ndarray) -> dict:
    """An in-browser MLP decoder (`browser_decoder.mlp_decoder_payload`) of z = base + s * vector, as a
    decoder of the strength s alone: its first layer W z + b becomes (W vector) s + (W base + b).

    Exact (one affine map folded into another), so the slider panel's browser decoder paints
    decode(base + s * vector) from one input; only the first layer is new, the others are the
    payload's own base64 strings. The id covers the payload, base and vector; `base_id` is the
    payload's id, so a browser holding this model's deeper layers is sent the first layer alone
    (`components.base.decoder_fields`).
    """
    first = payload["layers"][0]
    out_dim, in_dim = first["shape"]
    w = np.frombuffer(base64.b64decode(first["w"]), dtype="<f4").reshape(out_dim, in_dim).astype(np.float64)
    b = np.frombuffer(base64.b64decode(first["b"]), dtype="<f4").astype(np.float64)
    base, vector = np.asarray(base, np.float64), np.asarray(vector, np.float64)
    if base.shape != (in_dim,) or vector.shape != (in_dim,):
        raise ValueError(f"base and vector must have the decoder's {in_dim} dimensions, got {base.shape} and "
                         f"{vector.shape}")

    def b64(a: np.ndarray) -> str:
        return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")

    layer = {"w": b64(w @ vector), "b": b64(w @ base + b), "shape": [out_dim, 1], "relu": first["relu"]}
    digest = hashlib.sha1(f"{payload['id']}:{layer['w']}:{layer['b']}".encode()).hexdigest()[:16]
    return {**payload, "id": digest, "base_id": payload["id"], "layers": [layer, *payload["layers"][1:]]}


def _strength() -> float:
    """The strength the panel last reported (handled once, by its seq), else the one held."""
    ss = st.session_state
    got = slider_state(state.ATTR_SLIDER)
    if got is not None and got["seq"] > int(ss.get(state.ATTR_ACK, 0)):
        if len(got["values"]) == 1 and np.isfinite(got["values"][0]):
            ss[state.ATTR_STRENGTH] = float(got["values"][0])
        ss[state.ATTR_ACK] = got["seq"]
    return float(ss[state.ATTR_STRENGTH])


@st.fragment
def strength_caption(strength: float, in_browser: bool) -> str:
    """What the strength's caption says: the value the button below sends, and when it changes."""
    if in_browser:
        return (f"Strength {strength:g} is sent by the button below. The picture follows the slider as you "
                "drag; this number catches up when you let go.")
    return f"Strength {strength:g} is sent by the button below; each step of the slider is decoded here."


@widgets.guarded
def _strength_ui(mdl, m: cache.Source, d: cache.Source, base: np.ndarray, v: np.ndarray, start: str) -> None:
    """The strength slider and decode(base + strength * v), decoded where the latent sliders decode:
    in the browser at every step where the decoder runs there (browser decoding on), else here per step."""
    ss = st.session_state
    strength = _strength()
    z = lt.apply_vector(base, v, strength).astype(np.float32)
    payload = browser_decoder(m, d, affine={"base": base, "vector": v})
    if payload is None or payload.get("kind") == "onnx":
        decoder = payload  # an ONNX graph runs z = base + s * vector itself (`onnx_decoder_ref`)
    else:
        decoder = strength_decoder(payload, base, v)
    image = None if decoder is not None else images.png_data_uri(cache.decode(mdl, z[None], scale=1)[0])
    latent_sliders(state.ATTR_SLIDER, kind="strength", caption=f"{start} + strength x vector",
                   dims=[{"j": 0, "label": "strength", "collapsed": False,
                          "help": "0: the point itself; 1: moved by the full difference of the two means"}],
                   z=[strength], z_version=0, image=image, decoder=decoder, ack=int(ss.get(state.ATTR_ACK, 0)),
                   view_size=160)
    st.caption(strength_caption(strength, decoder is not None))
    if st.button("Send this code to the sliders", key="vec_to_sliders",
                 help="The latent sliders above take this code: move any dimension from there"):
        state.set_z(z.tolist())
        st.rerun()  # the sliders are another fragment: redraw the page so they show it


def attribute_vector_ui(mdl, m: cache.Source, d: cache.Source, data, enc, sel: int | None) -> None:
    """From group A to group B: the difference of their mean codes, added to the selected point's code."""
    st.caption("An attribute vector is the difference between the average code of one group and that of "
               "another (Latent Space Cartography). Add it to a point's code and decode: the image moves "
               "from A towards B. Strength 1 moves group A's average exactly onto group B's. Groups are "
               "labels, factor values and the selections you saved on the map.")
    groups = _groups(data)
    if len(groups) < 2:
        st.info("This data has no labels or factors to form groups from; save two selections on the map "
                "to make a vector between them.")
        return
    names = list(groups)
    c1, c2 = st.columns(2)
    ss = st.session_state  # A and B start on the first two groups; a loaded session may set them
    if ss.get(state.VEC_GROUP_A) not in names:
        ss[state.VEC_GROUP_A] = names[0]
    if ss.get(state.VEC_GROUP_B) not in names:
        ss[state.VEC_GROUP_B] = names[1]
    a = c1.selectbox("From group A", names, **state.setting_widget(state.VEC_GROUP_A_PICK, state.VEC_GROUP_A,
                                                                    "index", names))
    b = c2.selectbox("To group B", names, **state.setting_widget(state.VEC_GROUP_B_PICK, state.VEC_GROUP_B,
                                                                  "index", names))
    try:
        v = lt.attribute_vector(enc.mu, groups[a], groups[b])
    except ValueError as e:
        st.warning(str(e))
        return
    base = enc.mu[sel] if sel is not None else lt.group_mean(enc.mu, groups[a], "group A")
    start = f"point #{sel}" if sel is not None else f"the mean code of {a}"
    strengths = np.linspace(-2, 2, 9)
    strip = cache.decode(mdl, lt.vector_strip(base, v, strengths).astype(np.float32), scale=TILE_SCALE)
    left, right = st.columns([2, 5])
    with left:
        _strength_ui(mdl, m, d, np.asarray(base, np.float32), np.asarray(v, np.float32), start)
    right.image(images.grid(strip, ncol=len(strengths), pad=2),
                caption=f"Along the vector from {start}: strength {strengths[0]:g} to {strengths[-1]:g} "
                        f"(|vector| = {np.linalg.norm(v):.2f})")
    right.download_button("Vector (JSON)", on_click="ignore", mime="application/json",
                          file_name="attribute_vector.json", key="vec_json",
                          data=lt.vector_json(v, {"from": a, "to": b, "dataset": data.name}))
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
    st.image(img, caption=f"{n} x {n} codes decoded over the {cache.MAP_NAMES[proj.method]} map"
                          + (f"; {far} tile(s) lie far from any encoded point" if far and not exact else ""))
    widgets.image_downloads_ui("manifold", png=lambda: images.png_bytes(img))
