"""Session-state keys as constants, and `init()`, which every page calls first.

A page opened directly by URL works because `init()` sets every default: the shipped run
`runs/default` on `mnist`, with no click.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
RUNS_DIR = Path(os.environ.get("VAE_EXPLORER_RUNS") or ROOT / "runs")  # tests point it at a tmp dir
DEFAULT_RUN = RUNS_DIR / "default"
DEFAULT_DATA = "mnist"

# What the sidebar picker selected (shared by all pages of one session)
# Changed only by `selection.select` (the one place that changes the active pair)
MODEL_SRC = "model_src"  # str: a run directory or a TorchScript file path
DATA_SRC = "data_src"  # str | None: a dataset id or a data file path; None while a model waits for data
PAIR_NOTE = "pair_note"  # str | None: what select() switched to make a pair, shown in the sidebar
PICK_ERROR = "picker_error"  # str | None: why the last pick or upload was refused (the pair was kept)
PICK_WANTS = "picker_wants"  # str | None: the data a refused pick wanted a model for (PICK_ERROR says so)
PICK_MODEL = "pick_model"  # + version: the sidebar's model selectbox (shows MODEL_SRC; see picker_keys)
PICK_DATA = "pick_data"  # + version: the sidebar's data selectbox (shows DATA_SRC)
UPLOADED_MODELS = "uploaded_models"  # dict label -> path: this session's uploads only
UPLOADED_DATA = "uploaded_data"  # dict label -> path
SELECTED = "selected_point"  # int | None: index into the shown data
Z = "z"  # list[float]: the code the sliders decode
Z_VERSION = "z_version"  # int: bumped when Z is set from outside the sliders, so they re-read it
MAP_METHOD = "map_method"  # str: the map's method (pca, tsne, umap), shown by the "Map" control
MAP_DIMS = "map_dims"  # int: 2 or 3, shown by the "View" control
MAP_COLOR = "map_color"  # str: what colours the map, shown by the "Colour by" box
MAP_METHOD_PICK = "map_method_pick"  # + version: the "Map" control (shows MAP_METHOD; see setting_widget)
MAP_DIMS_PICK = "map_dims_pick"  # + version: the "View" control (shows MAP_DIMS)
MAP_COLOR_PICK = "map_color_pick"  # + version: the "Colour by" box (shows MAP_COLOR)
BROWSER_DECODE = "browser_decode"  # bool: decoders run in the browser, MLPs in JS, others as ONNX (off: the server decodes)
DECODE_TOGGLE = "decode_toggle"  # + version: the "Decode in the browser" toggle (shows BROWSER_DECODE; see setting_widget)
BROWSER_DECODE_WANTED = "_browser_decode_wanted"  # bool: the user's toggle choice, kept while a model cannot use it
IWAE_K = "diag_iwae_k"  # int or "auto": the Diagnose page's IWAE k; the Blurriness page reuses the same report
DIAG_BUDGET = "diag_budget"  # float: the Diagnose page's time budget (s); the Blurriness page reuses the report
UPLOAD = "upload_"  # + "model" / "data": the sidebar's file uploaders

# The Train page's own keys
TRAIN_JOB = "train_job_id"  # str | None: this session's training job id (only this session knows it)
TRAIN_ERROR = "train_form_error"  # str | None: why the last submit did not start
TRAIN_FIELD = "tr_"  # + a config field's name: the Train form's control of that option
TRAIN_REPLAY_RUN = "train_replay_run"  # str: the "Run to replay" picker (a run directory)
TRAIN_REPLAY_OPENED_FOR = "train_replay_opened_for"  # str: the finished job whose run the picker was moved to
SWEEP_ON = "sweep_on"  # bool: the "β sweep" option (explorer/sweep_ui.py): the form's Train queues one run per β
SWEEP_BETAS = "sweep_betas"  # str: the sweep's βs, comma-separated
SWEEP_JOB = "sweep_job"  # str: this session's β sweep job id

# The Compare page's own keys
COMPARE_RUNS = "cmp_runs"  # list[str]: the runs picked for comparison
COMPARE_POINTS = "cmp_n"  # int: Compare's evaluation points (a declared diagnose option, `diagnose_ui.option_ui`)
COMPARE_K = "cmp_k"  # int: Compare's IWAE k
COMPARE_SEED = "cmp_seed"  # int: Compare's seed
SWEEP_PICK = "sweep_pick"  # str: the β sweep (a directory name under runs/) Compare draws
# Compare's two linked maps (explorer/linked_maps_ui.py)
LINK_SEL = "cmp_link_sel"  # np.ndarray (N,) bool | None: the selected rows, shared by both maps
LINK_FROM = "cmp_link_from"  # int | None: the side (0 left, 1 right) the last selection was made on
LINK_REV = "cmp_link_rev"  # int: bumped on every new selection, so both charts take it (plotly's selectionrevision)
LINK_CHART = "cmp_link_map_"  # + "0" / "1": the two charts' selection state
LINK_PICK = "cmp_link_pick_"  # + "0" / "1": which run each side shows
LINK_METHOD = "cmp_link_method"  # the linked maps' method (pca, tsne, umap)
LINK_ALIGN = "cmp_link_align"  # bool: the right map aligned to the left one

# The Explore page's own keys
POINT_PICK = "point_pick"  # + version: the "Point" number input (shows SELECTED; see point_box_key)
VERSIONS = "widget_versions"  # dict: a versioned widget's key stem -> the version its key ends with (see renew)
SHOWN = "widget_shown"  # dict: a versioned widget's key stem -> the value its current key was made with (its default)
PAGE_RUN = "page_run"  # (int, str): this session's full page runs so far (open_page counts them), and the page
DRAWN = "versioned_drawn"  # dict: a versioned widget's key stem -> the PAGE_RUN that last drew it
PAGE_ENDED = "page_run_ended"  # int: the last PAGE_RUN count whose run ended, not cut short by a rerun
PAD = "pad"  # the drag pad's component state
MAP_VIEW = "latent_map"  # the map element's component state (what it holds, the last click)
PAD_SEL = "pad_sel"  # (map key, int | None): the map and selection the pad's marker was last moved to
PAD_BOUNDS = "_pad_bounds"  # (map content key, (x0, x1, y0, y1)): the pad's bounds, once per map
SLIDERS = "latent_sliders"  # the slider panel's component state
ONNX_LOADER = "onnx_loader"  # the ONNX loader's component state: {"status": {id, state, reason, ms}}
SLIDERS_ACK = "latent_sliders_ack"  # int: the last vector seq the sliders handled
TOOL_TAB = "tool_tab"  # str | None: the code tools' open tab (Neighbours, Traversals, ...)
TOOL_TABS = "tool_tabs"  # + version: the code tools' tabs (show TOOL_TAB; see setting_widget)
NEIGHBOURS_K = "neighbours_k"  # int: how many nearest codes the neighbours panel shows
# Box/lasso selections on the map, kept by name for the selection panel and attribute vectors:
# dict name -> np.ndarray of int64 row indices into the active data (emptied when the pair changes)
SAVED_SELECTIONS = "saved_selections"
MAP_THUMBS = "map_thumbs"  # bool: the map draws each point's image in place of its dot when zoomed in
MAP_DENSITY = "map_density"  # bool: the 2-D map shows a contour layer of point density
SELECTION_NAME = "selection_name"  # str: the name the selection panel keeps the current selection under
ATTR_SLIDER = "attr_strength_slider"  # the attribute vector's strength panel's component state
ATTR_ACK = "attr_strength_ack"  # int: the last strength seq that panel's Python side handled
ATTR_STRENGTH = "attr_strength"  # float: the strength applied to the attribute vector
VEC_GROUP_A = "vec_group_a"  # str: the attribute vector's group A, shown by the "From group A" box
VEC_GROUP_B = "vec_group_b"  # str: its group B, shown by the "To group B" box
VEC_GROUP_A_PICK = "vec_group_a_pick"  # + version: the "From group A" box (shows VEC_GROUP_A; see setting_widget)
VEC_GROUP_B_PICK = "vec_group_b_pick"  # + version: the "To group B" box (shows VEC_GROUP_B)

# The link and the session file (explorer/share_ui.py, explorer/view_link.py)
LINK_PARAMS = "_link_params"  # dict | None: the query parameters the session opened with, until Explore applies them
LINK_NOTES = "link_notes"  # list[str]: what of the link or the loaded session could not be applied, and why
LINK_BASE = "_link_base"  # dict: the active pair's link values {"run", "data"} and the kept parameters
SESSION_UPLOAD = "session_upload"  # the "Load a session" file uploader
# Find and filter (share_ui.filter_ui): the map's filters
FIND_POINT = "find_point"  # int | None: the "Find point" number input
FILTER_LABELS = "filter_labels"  # list: label values kept (empty: all)
FILTER_FACTOR = "filter_factor"  # str: the factor filtered on ("none": off)
FILTER_FACTOR_VALUES = "filter_factor_values"  # list: that factor's values kept
FILTER_FROM = "filter_from"  # int | None: the first row kept
FILTER_TO = "filter_to"  # int | None: the last row kept
FILTER_KL = "filter_kl"  # (float, float): per-point KL range kept
FILTER_RECON = "filter_recon"  # (float, float): per-point reconstruction-error range kept
FILTER_MODE = "filter_mode"  # "Filter" (hide the rest) or "Highlight" (grey the rest)


def init() -> None:
    """Set every default this session lacks; safe to call on every rerun of every page."""
    defaults = {
        MODEL_SRC: str(DEFAULT_RUN),
        DATA_SRC: DEFAULT_DATA,
        PAIR_NOTE: None,
        PICK_ERROR: None,
        UPLOADED_MODELS: {},
        UPLOADED_DATA: {},
        SELECTED: None,
        Z: None,
        Z_VERSION: 0,
        VERSIONS: {},
        PAGE_RUN: (0, ""),
        DRAWN: {},
        MAP_METHOD: "pca",
        MAP_DIMS: 2,
        MAP_COLOR: "label",
        SAVED_SELECTIONS: {},
        ATTR_STRENGTH: 1.0,
        MAP_THUMBS: False,
        MAP_DENSITY: False,
        # ?decode=server starts a session with server-side decoding (benchmarks/load.py uses it)
        BROWSER_DECODE: st.query_params.get("decode") != "server",
    }
    for k, v in defaults.items():
        if k not in st.session_state:
            st.session_state[k] = v


def first_value(key: str, value) -> None:
    """Give the widget of session-state name `key` its first value (kept once the session has one):
    the way a control built from a declaration (`diagnose_ui.option_ui`) starts at its default."""
    st.session_state.setdefault(key, value)


def versioned_key(stem: str) -> str:
    """The key now of the versioned widget `stem` (`renew`)."""
    return f"{stem}{st.session_state.setdefault(VERSIONS, {}).get(stem, 0)}"


def renew(stem: str, value) -> str:
    """A new key for the versioned widget `stem`, drawn with `value` as its default, and that key.

    A widget whose value the app sets (a point selected on the map shown in the "Point" box, the pair an
    upload made shown in the pickers, a link's view shown in the map's controls, browser decoding turned
    back on when a decoder is ready) gets a new key instead of the value written into its drawn key: a
    rerun the browser sent before that write reached it carries the old widget's old value, and
    Streamlit took it as the user's choice (the selection undone, the old pair picked back, a copied
    3-D link shown in 2-D). A value for a replaced key changes nothing; its state goes when no run draws it.

    The value travels as the widget's default (`shown`), never written into the session state: Streamlit
    sends a value written there only with the run that wrote it, and a run's elements can be dropped
    before they reach the browser (a run that ends while the next is already asked for: the next run's
    start clears what was not yet sent). The run after it draws the same key without the value, and the
    browser, meeting that widget for the first time, drew it at its default. A default is in every run's
    copy of the widget, the "Point" box's included: a number box whose default is a number cannot be
    emptied by the user (emptied, it returns its default), so a "Clear" button beside it deselects."""
    versions = st.session_state.setdefault(VERSIONS, {})
    versions[stem] = versions.get(stem, 0) + 1
    st.session_state.setdefault(SHOWN, {})[stem] = value
    return versioned_key(stem)


def shown(stem: str):
    """The value the versioned widget `stem`'s current key was made with: draw it as the widget's default
    (`renew`)."""
    return st.session_state.get(SHOWN, {}).get(stem)


def shown_index(stem: str, options: list) -> int | None:
    """`shown` as a selectbox's `index` into `options` (None: nothing picked)."""
    value = shown(stem)
    return options.index(value) if value in options else None


def point_box_key() -> str:
    """The "Point" box's key now; another control that selects a point (the map, "Find point", a link, a
    new pair) renews it holding the point (`renew`; the sliders' Z_VERSION does the same for the code)."""
    return versioned_key(POINT_PICK)


def picker_keys() -> tuple[str, str]:
    """The sidebar pickers' keys now (model, data); when the pair changes by anything but a picker (an
    upload, a link, a refused or completed pick, a new run), `renew_pickers` gives both new keys holding
    the pair (`renew`)."""
    return versioned_key(PICK_MODEL), versioned_key(PICK_DATA)


def count_page_run(page: str) -> None:
    """A full run of `page` begins (every page's `open_page`)."""
    st.session_state[PAGE_RUN] = (st.session_state[PAGE_RUN][0] + 1, page)


def page_run_ended() -> None:
    """The full run `count_page_run` counted last has ended: finished, stopped (`st.stop`) or failed with
    its sentence, but not cut short by a rerun (the entry script says so; AppTest runs a page without it,
    so there every run renews the versioned widgets)."""
    st.session_state[PAGE_ENDED] = st.session_state.get(PAGE_RUN, (0, ""))[0]


def _live(widget: str) -> bool:
    """Whether the browser holds versioned `widget` as it is now, and it is marked drawn by this run: the
    previous full run drew it on this page and ended. Streamlit forgets a widget a run did not draw, and
    a sidebar widget drawn by another page is another widget. And a run cut short by a rerun (the
    browser's reports come fast while a page loads) may have stopped before the widget was sent: the
    next run, not writing its value, had the browser draw it at its default (the "Point" box empty, two
    boxes on the page for a moment, while its point was selected). Such a widget is drawn anew, its key
    renewed, holding its value."""
    ss = st.session_state
    run, page = ss[PAGE_RUN]
    last = ss[DRAWN].get(widget)
    ss[DRAWN][widget] = (run, page)
    if last is None or last[1] != page:
        return False
    return last[0] == run or (last[0] == run - 1 and ss.get(PAGE_ENDED) == run - 1)


def pickers_for_pair() -> tuple[str, str]:
    """The pickers' keys (model, data), renewed first when they do not show the active pair or are
    drawn anew."""
    ss = st.session_state
    model_key, data_key = picker_keys()
    if not _live(PICK_MODEL) or (ss.get(model_key), ss.get(data_key)) != (ss[MODEL_SRC], ss[DATA_SRC]):
        renew_pickers()
    return picker_keys()


def point_box_for(point: int | None) -> dict:
    """The "Point" box's key and default for this run, to pass to the box: the current key, or, when the
    box is drawn anew (Explore left and opened again, a run cut short), a new one holding `point`, the
    selected point. The point travels as the box's default, in every run's copy of it (`renew`): written
    into the session state instead, it travelled only with the run that wrote it, and when that run's
    elements were dropped the browser drew the box empty and sent "empty" back, which took the selection
    away (1 fresh-clone run in 8 of tests/browser/test_attribute_slider.py)."""
    if not _live(POINT_PICK):
        renew(POINT_PICK, point)
    return {"key": point_box_key(), "value": shown(POINT_PICK)}


def setting_widget(stem: str, setting: str, default: str = "default", options: list | None = None) -> dict:
    """The key, default and callback, for this run, of the versioned widget `stem` that shows and edits
    session `setting` (the map's method, 2-D/3-D and colouring, the open tool tab, browser decoding, the
    attribute vector's groups), to pass to the widget:
    `st.toggle(label, **state.setting_widget(stem, setting, "value"))`. `default`
    names the widget's default argument ("default", "value", or "index" into `options`). The key is
    renewed, holding the setting, when the app changed the setting (a link or a loaded session applied,
    browser decoding turned off for a model that cannot use it) or the widget is drawn anew."""
    value = st.session_state.get(setting)
    key = versioned_key(stem)
    if not _live(stem) or st.session_state.get(key, shown(stem)) != value:
        key = renew(stem, value)
    first = shown(stem) if options is None else shown_index(stem, options)
    return {"key": key, default: first, "on_change": took, "args": (stem, key, setting)}


def took(stem: str, key: str, setting: str) -> None:
    """A widget drawn with `setting_widget` changed: its value becomes the session's `setting`. A value
    for a replaced widget (a rerun the browser sent before the app's new value reached it) changes
    nothing."""
    if key == versioned_key(stem):
        st.session_state[setting] = st.session_state[key]


def picked(key: str) -> dict[str, str | None]:
    """What a pick in picker `key` asks of the pair ({"model_src": ...} or {"data_src": ...}); nothing
    for a replaced picker (a value a rerun the browser sent before the pair changed still held)."""
    model_key, data_key = picker_keys()
    if key == model_key:
        return {"model_src": st.session_state[model_key]}
    if key == data_key:
        return {"data_src": st.session_state[data_key]}
    return {}


def renew_pickers() -> None:
    """New sidebar pickers showing the active pair."""
    renew(PICK_MODEL, st.session_state[MODEL_SRC])
    renew(PICK_DATA, st.session_state[DATA_SRC])


def renew_point_box(point: int | None) -> None:
    """A new "Point" box, holding `point`."""
    renew(POINT_PICK, point)


def clear_selection() -> None:
    """No point selected, and an empty "Point" box (a new pair, or a view without a point)."""
    st.session_state[SELECTED] = None
    renew_point_box(None)


def set_z(z: list[float]) -> None:
    """Point the sliders at a new code (selected point, random draw, reset)."""
    st.session_state[Z] = [float(v) for v in z]
    st.session_state[Z_VERSION] += 1
