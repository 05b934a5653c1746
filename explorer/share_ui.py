"""Share a view: the address bar holds it (`st.query_params`), a "Copy link" button beside the map,
a session saved and loaded as one JSON file, and the map's find-and-filter controls.

The parsing and every check are `explorer/view_link.py` and `explorer/map_filter.py` (pure, unit
tested); this module reads and writes Streamlit's state with what they return.

Order on a page: `open_link()` (in `sidebar.open_page`, before the pickers) keeps the link the session
opened with and switches to its run and data; Explore's `apply_link_view()` applies the view once the
data is encoded (the point and the code are checked against it); `write_url()` at the end of each run
(and of the sliders' fragment) writes the view back, so the address bar follows the user.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from vae_core import data as vdata

from . import cache, map_filter, selection, state, view_link
from .map_filter import MapFilter

TABS = ("Neighbours", "Traversals", "Interpolation", "Prior samples", "Attribute vectors", "Decoded manifold")
VIEW_KEYS = ("method", "dims", "color", "point", "z", "tab")

_copy_link = st.components.v2.component(
    "vae_copy_link",
    html='<div class="vlink" data-testid="copy-link"><button type="button" class="vlink-btn">Copy link</button>'
         '<input class="vlink-url" readonly aria-label="Link to this view"></div>',
    css=".vlink{display:flex;gap:.5rem;align-items:center}.vlink-url{flex:1;min-width:0;font:12px monospace;"
        "padding:.25rem;border:1px solid #ccc;border-radius:.25rem}.vlink-btn{padding:.25rem .75rem;"
        "border:1px solid #bbb;border-radius:.25rem;background:#fff;cursor:pointer}",
    js="""
export default function ({ parentElement }) {
  const btn = parentElement.querySelector(".vlink-btn"), out = parentElement.querySelector(".vlink-url");
  const show = () => { out.value = window.location.href; };
  show();
  btn.onclick = () => {
    show();  // the address bar at the click: Python rewrites it as the user moves
    out.select();
    const done = () => { btn.textContent = "Copied"; setTimeout(() => { btn.textContent = "Copy link"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(out.value).then(done, () => {});
    else { try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected to copy */ } }
  };
}
""")


# --- link values of the active pair ----------------------------------------------------------------

def known_runs() -> dict[str, str]:
    """Link value -> run directory: each run under the runs folder by its folder name."""
    return {Path(p).name: p for p in cache.run_choices()}


def known_data() -> dict[str, str]:
    """Link value -> data source: built-ins by id, the server's data folder's files by name."""
    from .sidebar import data_dir_files

    out = {b: b for b in vdata.BUILTIN}
    for f in data_dir_files():
        out.setdefault(Path(f).name, f)
    return out


def _upload_name(src: str, registry: dict) -> str | None:
    return next((label for label, path in registry.items() if path == src), None)


def link_values(m: cache.Source, d: cache.Source | None) -> tuple[str | None, str | None]:
    """(run, data) as a link names them; "upload:NAME" for an upload."""
    ss = st.session_state
    run = view_link.source_value(m.src, known_runs(), _upload_name(m.src, ss[state.UPLOADED_MODELS])
                                 or Path(m.src).name)
    data = None if d is None else view_link.source_value(d.src, known_data(),
                                                         _upload_name(d.src, ss[state.UPLOADED_DATA]) or Path(d.src).name)
    return run, data


# --- the link ---------------------------------------------------------------------------------------

def open_link() -> None:
    """Once per session, before the sidebar's pickers: keep the link's view for Explore and switch to
    its run and data (an upload, or a name this server lacks: one sentence, the rest is kept)."""
    ss = st.session_state
    if state.LINK_PARAMS in ss:
        return
    params = {k: st.query_params.get(k) for k in st.query_params}
    ss[state.LINK_PARAMS] = params if any(k in params for k in VIEW_KEYS) else None
    ss[state.LINK_NOTES] = []
    m, d, notes = view_link.parse_source(params, known_runs(), known_data())
    if m is not None or d is not None:
        if not selection.select(model_src=m, data_src=d) and ss.get(state.PICK_ERROR):
            notes.append(f"The link's run and data could not be opened together: {ss[state.PICK_ERROR]}")
    ss[state.LINK_NOTES] = notes


def remember_pair(m: cache.Source, d: cache.Source | None) -> None:
    """Keep the active pair's link values for `write_url` (which the sliders' fragment calls too)."""
    run, data = link_values(m, d)
    kept = {k: st.query_params.get(k) for k in view_link.KEPT if k in st.query_params}
    st.session_state[state.LINK_BASE] = {"run": run, "data": data, "kept": kept}


def current_view() -> view_link.View:
    ss = st.session_state
    z = ss.get(state.Z)
    return view_link.View(method=ss.get(state.MAP_METHOD) or "pca", dims=int(ss.get(state.MAP_DIMS) or 2),
                          color=ss.get(state.MAP_COLOR), point=ss.get(state.SELECTED),
                          z=None if z is None else [float(v) for v in z],
                          tab=ss.get(state.TOOL_TAB) if ss.get(state.TOOL_TAB) in TABS else None)


def write_url(with_view: bool = True) -> None:
    """Write the active pair (and with_view, Explore's view) into the address bar, if it changed.
    Nothing while a link's view still waits to be applied (the address bar keeps the link)."""
    ss = st.session_state
    base = ss.get(state.LINK_BASE)
    if not with_view:  # another page than Explore was opened with the link: its view has no page to go to
        ss[state.LINK_PARAMS] = None
    if base is None or ss.get(state.LINK_PARAMS):
        return
    params = view_link.encode(base["run"], base["data"], current_view() if with_view else view_link.View(),
                              kept=base["kept"])
    if not with_view:
        params.pop("color", None)
    if {k: st.query_params.get(k) for k in st.query_params} != params:
        st.query_params.from_dict(params)


def color_options(data) -> list[str]:
    """The map's colourings of this data (the "Colour by" box's options)."""
    return (["label"] if data.y is not None else []) + list(data.factor_names) + \
        ["reconstruction error", "KL", "none"]


def _apply_view(view: view_link.View, enc) -> None:
    from .explore_ui import select_point

    ss = st.session_state
    ss[state.MAP_METHOD], ss[state.MAP_DIMS] = view.method, view.dims
    if view.color is not None:
        ss[state.MAP_COLOR] = view.color
    if view.point is not None:
        select_point(view.point, enc)  # the sliders take its code, unless the view pins another
    else:
        state.clear_selection()
    if view.z is not None:
        state.set_z(view.z)
    if view.tab is not None:
        ss[state.TOOL_TAB] = view.tab


def apply_link_view(data, enc) -> None:
    """On Explore, once the data is encoded: the link's view, each field checked against this data and model."""
    ss = st.session_state
    raw = ss.get(state.LINK_PARAMS)
    if not raw:
        return
    ss[state.LINK_PARAMS] = None
    view, notes = view_link.check_view(raw, n=len(data), latent_dim=int(enc.mu.shape[1]),
                                       colors=color_options(data), tabs=TABS)
    _apply_view(view, enc)
    ss[state.LINK_NOTES] = list(ss.get(state.LINK_NOTES) or []) + notes


def _dismiss_notes() -> None:
    st.session_state[state.LINK_NOTES] = []


def notes_ui() -> None:
    """What of the link or the loaded session could not be applied: one sentence each, until dismissed."""
    notes = st.session_state.get(state.LINK_NOTES) or []
    if not notes:
        return
    st.warning(" ".join(notes), icon=":material/link_off:")
    st.button("Dismiss", key="link_notes_dismiss", on_click=_dismiss_notes)


def copy_link_ui() -> None:
    """The "Copy link" button and the link it copies (the address bar: the view as it is now)."""
    _copy_link(key="copy_link", height="content", width="stretch")


# --- the session file ------------------------------------------------------------------------------

def _session_fields(m, d, data, enc) -> dict:
    """What the session file holds, read now: the download's callable runs later, outside this script run
    (no session state there), and turns these into JSON only when the button is pressed."""
    ss = st.session_state
    run, dat = ss[state.LINK_BASE]["run"], ss[state.LINK_BASE]["data"]  # this run's pair (`remember_pair`)
    vector = None
    if ss.get(state.VEC_GROUP_A) and ss.get(state.VEC_GROUP_B):
        vector = {"from": ss[state.VEC_GROUP_A], "to": ss[state.VEC_GROUP_B],
                  "strength": float(ss.get(state.ATTR_STRENGTH, 1.0))}
    return dict(run=run or "", data=dat or "", n=len(data), latent_dim=int(enc.mu.shape[1]), view=current_view(),
                selections=dict(ss[state.SAVED_SELECTIONS]), vector=vector)


def _on_session_upload(m, d, data, enc) -> None:
    from .latent_tools_ui import _groups

    ss = st.session_state
    upload = ss.get(state.SESSION_UPLOAD)
    if upload is None:
        return
    try:
        if upload.size > view_link.SESSION_MAX_BYTES:  # refused before it is read
            raise view_link.SessionError(f"Session refused: {upload.name} is {upload.size / 2**20:.1f} MB, more "
                                         f"than the {view_link.SESSION_MAX_BYTES // 2**20} MB a session file may have.")
        run, dat = link_values(m, d)
        sess, notes = view_link.load_session(upload.getvalue(), run=run or "", data=dat or "", n=len(data),
                                             latent_dim=int(enc.mu.shape[1]), colors=color_options(data), tabs=TABS)
    except view_link.SessionError as e:
        ss[state.LINK_NOTES] = [f"{upload.name}: {e}"]
        return
    _apply_view(sess.view, enc)
    ss[state.SAVED_SELECTIONS] = dict(sess.selections)
    if sess.vector is not None:
        groups = _groups(data)
        if sess.vector["from"] in groups and sess.vector["to"] in groups:
            ss[state.VEC_GROUP_A], ss[state.VEC_GROUP_B] = sess.vector["from"], sess.vector["to"]
            ss[state.ATTR_STRENGTH] = sess.vector["strength"]
        else:
            notes.append(f"The session's attribute vector from {sess.vector['from']!r} to {sess.vector['to']!r} "
                         "names a group this data lacks, so the vector's groups stay as they were.")
    ss[state.LINK_NOTES] = [f"Loaded the session {upload.name}."] + notes


def session_ui(m, d, data, enc) -> None:
    """Save the session (the view, kept selections, the attribute vector) as one JSON file, or load one."""
    with st.expander("Save or load this session", key="xp_session"):
        st.caption("One JSON file: the map's view, the selected point and the pinned code, the open tab, the "
                   "kept selections (their rows) and the attribute vector's groups and strength. It loads only "
                   "on the same run and data.")
        c1, c2 = st.columns(2)
        run, dat = st.session_state[state.LINK_BASE]["run"], st.session_state[state.LINK_BASE]["data"]
        # The file's bytes, not a callable: Streamlit gives a deferred download a new id on every run and
        # drops the old one when any session's run ends, so a click while this page reran (a job ending,
        # the decoder's session becoming ready) found nothing and downloaded nothing. Bytes keep one id
        # (their hash) from run to run. A session is small (its kept rows as ints), so making it each run is cheap.
        c1.download_button("Save session (JSON)", on_click="ignore", mime="application/json", key="session_save",
                           file_name=f"session_{run}_{dat}.json".replace(":", "-").replace("/", "-"),
                           data=view_link.session_json(**_session_fields(m, d, data, enc)).encode())
        c2.file_uploader("Load a session (JSON)", type=["json"], key=state.SESSION_UPLOAD,
                         on_change=_on_session_upload, args=(m, d, data, enc),
                         help=f"A file saved here, at most {view_link.SESSION_MAX_BYTES // 2**20} MB; only JSON is read")


# --- find and filter -------------------------------------------------------------------------------

def _on_find(enc) -> None:
    from .explore_ui import select_point

    v = st.session_state.get(state.FIND_POINT)
    if v is not None and 0 <= int(v) < len(enc.mu):
        select_point(int(v), enc)


def _range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    return float(np.floor(finite.min() * 100) / 100), float(np.ceil(finite.max() * 100) / 100)


def _range_slider(label: str, key: str, values: np.ndarray, help: str) -> tuple[float, float] | None:
    lo, hi = _range(values)
    if hi <= lo:
        return None
    got = st.slider(label, lo, hi, (lo, hi), step=max((hi - lo) / 500, 1e-6), key=key, help=help)
    return None if (got[0] <= lo and got[1] >= hi) else (float(got[0]), float(got[1]))


def filter_ui(data, enc) -> tuple[np.ndarray | None, bool]:
    """Find a point by its row; filter (or highlight) the map by label, factor value, row range, KL and
    reconstruction error. Returns (the rows kept as an (N,) mask, None when no filter is on; highlight)."""
    ss, n = st.session_state, len(data)
    active = bool(ss.get(state.FILTER_LABELS)) or bool(ss.get(state.FILTER_FACTOR_VALUES)) or \
        ss.get(state.FILTER_FROM) is not None or ss.get(state.FILTER_TO) is not None
    c0, c1 = st.columns([1, 4])
    c0.number_input("Find point", 0, n - 1, value=None, key=state.FIND_POINT, on_change=_on_find, args=(enc,),
                    placeholder="row number", help="Select the point of this row: the map rings it")
    with c1.expander("Find and filter", expanded=active, key="xp_filter"):
        c2, c3 = st.columns(2)
        labels = factor = None
        if data.y is not None:
            names = data.meta.get("classes")
            opts = [v.item() if hasattr(v, "item") else v for v in np.unique(np.asarray(data.y))]
            picked = c2.multiselect("Labels", opts, key=state.FILTER_LABELS, placeholder="all labels",
                                    format_func=lambda v: str(names[int(v)]) if names is not None and
                                    int(v) < len(names) else str(v))
            labels = tuple(picked) if picked else None
        if data.factor_names:
            fname = c3.selectbox("Factor", ["none", *data.factor_names], key=state.FILTER_FACTOR)
            if fname != "none":
                j = data.factor_names.index(fname)
                vals = [v.item() for v in np.unique(data.factors[:, j])]
                picked = c3.multiselect(f"{fname} values", vals, key=state.FILTER_FACTOR_VALUES, placeholder="all")
                factor = (j, tuple(picked)) if picked else None
        r1, r2, r3, r4 = st.columns([1, 1, 2, 2])
        lo = r1.number_input("Rows from", 0, n - 1, value=None, key=state.FILTER_FROM, placeholder="0")
        hi = r2.number_input("to", 0, n - 1, value=None, key=state.FILTER_TO, placeholder=f"{n - 1}")
        index = None if lo is None and hi is None else (int(lo or 0), int(n - 1 if hi is None else hi))
        with r3:
            kl = _range_slider("KL (nats)", state.FILTER_KL, enc.kl, "Keep the points whose KL lies in this range")
        with r4:
            recon = _range_slider("Reconstruction error (nats)", state.FILTER_RECON, enc.recon_err,
                                  "Keep the points whose reconstruction error lies in this range")
        f = MapFilter(index=index, labels=labels, factor=factor, kl=kl, recon=recon)
        mode = st.segmented_control("Points outside the filter", ["Filter", "Highlight"], key=state.FILTER_MODE,
                                    default="Filter", help="Filter: hide them. Highlight: draw them grey.")
        if not f.active:
            st.caption(f"No filter: {map_filter.counts_text(n, n)} points. Click a legend entry to hide its points.")
            return None, False
        mask = map_filter.filter_mask(f, n, y=data.y, factors=data.factors if data.factor_names else None,
                                      kl=enc.kl, recon=enc.recon_err)
        st.caption(f"**{map_filter.counts_text(int(mask.sum()), n)}** points pass the filters; the legend counts "
                   "each entry's share.")
    st.markdown(f"Showing **{map_filter.counts_text(int(mask.sum()), n)}** points", help="Find and filter above")
    return mask, mode == "Highlight"
