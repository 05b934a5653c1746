"""The Explore page's panels: the map, the drag pad, the selected point, sliders, grids.

Each `*_ui()` draws one panel and returns what the page needs next. Torch work goes through
`cache` (decode under inference_mode); the page itself stays a list of calls.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from vae_core.maps import map_plane
from vae_core.maps.map_plane import THUMB_BUDGET, density_grid, thumbnail_layout, thumbnail_sheet
from vae_core.metrics.collapse import KL_THRESHOLD  # the one KL-per-dimension threshold (nats)

from . import cache, figures, images, state, widgets
from .components.browser_decoder import onnx_decoder_ref
from .components.onnx_runtime import onnx_runtime, onnx_status
from .components.latent_map import THUMBS_IN_VIEW, MapLayer, clicked, latent_map, selected_rows, thumbs_payload
from .components.pad import MAX_DRAWN, latent_pad, pad_state
from .components.sliders import latent_sliders, slider_state

SCALE = 5  # nearest-neighbour upscaling of decoded images for display


def _z_png(mdl, z: np.ndarray, scale: int = SCALE) -> np.ndarray:
    return cache.decode(mdl, z[None], scale=scale)[0]


# --- map ----------------------------------------------------------------------------------------

def map_controls_ui(data) -> tuple[str, int, str]:
    """Method, 2-D/3-D and colouring of the map."""
    ss = st.session_state
    c1, c2, c3 = st.columns([2, 1, 2])
    method = c1.segmented_control("Map", ["pca", "tsne", "umap"], required=True,
                                  format_func={"pca": "PCA (instant)", "tsne": "t-SNE", "umap": "UMAP"}.get,
                                  help="PCA is a linear view with an exact way back to latent codes; t-SNE "
                                       "and UMAP keep neighbours together but only have a local inverse.",
                                  **state.setting_widget(state.MAP_METHOD_PICK, state.MAP_METHOD, "default"))
    dims = c2.segmented_control("View", [2, 3], required=True, format_func=lambda k: f"{k}-D",
                                **state.setting_widget(state.MAP_DIMS_PICK, state.MAP_DIMS, "default"))
    options = (["label"] if data.y is not None else []) + list(data.factor_names) + \
        ["reconstruction error", "KL", "none"]
    if ss.get(state.MAP_COLOR) not in options:
        ss[state.MAP_COLOR] = options[0]
    color = c3.selectbox("Colour by", options,
                         **state.setting_widget(state.MAP_COLOR_PICK, state.MAP_COLOR, "index", options))
    t1, t2, _ = st.columns([1, 1, 3])
    t1.toggle("Thumbnails", key=state.MAP_THUMBS,
              help=f"Draw each point's image in place of its dot once at most {THUMBS_IN_VIEW:,} points are in "
                   "view: scroll on the map to zoom in. Hovering a point always shows its image.")
    t2.toggle("Density", key=state.MAP_DENSITY, disabled=dims == 3,
              help="Contour lines of how densely the points lie on the 2-D map (a smoothed 2-D histogram).")
    return method or "pca", int(dims or 2), color


def map_projection_ui(m, d, method: str, dims: int):
    """The finished map for (method, dims); PCA meanwhile, with progress, while t-SNE/UMAP compute."""
    job = cache.map_job(m, d, method, dims)
    if job.done.is_set() and job.error is None:
        return job.result
    if job.error is not None:
        st.error(f"The {cache.MAP_NAMES[method]} map failed: {job.error}. Showing PCA.")
    else:
        _progress_fragment(job)
    return cache.map_job(m, d, "pca", dims).result


@st.fragment(run_every=1.0)
def _progress_fragment(job: cache.Job) -> None:
    from . import jobs

    if job.done.is_set():
        st.rerun()  # the whole page, now with the finished map
    # the job's own name and stage ("Computing the UMAP map: UMAP's layout, epoch 120 of 500 (62%).")
    st.progress(job.progress, text=jobs.status_text(job) + " Showing PCA meanwhile.")


def color_values(data, enc, color: str) -> tuple[np.ndarray | None, bool, tuple[str, ...] | None]:
    """(values, categorical, class names) for the map colouring."""
    if color == "label":
        return data.y, True, data.meta.get("classes")
    if color in data.factor_names:
        return data.factors[:, data.factor_names.index(color)], True, None
    if color == "reconstruction error":
        return enc.recon_err, False, None
    if color == "KL":
        return enc.kl, False, None
    return None, False, None


def _thumbs_layer(d: cache.Source, data) -> MapLayer:
    """Every point's image in one sprite sheet, built only while the browser lacks this data's."""
    def build() -> dict:
        # only the rows the sheet holds are read and converted (a large file: batch by batch)
        n, (c, h, w) = len(data), tuple(data.x.shape[1:])
        count = thumbnail_layout(n, h, w, 3 if c == 3 else 1)[3]
        return thumbs_payload(thumbnail_sheet(images.to_uint8(data.x, stop=count), n=n), n)
    return MapLayer(f"thumbs-{d.fp}", build)


def _density_layer(m: cache.Source, d: cache.Source, proj) -> MapLayer:
    """The density contour of a 2-D map, over the area the pad shows, built once per map."""
    def build() -> str:
        xs, ys, dens = density_grid(proj.embedding_, pad_bounds(m, d, proj), bins=80)
        return go.Figure(data=[figures.map_density_trace(xs, ys, dens)]).to_json()
    return MapLayer(f"{map_id(m, d, proj)}-density", build)


def _thumbs_note(data) -> str:
    """What the thumbnails are, in words: shrunk and how far, and which rows have one."""
    n, (c, h, w) = len(data), tuple(data.x.shape[1:])
    f, th, tw, count = thumbnail_layout(n, h, w, 3 if c == 3 else 1)
    note = ""
    if f > 1:
        note += (f" At {n:,} points each image is shrunk {f}x (to {th} x {tw} pixels) so that all of them "
                 f"travel once as one picture of at most {THUMB_BUDGET / 2**20:.0f} M pixels.")
    if count < n:
        note += f" Only the first {count:,} rows have a thumbnail; hovering the others says so."
    return note


def map_ui(m: cache.Source, d: cache.Source, proj, data, enc, color: str, sel: int | None,
           posterior: np.ndarray | None, shown: np.ndarray | None = None,
           highlight: bool = False) -> np.ndarray | None:
    """The scatter (2-D or 3-D); a click on a point selects it, hovering shows its image, a box or
    lasso selects points. The N points and their images travel to the browser once per map and
    colouring (`components/latent_map.py`); each rerun sends only the selected point's ring and
    its posterior cloud (sel: the selected point, the page's). shown: the rows the filters keep
    (`share_ui.filter_ui`), None for all; with highlight the others are drawn grey. Returns the rows
    of the box/lasso selection, or None."""
    from .map_filter import mask_id

    values, categorical, names = color_values(data, enc, color)
    fitted = getattr(proj, "fitted_", None)  # None: a map cached before fitted_ existed

    def figure() -> str:  # built only when the browser lacks this map (1M points: about 1 s)
        return figures.map_base_figure(proj.embedding_, values, categorical=categorical, color_name=color,
                                       class_names=names, fitted=fitted, shown=shown,
                                       highlight=highlight).to_json()

    overlay = figures.map_overlay_traces(None if sel is None else proj.embedding_[sel], posterior,
                                         three=proj.n_components == 3)
    key, three, ss = map_id(m, d, proj), proj.n_components == 3, st.session_state
    layers = {"thumbs": _thumbs_layer(d, data),
              "density": _density_layer(m, d, proj) if ss[state.MAP_DENSITY] and not three else None}
    fid = f"{key}-{color}" if shown is None else f"{key}-{color}-{mask_id(shown)}-{'h' if highlight else 'f'}"
    latent_map(state.MAP_VIEW, figure_id=fid, figure=figure, overlay=overlay,
               on_click=lambda: _on_map_click(enc), layers=layers, selection_id=key,
               thumbnails_view=bool(ss[state.MAP_THUMBS]))
    how = ("Hover a point to see its image" + ("" if three else "; draw a box or a lasso (the map's tools, top "
           "right) to select points, double-click to clear") + "; scroll to zoom." + _thumbs_note(data))
    if layers["density"] is not None:
        how += " The grey contour lines show where the points are densest."
    st.caption(how)
    if fitted is not None and not fitted.all():
        n_fit, n = int(fitted.sum()), len(fitted)  # the caption says how the map was made, in plain words
        st.caption(f"{cache.MAP_NAMES[proj.method]} was computed from {n_fit:,} of these {n:,} points (a random sample"
                   f"{', the same share of each label' if data.y is not None else ''}); the other "
                   f"{n - n_fit:,} were then placed into the finished map, each near the sample points whose "
                   "codes are closest to its own. Placed points are drawn fainter, listed apart in the legend "
                   "(click an entry to hide it) and say so when you hover.")
    return None if three else selected_rows(state.MAP_VIEW, len(data), key)


def _on_map_click(enc) -> None:
    c = clicked(state.MAP_VIEW)
    if c is not None and 0 <= c["index"] < len(enc.mu):
        select_point(c["index"], enc)


def select_point(idx: int, enc, *, from_box: bool = False) -> None:
    """Make point idx the selected one (map, pad, sliders and panels follow); the "Point" box shows it,
    drawn anew unless the box itself chose it (`state.point_box_key`)."""
    st.session_state[state.SELECTED] = int(idx)
    if not from_box:
        state.renew_point_box(int(idx))
    state.set_z(enc.mu[idx].tolist())


def _on_point_pick(enc, key: str) -> None:
    if key != state.point_box_key():  # a box another control has replaced since: its value is stale
        return
    v = st.session_state.get(state.point_box_key())
    if v is not None:
        select_point(int(v), enc, from_box=True)
    else:  # a box made empty, filled and emptied again: no point selected (the marker and the panel go)
        st.session_state[state.SELECTED] = None


# --- drag pad -----------------------------------------------------------------------------------

def _bounds(emb: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = np.percentile(emb, 0.5, axis=0), np.percentile(emb, 99.5, axis=0)
    pad = 0.15 * (hi - lo)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


BROWSER_DECODE_HELP = ("On: the decoder runs in your browser at every move (instant): an MLP decoder in plain "
                       "JavaScript, any other as an ONNX graph under onnxruntime-web (WebAssembly). Off: the "
                       "server decodes each position.")


def browser_decode_reason(mdl, m: cache.Source, d: cache.Source) -> str | None:
    """Why the active model's decoder cannot run in the browser, or None when it can: an MLP decoder's
    weights (`cache.decoder_payload`), else its ONNX graph (`cache.onnx_decoder`, whose reason says why
    not: an export that failed or was not exact, a graph over 100 MB, a user's model whose worker
    cannot export)."""
    if cache.decoder_payload(m, d) is not None:
        return None
    return cache.onnx_decoder(m, d)[1]


def decode_toggle_ui(mdl, m: cache.Source, d: cache.Source) -> bool:
    """The "Decode in the browser" toggle: off and disabled, with the reason, when the model's decoder
    cannot run in the browser. The user's own choice is kept and comes back with a model that can.

    The setting is BROWSER_DECODE; the toggle shows it under a versioned key (`state.setting_widget`):
    when an ONNX export finished and the toggle came back on, a rerun the browser had sent meanwhile
    carried the disabled toggle's "off", and the toggle then showed on while the server decoded for good.

    For an ONNX decoder it also draws the page's ONNX loader (`components/onnx_runtime.py`), which makes
    the browser's session once; until it is ready the server decodes, and if WebAssembly fails the
    caption says why."""
    ss = st.session_state
    reason = browser_decode_reason(mdl, m, d)
    if reason is None:
        if state.BROWSER_DECODE_WANTED in ss:
            ss[state.BROWSER_DECODE] = bool(ss.pop(state.BROWSER_DECODE_WANTED))
        st.toggle("Decode in the browser", help=BROWSER_DECODE_HELP,
                  **state.setting_widget(state.DECODE_TOGGLE, state.BROWSER_DECODE, "value"))
        on = bool(ss[state.BROWSER_DECODE])
        # One container whatever it holds, so the elements after it (the pad) keep their place in the
        # page when the loader or a caption comes or goes: a moved component is drawn anew.
        with st.container():
            if on and cache.decoder_payload(m, d) is None:
                status = onnx_runtime(state.ONNX_LOADER, cache.onnx_decoder(m, d)[0]) or {}
                if status.get("state") == "error":
                    st.caption(f"Decoding on the server: your browser could not run the decoder with "
                               f"onnxruntime-web (WebAssembly): {status.get('reason') or 'no reason given'}.")
                elif status.get("state") != "ready":
                    st.caption("Loading the decoder into your browser (onnxruntime-web); the server decodes "
                               "meanwhile.")
        return on
    if state.BROWSER_DECODE_WANTED not in ss:
        ss[state.BROWSER_DECODE_WANTED] = bool(ss[state.BROWSER_DECODE])
    ss[state.BROWSER_DECODE] = False
    st.toggle("Decode in the browser", disabled=True,
              help=f"Off and unavailable: {reason} The server decodes each position.",
              **state.setting_widget(state.DECODE_TOGGLE, state.BROWSER_DECODE, "value"))
    with st.container():
        st.caption(f"Decoding on the server: {reason}")
        if reason == cache.ONNX_PREPARING:  # the page comes back with the browser's decoder when it is ready
            widgets.rerun_when_done(cache.onnx_decoder_job(m, d))
    return False


def browser_decoder(m: cache.Source, d: cache.Source, affine: dict | None = None) -> dict | None:
    """The decoder the pad and the sliders run in the browser, or None where the server decodes: the MLP
    payload (`cache.decoder_payload`), else a reference to the ONNX session the page's loader reported
    ready; None when the user turned browser decoding off. affine: see `onnx_decoder_ref`."""
    if not st.session_state[state.BROWSER_DECODE]:
        return None
    mlp = cache.decoder_payload(m, d)
    if mlp is not None:
        return mlp
    payload = cache.onnx_decoder(m, d)[0]
    status = onnx_status(state.ONNX_LOADER)
    if payload is None or not status or status.get("id") != payload["id"] or status.get("state") != "ready":
        return None
    return onnx_decoder_ref(payload, affine)


def _decoder_payload(m: cache.Source, d: cache.Source) -> dict | None:
    """The active model's in-browser decoder (`browser_decoder`)."""
    return browser_decoder(m, d)


def map_id(m: cache.Source, d: cache.Source, proj) -> str:
    """A content key of a map: the model's and the data's fingerprints, the method and the dimensions
    (a map is a function of these: the t-SNE/UMAP seed is fixed). The pad re-sends its points when it changes."""
    return f"{m.fp}-{d.fp}-{proj.method}-{proj.n_components}"


def _pad_bounds(key: str, emb: np.ndarray) -> tuple[float, float, float, float]:
    """`_bounds` of the map, computed once per map (by its content key) rather than on every drag update."""
    memo = st.session_state.get(state.PAD_BOUNDS)
    if memo is None or memo[0] != key:
        memo = (key, _bounds(emb))
        st.session_state[state.PAD_BOUNDS] = memo
    return memo[1]


def pad_bounds(m: cache.Source, d: cache.Source, proj) -> tuple[float, float, float, float]:
    """The area of a 2-D map the pad shows (x0, x1, y0, y1): the decoded manifold covers the same."""
    return _pad_bounds(map_id(m, d, proj), proj.embedding_)


def pad_plane(proj, sel: int | None, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The plane the pad walks on an exact (PCA) 2-D map: (origin (D,), axes (2, D)) with
    z = origin + x*a0 + y*a1. With a selected point it passes through that point's full code at the
    point's map position (the marker decodes its reconstruction); without one, through the mean (the
    PCA plane). None on a t-SNE/UMAP map: no directions to walk, the local inverse decodes there."""
    lin = cache.linear_inverse(proj)
    if lin is None:
        return None
    if sel is None:
        return lin
    origin = map_plane.plane_through(lin[1], proj.embedding_[sel], mu[sel])
    return origin.astype(np.float32), lin[1]


@st.fragment
@widgets.guarded
def pad_ui(mdl, m: cache.Source, d: cache.Source, proj, labels: np.ndarray | None, sel: int | None) -> None:
    """Drag through the 2-D map; the decoder answers at once (in the browser where it runs there). A new
    selected point `sel` (the page's) moves the marker there."""
    emb = proj.embedding_
    s = pad_state(state.PAD)
    key = map_id(m, d, proj)
    pos = tuple(emb[sel]) if sel is not None else tuple(np.median(emb, axis=0))
    x, y = (s["x"], s["y"]) if s else pos
    # a new selection, or another map (t-SNE/UMAP coordinates are not PCA's), moves the marker there
    if st.session_state.get(state.PAD_SEL) != (key, sel):
        st.session_state[state.PAD_SEL] = (key, sel)
        x, y = pos
    plane = pad_plane(proj, sel, cache.encoded(m, d).mu)
    _, dist = proj.inverse(np.array([[x, y]]))
    if plane is not None:  # exact: the plane's own code at the marker, as the browser computes it
        z = (plane[0] + x * plane[1][0] + y * plane[1][1])[None].astype(np.float32)
    else:
        z, _ = proj.inverse(np.array([[x, y]]))
    payload = _decoder_payload(m, d) if plane is not None else None
    common = dict(points=emb, colors=labels,  # the labels are listed only when the map is sent
                  points_id=key, bounds=_pad_bounds(key, emb), pos=(float(x), float(y)),
                  ack=s["seq"] if s else 0, size=300, view_size=150)
    if payload is not None:
        latent_pad(state.PAD, decoder=payload, origin=plane[0], axes=plane[1], **common)
        how = "decoded in your browser at every move"
    else:
        latent_pad(state.PAD, image=images.png_data_uri(_z_png(mdl, z[0], 1)), **common)
        how = "decoded by the server, at most two requests in flight"
    far = float(dist[0])
    where = "among the data" if far < 2 else ("near the data" if far < 5 else "far from any encoded data: "
                                                                            "the decoder was never trained here")
    if plane is not None and sel is not None:
        kind = (f"the plane through point {sel}'s full code along the map's two directions: at the point the "
                "marker shows its own reconstruction")
    elif plane is not None:
        kind = "the PCA plane through the mean code; select a point to walk through its own code"
    else:
        kind = (f"local inverse, as {cache.MAP_NAMES[proj.method]} has no directions to walk along: each position "
                "decodes a weighted mean of the nearest codes, on a point that point's own code")
    share = "each label in its share" if labels is not None else "at random"
    shown = f" The pad draws {MAX_DRAWN:,} of the {len(emb):,} points, {share}." if len(emb) > MAX_DRAWN else ""
    st.caption(f"Drag the marker ({how}; {kind}). Distance from data {far:.1f} ({where}).{shown}")
    if st.button("Send this point to the sliders", key="pad_to_sliders"):
        state.set_z(z[0].tolist())
        st.rerun()  # the sliders live in another fragment: redraw the page so they show it


# --- selected point -----------------------------------------------------------------------------

def posterior_samples(enc, idx: int, n: int, seed: int = 0) -> np.ndarray:
    """n draws z = mu + sigma * eps of the point's posterior (the reparameterisation trick): (n, D)."""
    rng = np.random.default_rng(seed + idx)
    eps = rng.standard_normal((n, enc.mu.shape[1])).astype(np.float32)
    return enc.mu[idx] + np.exp(0.5 * enc.logvar[idx]) * eps


def selected_point_ui(mdl, data, enc, collapsed: list[int], idx: int | None) -> None:
    """Original, reconstruction, the code (mu, sigma per dim) and samples from q(z|x) of point idx (the
    page's selected point; None: the box to pick one)."""
    st.subheader("The selected point")
    c0, c1, _ = st.columns([2, 1, 5], vertical_alignment="bottom")
    box = state.point_box_for(idx)  # the point is the box's default (state.renew)
    c0.number_input("Point", 0, len(data) - 1, **box, on_change=_on_point_pick, args=(enc, box["key"]),
                    placeholder="click the map or type a number",
                    help="Click a point on the map, or type its number")
    if idx is not None:
        # the box, whose default is the point, cannot be emptied (state.point_box_for): this deselects
        c1.button("Clear", key="clear_point", on_click=state.clear_selection, help="Select no point")
    if idx is None:
        st.info("Click a point on the map (or type its number) to see its code, its reconstruction and "
                "what q(z|x) draws.")
        return
    x = images.to_uint8(data.x[idx:idx + 1])[0]
    label = f" (label {data.y[idx]})" if data.y is not None else ""
    cols = st.columns([1, 1, 3])
    cols[0].image(images.upscale(x, SCALE), caption=f"original #{idx}{label}")
    cols[1].image(_z_png(mdl, enc.mu[idx]), caption="reconstruction: decode(mu)")
    sigma = np.exp(0.5 * enc.logvar[idx])
    cols[2].plotly_chart(figures.code_figure(enc.mu[idx], sigma, collapsed), key="code_fig")
    cols[2].caption(f"Its code: the encoder gives a mean mu and a spread sigma per dimension (grey band: the "
                    f"prior's +-1). KL of this point {enc.kl[idx]:.1f} nats, reconstruction error "
                    f"{enc.recon_err[idx]:.1f} nats.")
    zs = posterior_samples(enc, idx, 8)
    draws = images.grid(cache.decode(mdl, zs, scale=3), ncol=8, pad=3)
    st.image(draws, caption="Eight draws z = mu + sigma * eps, eps ~ N(0, I): the reparameterisation trick, "
                            "made visible. The black cloud on the map is 200 such draws.")
    widgets.image_downloads_ui(f"posterior_draws_{idx}", png=lambda: images.png_bytes(draws))


# --- latent sliders -----------------------------------------------------------------------------



@st.fragment
@widgets.guarded
def sliders_ui(mdl, m: cache.Source, data_src: cache.Source, enc, order: np.ndarray, collapsed: set[int],
               sel: int | None) -> None:
    """One slider per dimension, sorted by KL; the decoded image answers each step.

    A components-v2 panel (`components/sliders.py`): where the decoder runs in the browser (an MLP, or
    an ONNX graph) the browser decodes every step and reports z on release; otherwise each step comes
    here (one in flight) and the PNG goes back. The buttons set z through `state.set_z`, whose new version the panel adopts.
    """
    ss = st.session_state
    d = enc.mu.shape[1]
    if ss[state.Z] is None or len(ss[state.Z]) != d:
        state.set_z([0.0] * d)
    # The browser's vector first, so a button pressed in the same run wins.
    got = slider_state(state.SLIDERS)
    handled = int(ss.get(state.SLIDERS_ACK, 0))
    if got is not None and got["seq"] > handled:
        if got["version"] == ss[state.Z_VERSION] and len(got["values"]) == d:
            ss[state.Z] = got["values"]
        handled = got["seq"]  # a vector based on values since replaced is answered, not used
        ss[state.SLIDERS_ACK] = handled
    b = st.columns(3)
    if b[0].button("Reset to 0", help="The prior's mean"):
        state.set_z([0.0] * d)
    if b[1].button("Random from the prior", help="z ~ N(0, I)"):
        state.set_z(np.random.default_rng().standard_normal(d).tolist())
    if b[2].button("Code of the selected point", disabled=sel is None):
        state.set_z(enc.mu[sel].tolist())
    z = np.array(ss[state.Z], dtype=np.float32)
    dims = []
    for j in order:
        j = int(j)
        gone = j in collapsed
        dims.append({"j": j, "label": f"z{j}" + (" (collapsed)" if gone else ""), "collapsed": gone,
                     "help": f"KL {enc.kl_per_dim[j]:.3f} nats." + (
                         f" Collapsed: the encoder puts nothing here (KL below {KL_THRESHOLD:g} nats), so the decoder "
                         "has learned to ignore it; moving it should change little." if gone else "")})
    payload = _decoder_payload(m, data_src)
    image = None if payload is not None else images.png_data_uri(_z_png(mdl, z, 1))
    latent_sliders(state.SLIDERS, dims=dims, z=ss[state.Z], z_version=ss[state.Z_VERSION], image=image,
                   decoder=payload, ack=handled, view_size=224)
    from .share_ui import write_url

    write_url()  # a fragment's run: the address bar follows the pinned code


# --- exports ------------------------------------------------------------------------------------

def export_ui(proj, data, enc) -> None:
    """Downloads of the codes with their map coordinates, and TensorBoard projector files."""
    from vae_core.maps import export

    extra = {"kl": enc.kl, "recon_err": enc.recon_err}
    c1, c2 = st.columns(2)
    c1.download_button(
        "Latent codes + map coordinates (CSV)", on_click="ignore", mime="text/csv",
        file_name=f"codes_{export.file_stem(data.name)}_{proj.method}{proj.n_components}d.csv",
        data=lambda: export.codes_csv(enc.mu, enc.logvar, proj.embedding_, data.y, extra),
        help="One row per image: index, label, map coordinates, mu and sigma per dimension, KL, "
             "reconstruction error")
    meta = {"index": list(range(len(data)))}
    if data.y is not None:
        meta["label"] = data.y.tolist()
    meta["recon_err"] = [f"{v:.2f}" for v in enc.recon_err]
    c2.download_button(
        "TensorBoard projector files (zip)", on_click="ignore", mime="application/zip",
        file_name=f"projector_{export.file_stem(data.name)}.zip",
        data=lambda: export.projector_zip(enc.mu, images.uint8_rows(data.x), meta),
        help="tensors.tsv, metadata.tsv, sprite.png and projector_config.pbtxt: unzip into a folder "
             "and run `tensorboard --logdir FOLDER`")
