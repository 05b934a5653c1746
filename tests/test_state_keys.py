"""Every session-state key that code reads or writes is a name in explorer/state.py.

A key read or written through `st.session_state` anywhere is built from a `state.NAME` (a component
module's generic `key` parameter excepted: its caller passes a state name). Widgets may keep a
literal `key=` of their own, read only through the widget's return value; those are unique. This
scans the app's source (AST), so a new raw key fails here.
"""
from __future__ import annotations

import ast
from paths import ROOT  # the repository root (tests/paths.py)

SOURCES = sorted([*ROOT.joinpath("explorer").rglob("*.py"), *ROOT.joinpath("app_pages").glob("*.py"),
                  ROOT / "streamlit_app.py"])
ACCESS = {"get", "setdefault", "pop", "__contains__"}


def _is_session_state(node: ast.AST, aliases: set[str]) -> bool:
    """`st.session_state`, or a local name bound to it (`ss = st.session_state`)."""
    if isinstance(node, ast.Attribute) and node.attr == "session_state":
        return True
    return isinstance(node, ast.Name) and node.id in aliases


def _literal(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _names_state(node: ast.AST) -> bool:
    """The key is built from a name of explorer/state.py (`state.X`, or `state.PREFIX + ...`)."""
    return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "state"
               for n in ast.walk(node))


def raw_keys(source: str, allowed_names: frozenset[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, text) of every session-state access whose key is not built from a `state.` name.

    allowed_names: plain variable names accepted as keys (a component's own `key` parameter,
    which its caller fills with a state name)."""
    tree = ast.parse(source)
    aliases = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and _is_session_state(n.value, set())
               for t in n.targets if isinstance(t, ast.Name)}
    out = []
    for n in ast.walk(tree):
        key = None
        if isinstance(n, ast.Subscript) and _is_session_state(n.value, aliases):
            key = n.slice
        elif (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ACCESS
              and _is_session_state(n.func.value, aliases) and n.args):
            key = n.args[0]
        elif isinstance(n, ast.Compare) and any(isinstance(o, (ast.In, ast.NotIn)) for o in n.ops) \
                and any(_is_session_state(c, aliases) for c in n.comparators):
            key = n.left
        if key is None or _names_state(key) or (isinstance(key, ast.Name) and key.id in allowed_names):
            continue
        out.append((n.lineno, ast.unparse(n)))
    return out


def test_scanner_finds_raw_keys():
    """The scanner itself: each form of raw access is caught, named keys are not."""
    src = ("import streamlit as st\nss = st.session_state\nss['a'] = 1\nst.session_state.get('b')\n"
           "ss.setdefault(f'c{1}', 0)\nif 'd' in ss: pass\nss[LOCAL] = 3\nss[key] = 4\n"
           "ss[state.OK] = 2\nst.session_state.get(state.PREFIX + name)\n")
    assert [line for line, _ in raw_keys(src)] == [3, 4, 5, 6, 7, 8]
    assert [line for line, _ in raw_keys(src, frozenset({"key"}))] == [3, 4, 5, 6, 7]


def test_every_session_key_is_a_state_name():
    found = [f"{p.relative_to(ROOT)}:{line}: {text}" for p in SOURCES if p.name != "state.py"
             for line, text in raw_keys(p.read_text(), frozenset({"key"}) if "components" in p.parts else frozenset())]
    assert not found, "session-state keys must be names in explorer/state.py:\n" + "\n".join(found)


def test_widget_keys_are_unique():
    """A literal widget key names one widget: two modules using the same string would share state."""
    seen: dict[str, str] = {}
    dupes = []
    for p in SOURCES:
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Call):
                for kw in n.keywords:
                    if kw.arg == "key" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                        where = f"{p.relative_to(ROOT)}:{n.lineno}"
                        if kw.value.value in seen:
                            dupes.append(f"{kw.value.value!r} at {seen[kw.value.value]} and {where}")
                        seen[kw.value.value] = where
    assert len(seen) > 20, "the scan found the app's widget keys"
    assert not dupes, "\n".join(dupes)
