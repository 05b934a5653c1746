"""Under CI a missing tool fails the tests that need it; on a laptop they skip (tests/conftest.py).

Run for real: pytest in a subprocess, on the node-based JS test, with a PATH where no `node` exists.
"""
from __future__ import annotations

import os
import subprocess
import sys

from paths import ROOT

NODE_TEST = "tests/browser/test_sender_js.py"


def _pytest_without_node(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path)  # an empty folder: no node, no chromium
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", NODE_TEST, "-q", "-p", "no:cacheprovider", "-rsf"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_node_test_fails_under_ci_without_node(tmp_path):
    run = _pytest_without_node(tmp_path, "true")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "node not found on PATH" in out, out
    assert "1 error" in out or "1 failed" in out, out  # a fixture's pytest.fail is an error at setup


def test_node_test_skips_without_ci_and_without_node(tmp_path):
    run = _pytest_without_node(tmp_path, None)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "1 skipped" in out, out
