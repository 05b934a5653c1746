"""The layers import one way: no import cycles inside vae_core, the library never imports the app,
and pages reach the library only through explorer (docs/architecture.md, "Layers").

Scans the source (AST) the way tests/test_state_keys.py does: every `import` and `from ... import`
counts, at module level and inside functions alike (a lazy import still ties the two modules), except
those under `if TYPE_CHECKING:` (they never run). A name imported from a package is an edge to its
submodule when one of that name exists, else to the package's `__init__`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from paths import ROOT  # the repository root (tests/paths.py)
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

FORBIDDEN_IN_LIBRARY = ("explorer", "streamlit", "plotly")


def module_name(path: Path, root: Path = ROOT) -> str:
    """vae_core/runs/checkpoints.py -> 'vae_core.runs.checkpoints'; a package's __init__ -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`)."""
    skip = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and ast.unparse(n.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skip |= {id(c) for b in n.body for c in ast.walk(b)}
    return skip


def imports(source: str, name: str, is_package: bool = False) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) for every import in `source`, relative ones
    resolved against module `name` (a package's `__init__` when is_package)."""
    tree = ast.parse(source)
    skip = _type_checking_only(tree)
    package = name.split(".") if is_package else name.split(".")[:-1]
    out = []
    for n in ast.walk(tree):
        if id(n) in skip:
            continue
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name, None) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = package[: len(package) - n.level + 1] if n.level else []
            mod = ".".join(base + ([n.module] if n.module else []))
            out += [(n.lineno, mod, a.name) for a in n.names]
    return out


def graph(root: Path = ROOT, package: str = "vae_core") -> dict[str, set[str]]:
    """module -> the modules of `package` it imports (anywhere in its code)."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for m, p in files.items():
        for _, mod, name in imports(p.read_text(), m, p.name == "__init__.py"):
            target = f"{mod}.{name}" if name and f"{mod}.{name}" in files else mod
            if target in files and target != m:
                edges[m].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module: each is at least one import cycle."""
    names = sorted(edges)
    index = {m: i for i, m in enumerate(names)}
    rows = [index[a] for a in names for b in edges[a]]
    cols = [index[b] for a in names for b in edges[a]]
    adj = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    _, label = connected_components(adj, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for m, lab in zip(names, label):
        groups.setdefault(int(lab), []).append(m)
    return sorted(g for g in groups.values() if len(g) > 1)


def wings(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between wings: each module counts as its top-level subpackage (`vae_core.runs.x` as
    `vae_core.runs`), a top-level module as itself. Two wings importing each other, through any of
    their modules, is a cycle here even when no module-level loop exists."""
    def wing(m: str) -> str:
        return ".".join(m.split(".")[:2])
    out: dict[str, set[str]] = {}
    for a, targets in edges.items():
        out.setdefault(wing(a), set()).update(wing(b) for b in targets if wing(b) != wing(a))
    return out


def offending_imports(paths: list[Path], banned: tuple[str, ...]) -> list[str]:
    """'file:line module' for each import of a banned top-level package in paths."""
    out = []
    for p in paths:
        m = module_name(p)
        for line, mod, _ in imports(p.read_text(), m, p.name == "__init__.py"):
            if mod.split(".")[0] in banned:
                out.append(f"{p.relative_to(ROOT)}:{line} {mod}")
    return out


# ------------------------------------------------------------------------- the scanner itself


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        f = tmp_path / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def test_scanner_finds_a_cycle_through_a_function_level_import(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub import b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "def f():\n    from ..c import g\n",
        "pkg/c.py": "from . import a\n",
        "pkg/d.py": "from .a import x\n",  # imports into the cycle, is not in it
    })
    edges = graph(root, "pkg")
    assert edges["pkg.a"] == {"pkg.sub.b"} and edges["pkg.sub.b"] == {"pkg.c"} and edges["pkg.c"] == {"pkg.a"}
    assert cycles(edges) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_scanner_skips_type_checking_imports_and_names_from_a_package_init(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "from .a import X\n",  # the package imports a; a importing a name from pkg closes a cycle
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import Y\nX = 1\n",
        "pkg/b.py": "from . import a\nfrom pkg import X\n",
    })
    edges = graph(root, "pkg")
    assert edges["pkg.a"] == set()  # the TYPE_CHECKING import does not run
    assert edges["pkg.b"] == {"pkg.a", "pkg"}  # `from . import a` is the module; `from pkg import X` the __init__
    assert cycles(edges) == []
    assert edges["pkg"] == {"pkg.a"}
    edges["pkg.a"].add("pkg.b")  # a real import back: pkg.b -> pkg -> pkg.a -> pkg.b
    assert cycles(edges) == [["pkg", "pkg.a", "pkg.b"]]


def test_wings_collapse_module_edges_into_a_cycle_between_packages(tmp_path):
    """runs -> sandbox in one module and sandbox -> runs in another: no module loop, a wing loop."""
    root = _tree(tmp_path, {
        "pkg/__init__.py": "", "pkg/runs/__init__.py": "", "pkg/sandbox/__init__.py": "",
        "pkg/runs/files.py": "def load():\n    from ..sandbox.proxy import Remote\n",
        "pkg/runs/zips.py": "def read(): pass\n",
        "pkg/sandbox/proxy.py": "class Remote: pass\n",
        "pkg/sandbox/formats.py": "from ..runs.zips import read\n",
    })
    edges = graph(root, "pkg")
    assert cycles(edges) == []
    assert cycles(wings(edges)) == [["pkg.runs", "pkg.sandbox"]]


# ------------------------------------------------------------------------------- the repository


def test_vae_core_has_no_import_cycles():
    found = cycles(graph())
    assert not found, f"import cycles in vae_core (each group imports itself round a loop): {found}"


def test_vae_cores_wings_import_one_way():
    """runs/, maps/, metrics/, data/, sandbox/ and the top-level modules: no two import each other."""
    found = cycles(wings(graph()))
    assert not found, f"wings of vae_core that import each other (through any of their modules): {found}"


def test_the_library_never_imports_the_app_streamlit_or_plotly():
    bad = offending_imports(sorted((ROOT / "vae_core").rglob("*.py")), FORBIDDEN_IN_LIBRARY)
    assert not bad, f"vae_core imports the app's layer: {bad}"


def test_pages_reach_the_library_only_through_explorer():
    pages = sorted((ROOT / "app_pages").glob("*.py"))
    assert len(pages) >= 6  # Home and the five tool pages
    bad = offending_imports(pages, ("vae_core",))
    assert not bad, f"a page imports vae_core; go through an explorer module: {bad}"
