"""The sidebar (model and data pickers, uploads) and `open_page`, which every page calls first."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import streamlit as st

from vae_core import data as vdata
from vae_core.errors import sentence
from vae_core.limits import check_bytes, limits

from . import cache, messages, selection, startup, state, widgets

MODEL_TYPES = ["ts", "pt", "pth", "jit", "torchscript", "zip"]
DATA_TYPES = ["npz", "npy", "csv", "zip"]


def data_dir_files() -> list[str]:
    """The data files (.npz, .npy, .csv, .zip) in the server's folder VAE_EXPLORER_DATA_DIR, by name:
    offered in the data picker to every session, read only, through the same checks as an upload
    (a large .npy is read from there in batches instead of uploaded)."""
    root = Path(os.environ.get("VAE_EXPLORER_DATA_DIR") or "")
    if not str(root) or str(root) == "." or not root.is_dir():
        return []
    return sorted(str(f) for f in root.iterdir()
                  if f.suffix.lower().lstrip(".") in DATA_TYPES and not f.name.startswith(".") and f.is_file())


def _upload_help() -> str:
    mb = st.get_option("server.maxUploadSize")
    return (f"Up to {mb} MB per file. Larger data: ask the server's admin to put it in the data folder "
            "(VAE_EXPLORER_DATA_DIR, where a large .npy is read in batches), or use the CLI "
            "(python -m vae_core diagnose MODEL --data FILE).")


def _on_pick(key: str) -> None:
    """A pick in the sidebar; a value that arrives for a replaced picker (a rerun the browser sent before
    the pair it shows changed) changes nothing."""
    wanted = state.picked(key)
    if wanted:
        selection.select(**wanted)


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
    upload = st.session_state.get(state.UPLOAD + kind)
    if upload is None:
        return
    if kind == "model" and limits().public:
        st.session_state[state.PICK_ERROR] = "Model uploads are turned off on this server (VAE_EXPLORER_PUBLIC is set)."
        return
    from vae_core.runs import checkpoints  # here: it imports torch; the sidebar draws without it

    path = None
    try:
        path = _save_upload(upload, kind)
        if kind == "model" and checkpoints.is_run_zip(path):  # a zipped run directory
            path = checkpoints.extract_run_zip(path, cache.uploads_dir() / "runs")
        elif kind == "model":  # a zip of torch.export or ONNX programs, or TorchScript; loads in a worker only
            # refuses pickles and anything else, never unpickles; the pairing that follows takes the loaded
            # model over (cache.check_model_file), so no second worker starts
            cache.check_model_file(cache.source(str(path)))
        else:
            vdata.load_dataset(str(path))  # every data check of the CLI
    except Exception as e:  # the app's edge: a stranger's file may raise anything; the state is kept
        # the user knows the file by its name, not by where (or under which saved name) the server keeps it
        why = messages.for_user(sentence(e), {str(path): upload.name, path.name: upload.name} if path else None)
        if upload.name not in why:
            why = f"{upload.name}: {why}"
        st.session_state[state.PICK_ERROR] = f"Upload refused, nothing changed: {why}"
        st.session_state[state.PAIR_NOTE] = None
        return
    registry = st.session_state[state.UPLOADED_MODELS if kind == "model" else state.UPLOADED_DATA]
    registry[upload.name] = str(path)  # kept in this session's lists whatever the pairing decides
    if kind == "model":
        selection.select(model_src=str(path))
    else:
        selection.select(data_src=str(path))


def sidebar_picker() -> tuple[cache.Source, cache.Source | None]:
    """The model and data picker shared by every page; returns the active (model, data) sources
    (data None while a model waits for data of its shape)."""
    ss = st.session_state
    runs = cache.run_choices()
    model_opts = runs + [p for p in ss[state.UPLOADED_MODELS].values() if p not in runs]
    if ss[state.MODEL_SRC] not in model_opts:
        model_opts.append(ss[state.MODEL_SRC])
    data_opts = list(vdata.BUILTIN) + data_dir_files()
    data_opts += [p for p in ss[state.UPLOADED_DATA].values() if p not in data_opts]
    if ss[state.DATA_SRC] is not None and ss[state.DATA_SRC] not in data_opts:
        data_opts.append(ss[state.DATA_SRC])
    # The widgets show the active pair on every run of every page (a page switch or a refused pick can
    # never leave them showing another): when it changed by anything but them, both get new keys holding
    # it (state.picker_keys says why they are never written once drawn).
    model_key, data_key = state.pickers_for_pair()
    selection.recheck_refusal()  # e.g. the missing model has just been trained
    with st.sidebar:
        st.subheader("Model and data")
        st.selectbox("Model", model_opts, key=model_key, index=state.shown_index(state.PICK_MODEL, model_opts),
                     format_func=selection.label, on_change=_on_pick,
                     args=(model_key,),
                     help="A run under runs/ or a model you uploaded; data that fits it is picked with it")
        st.selectbox("Data", data_opts, key=data_key, index=state.shown_index(state.PICK_DATA, data_opts),
                     format_func=selection.label, on_change=_on_pick,
                     args=(data_key,),
                     placeholder="no data of this model's shape yet",
                     help="A built-in dataset, a file of the server's data folder or one you uploaded; a model "
                     "that takes it is picked with it")
        if ss.get(state.PICK_ERROR):  # under the pickers, where the eye is after a pick or an upload
            st.error(messages.for_user(ss[state.PICK_ERROR]))
        if ss.get(state.PAIR_NOTE):
            st.info(ss[state.PAIR_NOTE], icon=":material/sync_alt:")
        with st.expander("Upload a model or data", expanded=ss[state.DATA_SRC] is None,
                         key="xp_upload"):
            if limits().public:
                st.caption("Model uploads are turned off on this server; data uploads are checked and kept "
                           "to your session.")
            else:
                st.file_uploader("Model: a .zip of torch.export (.pt2) or ONNX programs, a TorchScript file, "
                                 "or a zipped run directory", type=MODEL_TYPES,
                                 key=state.UPLOAD + "model", on_change=_on_upload, args=("model",),
                                 help="encode(x) -> (mu, logvar) and decode(z) -> mean. A .zip holds encode.pt2 and "
                                 "decode.pt2 (torch.export.save) or encode.onnx and decode.onnx, with an optional "
                                 "meta.json (likelihood, scale, input_shape, latent_dim); TorchScript (torch.jit.save) "
                                 "is deprecated upstream but still taken. The model runs in a separate process with "
                                 "memory and time limits; pickles are refused")
            st.file_uploader("Data (.npz, .npy, .csv, .zip of images)", type=DATA_TYPES, key=state.UPLOAD + "data",
                             on_change=_on_upload, args=("data",), help=_upload_help())
    d = ss[state.DATA_SRC]
    return cache.source(ss[state.MODEL_SRC]), (cache.source(d) if d is not None else None)


def active_model_ui(m: cache.Source, d: cache.Source | None):
    """Load the active pair; on failure (or while the model waits for data) say why and stop this page."""
    if d is None:
        st.info(f"{selection.label(m.src)} is active, with no data yet: {selection.needed_data_text(m.src)}.",
                icon=":material/upload_file:")
        st.stop()
    try:
        return cache.model_for(m, d), cache.dataset(d)
    except Exception as e:  # the app's edge
        why = messages.for_user(sentence(e))
        st.error(f"{selection.label(m.src)} on {selection.label(d.src)} cannot be shown: {why} "
                 "Pick another model or data in the sidebar.")
        st.stop()


def encoded_ui(m: cache.Source, d: cache.Source, note: str = "", partial: bool = False) -> cache.Encoded:
    """The data encoded by the active model (`cache.encoded_job`: a progress bar while it runs, and the
    page stops there; with `partial`, a page that can draw from the first images' codes gets those under
    the bar, `Encoded.n_of` saying how many of how many); on failure (a user's model giving NaN on some
    images, say) the sentence and the page stops."""
    try:
        job = cache.encoded_job(m, d)
    except (ValueError, RuntimeError) as e:  # the app's edge: CheckpointError, DataError are ValueErrors
        job = None
        why = sentence(e)
    if job is not None and job.done.is_set() and job.error is not None:
        why = job.error
    elif job is not None:
        return widgets.job_result_ui(job, note=note, partial=partial)
    st.error(f"{selection.label(m.src)} on {selection.label(d.src)} cannot be shown: {messages.for_user(why)} "
             "Pick another model or data in the sidebar.")
    st.stop()


def open_page(title: str, *, need_model: bool = True, need_data: bool = True):
    """Every page's first lines: page config, state defaults, the sidebar picker and, with
    need_model, the active model and data (the page stops with the reason if they don't fit).
    Without need_data (Train) the page also draws while a model waits for data.

    Returns (model source, data source, model, dataset); the last two are None without need_model.
    """
    st.set_page_config(page_title=f"{title} · VAE Latent Explorer", layout="wide")
    why = startup.settings_error()
    if why:  # the server refuses to start on it; a page run in a process whose settings went bad says so too
        st.error(f"This server is misconfigured: {why}, then restart the server.", icon=":material/error:")
        st.stop()
    state.init()
    state.count_page_run(title)
    from . import share_ui  # imports this module's data_dir_files

    share_ui.open_link()  # a link's run and data, once per session, before the pickers draw
    m, d = sidebar_picker()
    share_ui.remember_pair(m, d)
    if title != "Explore":  # Explore writes its whole view at the end of its run
        share_ui.write_url(with_view=False)
    cache.hold_pair(m, d)  # the session's model worker and uploaded data stay while active here (or elsewhere)
    if need_model or (need_data and d is None):
        mdl, data = active_model_ui(m, d)
    else:
        mdl, data = None, None
    return m, d, (mdl if need_model else None), (data if need_model else None)
