"""Where the repository is, for every test module: `from paths import ROOT`.

A plain module rather than a fixture, because test modules use the root at import time (module
constants such as the entry script's path). pytest imports test modules in its default `prepend`
mode (pytest.ini sets no other), which puts `tests/` on `sys.path` when it loads `tests/conftest.py`,
so `paths` resolves from `tests/` and from `tests/browser/` alike.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository root (holds streamlit_app.py)
