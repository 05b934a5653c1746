"""Driving the real app's sidebar with AppTest: shared by the upload, bad-input and pairing tests."""
from __future__ import annotations

import io

import numpy as np
from streamlit.testing.v1 import AppTest
from paths import ROOT  # the repository root (tests/paths.py)

HOME = str(ROOT / "streamlit_app.py")


def open_app() -> AppTest:
    """The app's Home page in a fresh session, run once, with no exception."""
    at = AppTest.from_file(HOME, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, key: str, name: str, data: bytes) -> AppTest:
    """Give the sidebar's file uploader `key` ("upload_model" or "upload_data") a file, and rerun."""
    at.file_uploader(key=key).set_value((name, data, "application/octet-stream"))
    return at.run()


def text(elements) -> str:
    """The values of AppTest elements (errors, infos, ...) as one string."""
    return " ".join(e.value for e in elements)


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def point_box(at: AppTest):
    """Explore's "Point" box. Its key carries a version (`state.point_box_key`: another control that
    selects a point gives the box a new key), so it is found by its label."""
    boxes = [b for b in at.number_input if b.label == "Point"]
    assert len(boxes) == 1, [b.label for b in at.number_input]
    return boxes[0]


def _picker(at: AppTest, label: str):
    boxes = [b for b in at.sidebar.selectbox if b.label == label]
    assert len(boxes) == 1, [b.label for b in at.sidebar.selectbox]
    return boxes[0]


def model_picker(at: AppTest):
    """The sidebar's model picker. Its key carries a version (`state.picker_keys`: a pair changed by
    anything but the pickers gives both new keys), so it is found by its label."""
    return _picker(at, "Model")


def data_picker(at: AppTest):
    """The sidebar's data picker (found by its label, as `model_picker`)."""
    return _picker(at, "Data")


def decode_toggle(at: AppTest):
    """Explore's "Decode in the browser" toggle. Its key carries a version (`state.setting_widget`: the
    app turning browser decoding off or back on gives it a new key), so it is found by its label."""
    toggles = [t for t in at.toggle if t.label == "Decode in the browser"]
    assert len(toggles) == 1, [t.label for t in at.toggle]
    return toggles[0]


def selectbox(at: AppTest, label: str):
    """The one selectbox of the page labelled `label` (a versioned widget's key changes: `state.setting_widget`)."""
    boxes = [b for b in at.selectbox if b.label == label]
    assert len(boxes) == 1, [b.label for b in at.selectbox]
    return boxes[0]
