"""The vendored onnxruntime-web files (static/onnxruntime-web/) are the ones SOURCE.txt records, the app
serves static/ (no download at run time), and nothing else of the package is shipped."""
from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "static" / "onnxruntime-web"
WASM_PATH_FILES = {"ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"}


def test_files_match_their_recorded_sha256():
    source = (VENDOR / "SOURCE.txt").read_text()
    recorded = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})\s+(\S+)$", source, re.M))
    assert set(recorded) == WASM_PATH_FILES
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert re.search(r"^onnxruntime-web 1\.30\.0 ", source, re.M)
    assert "MIT" in (VENDOR / "LICENSE").read_text()
    assert {p.name for p in VENDOR.iterdir()} == WASM_PATH_FILES | {"LICENSE", "SOURCE.txt"}


def test_app_serves_static_folder():
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["enableStaticServing"] is True
    assert (REPO / "streamlit_app.py").exists() and VENDOR.parent == REPO / "static"  # served at /app/static/
