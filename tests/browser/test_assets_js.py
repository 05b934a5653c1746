"""The components' JS files (`explorer/components/assets/`): each top-level function, class or
constant is defined in one file only, so a copy of shared code (decoder, sender, scaffold) cannot
creep back into a component's file; and each component's assembled module parses (Node, when it
is installed: the `node` fixture of tests/conftest.py skips without it, and fails under CI=true),
which also rejects a name declared twice in one module."""
from __future__ import annotations

import re
import subprocess
from collections import defaultdict

import pytest

from benchmarks.browser import REPO

ASSETS = REPO / "explorer" / "components" / "assets"
# Top level only: a definition starting in column 0 (nested ones are indented).
DEFINITION = re.compile(r"^(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)\s*\("
                        r"|^class\s+([A-Za-z_$][\w$]*)"
                        r"|^(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*=", re.MULTILINE)


def top_level_names(text: str) -> list[str]:
    """Names of the functions, classes and constants defined at the top level of a JS file."""
    return [next(g for g in m.groups() if g) for m in DEFINITION.finditer(text)]


def test_parser_finds_definitions():
    """The parser itself: top-level definitions found, indented ones and calls ignored."""
    js = ("function a(x) {\n  function inner() {}\n  const local = 1;\n}\nasync function b() {}\n"
          "class C {}\nconst D = 2;\nlet e = 3;\na(1);\nexport default function (c) {}\n")
    assert top_level_names(js) == ["a", "b", "C", "D", "e"]


def test_no_js_definition_in_two_files():
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(ASSETS.glob("*.js")):
        for name in top_level_names(path.read_text(encoding="utf-8")):
            where[name].append(path.name)
    # The shared pieces are where the split puts them (and the parser sees them).
    assert where["Sender"] == ["sender.js"]
    assert where["paintLatent"] == ["decoder.js"]
    for name in ("mount", "browserMode", "takeDecoder", "showOutput", "ACK_TIMEOUT_MS"):
        assert where[name] == ["scaffold.js"], name
    repeated = {name: files for name, files in where.items() if len(files) > 1}
    assert not repeated, f"defined in more than one asset file (or twice in one): {repeated}"


@pytest.mark.parametrize("name", ["pad.js", "sliders.js", "onnx_runtime.js"])
def test_assembled_module_parses(name, tmp_path, node):
    from explorer.components.base import asset_js

    path = tmp_path / f"assembled-{name.replace('.js', '.mjs')}"
    path.write_text(asset_js(name), encoding="utf-8")
    run = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
