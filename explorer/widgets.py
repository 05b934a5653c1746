"""`*_ui()` functions: draw widgets, return typed values. The sidebar picker lives here."""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from pathlib import Path

import streamlit as st

from vae_core import checkpoints, data as vdata
from vae_core.errors import sentence
from vae_core.limits import check_bytes, limits

from . import cache, state

MODEL_TYPES = ["ts", "pt", "pth", "jit", "torchscript", "zip"]
DATA_TYPES = ["npz", "npy", "csv", "zip"]
_ERR = "picker_error"


def label(src: str) -> str:
    """A short name for a model or data source; uploads keep their original file name."""
    p = Path(src)
    if p.is_dir() and p.parent == state.RUNS_DIR:
        return f"runs/{p.name}"
    if p.exists():
        return f"{p.name} (upload)" if cache.uploads_dir() in p.parents else p.name
    return src


def _try_select(model_src: str, data_src: str) -> bool:
    """Select a model/data pair only if they fit; otherwise keep the old pair and say why."""
    try:
        cache.model_for(cache.source(model_src), cache.source(data_src))
    except Exception as e:  # the app's edge: whatever a stranger's file raises becomes one sentence
        st.session_state[_ERR] = (f"Kept {label(st.session_state[state.MODEL_SRC])} on "
                                  f"{label(st.session_state[state.DATA_SRC])}: {label(model_src)} with "
                                  f"{label(data_src)} does not work. {sentence(e)}")
        return False
    st.session_state[state.MODEL_SRC], st.session_state[state.DATA_SRC] = model_src, data_src
    st.session_state[state.SELECTED] = None
    st.session_state[state.Z] = None
    st.session_state[_ERR] = None
    return True


def _on_pick() -> None:
    if not _try_select(st.session_state["pick_model"], st.session_state["pick_data"]):
        st.session_state["pick_model"] = st.session_state[state.MODEL_SRC]
        st.session_state["pick_data"] = st.session_state[state.DATA_SRC]


def _save_upload(upload, kind: str) -> Path:
    """Write an upload as <kind>-<content hash>/<its name> (atomic); refuse it over the size limit."""
    data = upload.getvalue()
    check_bytes(upload.name, len(data), "max_file_mb")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(upload.name).name).lstrip(".") or f"upload.{kind}"
    folder = cache.uploads_dir() / f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}"
    out = folder / name
    if not out.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp-{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, out)
    return out


def _on_upload(kind: str) -> None:
    upload = st.session_state.get(f"upload_{kind}")
    if upload is None:
        return
    if kind == "model" and limits().public:
        st.session_state[_ERR] = "Model uploads are turned off on this server (VAE_EXPLORER_PUBLIC is set)."
        return
    path = None
    try:
        path = _save_upload(upload, kind)
        if kind == "model" and checkpoints.is_run_zip(path):  # a zipped run directory
            path = checkpoints.extract_run_zip(path, cache.uploads_dir() / "runs")
        elif kind == "model":
            checkpoints.load_torchscript(path)  # refuses pickles and non-TorchScript, never unpickles
        else:
            vdata.load_dataset(str(path))  # every data check of the CLI
    except Exception as e:  # the app's edge: a stranger's file may raise anything; the state is kept
        why = sentence(e)
        if path is not None:  # the user knows the file by its name, not by where the server keeps it
            why = why.replace(str(path), upload.name)
        if upload.name not in why:
            why = f"{upload.name}: {why}"
        st.session_state[_ERR] = f"Upload refused, nothing changed: {why}"
        return
    registry = st.session_state[state.UPLOADED_MODELS if kind == "model" else state.UPLOADED_DATA]
    registry[upload.name] = str(path)
    model_src = str(path) if kind == "model" else st.session_state[state.MODEL_SRC]
    data_src = str(path) if kind == "data" else st.session_state[state.DATA_SRC]
    if _try_select(model_src, data_src):
        st.session_state["pick_model"], st.session_state["pick_data"] = model_src, data_src


def sidebar_picker() -> tuple[cache.Source, cache.Source]:
    """The model and data picker shared by every page; returns the active (model, data) sources."""
    ss = st.session_state
    runs = cache.run_choices()
    model_opts = runs + [p for p in ss[state.UPLOADED_MODELS].values() if p not in runs]
    if ss[state.MODEL_SRC] not in model_opts:
        model_opts.append(ss[state.MODEL_SRC])
    data_opts = list(vdata.BUILTIN) + list(ss[state.UPLOADED_DATA].values())
    if ss[state.DATA_SRC] not in data_opts:
        data_opts.append(ss[state.DATA_SRC])
    ss.setdefault("pick_model", ss[state.MODEL_SRC])
    ss.setdefault("pick_data", ss[state.DATA_SRC])
    with st.sidebar:
        st.subheader("Model and data")
        st.selectbox("Model", model_opts, key="pick_model", format_func=label, on_change=_on_pick,
                     help="A run under runs/ or a TorchScript file you uploaded")
        st.selectbox("Data", data_opts, key="pick_data", format_func=label, on_change=_on_pick,
                     help="A built-in dataset or a file you uploaded")
        if ss.get(_ERR):  # under the pickers, where the eye is after a pick or an upload
            st.error(ss[_ERR])
        with st.expander("Upload a model or data"):
            if limits().public:
                st.caption("Model uploads are turned off on this server; data uploads are checked and kept "
                           "to your session.")
            else:
                st.file_uploader("Model: TorchScript file or a zipped run directory", type=MODEL_TYPES,
                                 key="upload_model", on_change=_on_upload, args=("model",),
                                 help="encode(x) -> (mu, logvar) and decode(z) -> mean; it runs in a separate "
                                 "process with memory and time limits; pickles are refused")
            st.file_uploader("Data (.npz, .npy, .csv, .zip of images)", type=DATA_TYPES, key="upload_data",
                             on_change=_on_upload, args=("data",))
    return cache.source(ss[state.MODEL_SRC]), cache.source(ss[state.DATA_SRC])


def active_model_ui(m: cache.Source, d: cache.Source):
    """Load the active pair; on failure show the reason and stop this page (state is kept)."""
    try:
        return cache.model_for(m, d), cache.dataset(d)
    except Exception as e:  # the app's edge
        st.error(f"{label(m.src)} on {label(d.src)} cannot be shown: {sentence(e)} "
                 "Pick another model or data in the sidebar.")
        st.stop()


def open_page(title: str, *, need_model: bool = True):
    """Every page's first lines: page config, state defaults, the sidebar picker and, with
    need_model, the active model and data (the page stops with the reason if they don't fit).

    Returns (model source, data source, model, dataset); the last two are None without need_model.
    """
    st.set_page_config(page_title=f"{title} · VAE Latent Explorer", layout="wide")
    state.init()
    m, d = sidebar_picker()
    mdl, data = active_model_ui(m, d) if need_model else (None, None)
    return m, d, mdl, data


def guarded(fn):
    """The app's edge for a fragment (a fragment rerun does not pass through the page's guard):
    an exception becomes one sentence in place of the fragment, the session state kept."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            logging.getLogger("explorer").exception("fragment failed")
            st.error(f"This panel could not be drawn: {sentence(e)}", icon=":material/error:")
    return wrapper


def image_downloads_ui(name: str, *, png=None, gif=None) -> None:
    """PNG and/or GIF download buttons; the bytes are made only when clicked (callables)."""
    cols = st.columns(6)
    if png is not None:
        cols[0].download_button("Download PNG", png, f"{name}.png", "image/png", on_click="ignore",
                                key=f"dl_{name}_png")
    if gif is not None:
        cols[1].download_button("Download GIF", gif, f"{name}.gif", "image/gif", on_click="ignore",
                                key=f"dl_{name}_gif")
