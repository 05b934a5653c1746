"""The one place that changes the active (model, data) pair: `select`.

A model and data are chosen as a pair. Picking or uploading a model that does not fit the active
data switches the data to one that fits, in the same step, and says so; where no data fits, the
model becomes active alone (data None) and the pages ask for data of its shape. Picking data that
the active model does not take switches to a model that takes it, or keeps the pair and says so
(the upload stays in this session's list either way). Never a deadlock, never a lost upload.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from vae_core import data as vdata
from vae_core.runs import model_zips, run_load
from vae_core.errors import sentence

from . import cache, state

# Item shapes of the built-in datasets, known without loading them.
BUILTIN_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "sprites": (1, 64, 64), "planted": (1, 8, 8)}


def label(src: str) -> str:
    """A short name for a model or data source; uploads keep their original file name."""
    p = Path(src)
    if p.is_dir() and p.parent == state.RUNS_DIR:
        return f"runs/{p.name}"
    if p.exists():
        return f"{p.name} (upload)" if cache.uploads_dir() in p.parents else p.name
    return src


def _shape(s: tuple[int, ...]) -> str:
    return " x ".join(map(str, s))


def data_shape(src: str) -> tuple[int, int, int]:
    return BUILTIN_SHAPES.get(src) or cache.dataset(cache.source(src)).shape


def _declared_shape(model_src: str) -> tuple[int, int, int] | None:
    """(C, H, W) a model says it takes without being loaded: a run's config.json, a model zip's meta.json."""
    if Path(model_src).is_dir():
        return run_load.run_input_shape(model_src)
    return model_zips.declared_input_shape(model_src)


def _fits(model_src: str, data_src: str) -> str | None:
    """None when the pair works (the model loads, encodes and decodes this data); else why not."""
    shape = _declared_shape(model_src)
    if shape is not None and shape != data_shape(data_src):
        return (f"the model takes {_shape(shape)} images, the data is {_shape(data_shape(data_src))}")
    try:
        cache.model_for(cache.source(model_src), cache.source(data_src))
    except Exception as e:  # a stranger's model or file may raise anything: one sentence
        return sentence(e)
    return None


def _data_candidates(model_src: str) -> list[str]:
    """Data to try for a model: this session's uploads (newest first), then the built-ins; those of the
    model's input shape only, when a run (or a model zip's meta.json) says it."""
    ss = st.session_state
    uploads = list(reversed(list(ss[state.UPLOADED_DATA].values())))
    shape = _declared_shape(model_src)
    out = []
    for src in uploads + list(vdata.BUILTIN):
        try:
            if shape is None or data_shape(src) == shape:
                out.append(src)
        except Exception:  # an upload that no longer loads is skipped, never fatal
            continue
    return out


def _model_candidates(data_src: str) -> list[str]:
    """Models to try for data: this session's uploads (newest first), then runs whose config takes its shape."""
    ss = st.session_state
    shape = data_shape(data_src)
    uploads = list(reversed(list(ss[state.UPLOADED_MODELS].values())))
    runs = [r for r in cache.run_choices() if run_load.run_input_shape(r) == shape]
    runs.sort(key=lambda r: Path(r) != state.DEFAULT_RUN)  # the shipped run first
    return [m for m in uploads if not Path(m).is_dir() or run_load.run_input_shape(m) == shape] + runs


def _set(model_src: str, data_src: str | None, note: str | None, error: str | None) -> None:
    ss = st.session_state
    changed = (model_src, data_src) != (ss[state.MODEL_SRC], ss[state.DATA_SRC])
    ss[state.MODEL_SRC], ss[state.DATA_SRC] = model_src, data_src
    if changed:
        state.clear_selection()
        ss[state.Z] = None
        ss[state.SAVED_SELECTIONS] = {}  # their rows index the old data
    ss[state.PAIR_NOTE], ss[state.PICK_ERROR] = note, error
    ss[state.PICK_WANTS] = None


def recheck_refusal() -> None:
    """A data pick refused for want of a model: once a model that takes that data exists (trained on
    the Train page, by the CLI, in another session), the red box gives way to a note saying which.
    Called by the sidebar before it draws, on every page."""
    ss = st.session_state
    wants = ss.get(state.PICK_WANTS)
    if not wants or not ss.get(state.PICK_ERROR):
        return
    try:
        found = next((c for c in _model_candidates(wants) if _fits(c, wants) is None), None)
    except Exception:  # the data is gone or unreadable: the refusal stands
        return
    if found is not None:
        ss[state.PICK_ERROR], ss[state.PICK_WANTS] = None, None
        ss[state.PAIR_NOTE] = (f"{label(found)} takes {label(wants)} now: pick it under Model to use them "
                               "together.")


def select(model_src: str | None = None, data_src: str | None = None) -> bool:
    """Make (model, data) active, the side not given (None) keeping or changing to one that fits.

    Returns True when the active pair changed or was confirmed; on False the old pair stays and
    `state.PICK_ERROR` says why. `state.PAIR_NOTE` says what was switched to make a pair.
    """

    ss = st.session_state
    old_m, old_d = ss[state.MODEL_SRC], ss[state.DATA_SRC]
    kept = f"Kept {label(old_m)} on {label(old_d) if old_d else 'no data'}"
    if model_src is not None and data_src is not None:  # both chosen (e.g. Open in Explore)
        why = _fits(model_src, data_src)
        if why is None:
            _set(model_src, data_src, None, None)
            return True
        ss[state.PICK_ERROR] = f"{kept}: {label(model_src)} with {label(data_src)} does not work. {why}"
        return False
    if model_src is not None:  # a model picked or uploaded: the data follows it
        tried = [old_d] if old_d else []
        tried += [c for c in _data_candidates(model_src) if c not in tried]
        first_why = None
        for cand in tried:
            why = _fits(model_src, cand)
            if why is None:
                note = None if cand == old_d else (f"Switched the data to {label(cand)} "
                                                   f"({_shape(data_shape(cand))}), which {label(model_src)} takes.")
                _set(model_src, cand, note, None)
                return True
            first_why = first_why or why
        if Path(model_src).is_dir() and run_load.run_input_shape(model_src) is None:
            ss[state.PICK_ERROR] = f"{kept}: {label(model_src)} cannot be loaded. {first_why or ''}".strip()
            return False
        if not Path(model_src).is_dir():  # TorchScript: does it load at all (on no particular data)?
            try:
                cache.model(cache.source(model_src), None)
            except Exception as e:
                ss[state.PICK_ERROR] = f"{kept}: {label(model_src)} cannot be used. {sentence(e)}"
                return False
        _set(model_src, None, None, None)
        return True
    if data_src is not None:  # data picked or uploaded: keep the model if it takes it, else find one
        try:  # a file of the server's data folder is read first here (an upload was, when it came)
            data_shape(data_src)
        except Exception as e:  # a stranger's file may raise anything: one sentence, the pair kept
            why = sentence(e).replace(data_src, label(data_src))  # the name, never where the server keeps it
            ss[state.PICK_ERROR] = f"{kept}: {label(data_src)} cannot be used. {why}"
            ss[state.PAIR_NOTE] = None
            return False
        if old_m and _fits(old_m, data_src) is None:
            _set(old_m, data_src, None, None)
            return True
        for cand in _model_candidates(data_src):
            if cand != old_m and _fits(cand, data_src) is None:
                note = (f"Switched the model to {label(cand)}, which takes {label(data_src)} "
                        f"({_shape(data_shape(data_src))}).")
                _set(cand, data_src, note, None)
                return True
        takes = run_load.run_input_shape(old_m) if old_m and Path(old_m).is_dir() else None
        active = f"; {label(old_m)} takes {_shape(takes)}" if takes else ""
        ss[state.PICK_ERROR] = (f"{kept}: no model here takes {label(data_src)} "
                                f"({_shape(data_shape(data_src))} images{active}). Train one on it (Train page: it "
                                "is in the dataset list) or upload a model for it.")
        ss[state.PICK_WANTS] = data_src  # `recheck_refusal` lifts the refusal once a model takes it
        return False
    return False


def needed_data_text(model_src: str) -> str:
    """What to upload for a model that has no data yet."""
    shape = _declared_shape(model_src)
    if shape is not None:
        return f"upload data of shape {_shape(shape)} (C x H x W) in the sidebar"
    return ("upload data this model takes in the sidebar (the model file does not declare its input shape: a "
            "model zip's meta.json can, with input_shape; none of the built-in datasets or your uploads fit it)")
