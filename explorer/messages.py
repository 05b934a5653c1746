"""Error text for the person at the browser: the server's paths written as the names they know.

Uploads are kept under the uploads folder by content hash (`<uploads>/model-<hash>/x.zip`, a run
zip unpacked into `<uploads>/runs/run-<hash>/`), and a library error names the file it read there.
A person knows the file by the name they uploaded, and a server's layout (home, temp folders) is
nobody else's business: every message a page shows passes through `for_user` first.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Mapping

import streamlit as st

from . import cache, state

_PATH_TAIL = r"(?:/[^\s'\"():;,<>\[\]]*)?"  # the rest of a path: uploads are saved under [A-Za-z0-9._-] names


def session_names() -> dict[str, str]:
    """This session's uploads: server path -> the file name the person uploaded."""
    ss = st.session_state
    uploads = [ss.get(state.UPLOADED_MODELS) or {}, ss.get(state.UPLOADED_DATA) or {}]
    return {path: name for reg in uploads for name, path in reg.items()}


def for_user(text: str, names: Mapping[str, str] | None = None) -> str:
    """`text` with each server path in `names` (and this session's uploads) replaced by the person's
    name for it, runs/ paths made relative, and any other path under the uploads folder, the temp
    folder or the home folder cut to its last part (a file name, never where the server keeps it)."""
    known = {**session_names(), **(names or {})}
    for path, name in sorted(known.items(), key=lambda kv: -len(kv[0])):  # longest first: a folder's files before it
        if path:
            text = text.replace(path, name)
    text = text.replace(f"{state.RUNS_DIR}{os.sep}", "runs/").replace(f"{state.ROOT}{os.sep}", "")
    for root in (str(cache.uploads_dir()), tempfile.gettempdir(), str(Path.home())):
        if len(root) > 1:
            text = re.sub(re.escape(root) + _PATH_TAIL, lambda m: Path(m.group(0)).name or "a server folder", text)
    return text
