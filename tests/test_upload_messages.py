"""A refused upload names the person's file (its uploaded name, or the member inside their zip),
never where the server keeps it (issue 19, item 9): no uploads folder, no home, no temp folder.

Before: a run zip with a 50 MB config.json was refused with
"<uploads>/runs/.run-<hash>.tmp-<x>/config.json is 52,428,802 bytes; ...".
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sidebar import open_app, text, upload
from zips import zip_bytes

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "runs" / "default"
RUN = {f"my run/{n}": (DEFAULT / n).read_bytes() for n in ("config.json", "model.safetensors", "history.csv")}


def _npz_with_text() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.array(["not", "pixels"]))
    return buf.getvalue()


# (uploader, the file's name as uploaded, its bytes, what the message must name)
CASES = {
    "50 MB config.json": ("upload_model", "my run.zip", lambda: zip_bytes({**RUN, "my run/config.json": b" " * (50 << 20)}),
                          ["my run.zip", "my run/config.json", "52,428,800 bytes"]),
    "config.json not JSON": ("upload_model", "my run.zip", lambda: zip_bytes({**RUN, "my run/config.json": b"{nope"}),
                             ["my run.zip", "my run/config.json", "not a valid run config"]),
    "pickled weights": ("upload_model", "my run.zip",
                        lambda: zip_bytes({**RUN, "my run/model.safetensors": b"\x80\x04\x95garbage" * 10}),
                        ["my run.zip", "my run/model.safetensors", "pickle"]),
    "history.csv with text": ("upload_model", "my run.zip",
                              lambda: zip_bytes({**RUN, "my run/history.csv": b"epoch,loss,kl\n1,2,3\n2,3,n/a\n"}),
                              ["my run.zip", "history.csv row 2", "column kl", "'n/a'"]),
    "epoch_codes.npz not a zip": ("upload_model", "my run.zip",
                                  lambda: zip_bytes({**RUN, "my run/epoch_codes.npz": b"PK not a zip"}),
                                  ["my run.zip", "epoch_codes.npz"]),
    "npz of text": ("upload_data", "my data.npz", _npz_with_text, ["my data.npz"]),
    "TorchScript that is not": ("upload_model", "my model.ts", lambda: b"\x00not a model" * 100, ["my model.ts"]),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    uploads = tmp_path_factory.mktemp("srv") / "uploads"
    mp.setenv("VAE_EXPLORER_UPLOADS", str(uploads))
    yield open_app(), uploads
    mp.undo()


@pytest.mark.parametrize("case", list(CASES))
def test_a_refused_upload_names_the_users_file_not_the_servers_path(app, case):
    at, uploads = app
    key, name, make, needles = CASES[case]
    at = upload(at, key, name, make())
    assert not at.exception, [e.value for e in at.exception]
    msg = text(at.error)
    assert msg.startswith("Upload refused, nothing changed: "), msg
    for n in needles:
        assert n in msg, (n, msg)
    for server in (str(uploads), tempfile.gettempdir(), str(Path.home()), "/root", ".tmp-", "run-", "model-",
                   "data-", str(ROOT)):
        assert server not in msg, (server, msg)
    assert at.session_state["model_src"] == str(DEFAULT)  # nothing changed


def test_for_user_writes_server_paths_as_the_names_a_person_knows(tmp_path, monkeypatch):
    from explorer import messages, state

    uploads = tmp_path / "uploads"
    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(uploads))
    saved = f"{uploads}/data-0123456789abcdef/my_x.npz"
    job = f"{tempfile.gettempdir()}/vae-train-k2j3/stderr.log"
    got = messages.for_user(f"{saved}: bad header; see {job} and {uploads}/runs/run-ab12/config.json, "
                            f"{state.RUNS_DIR}/beta4/history.csv, {Path.home()}/.cache/x.bin",
                            {saved: "my x.npz"})
    assert got == ("my x.npz: bad header; see stderr.log and config.json, runs/beta4/history.csv, x.bin")
