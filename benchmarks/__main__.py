"""`python -m benchmarks`: every benchmark with the first line of its docstring.

Run one from the repository root with `python -m benchmarks.NAME` (`--help` gives its options);
docs/benchmarks.md has the figures, each with its command and date.
"""
from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = {"__init__", "__main__", "common", "browser", "model_formats", "st_client"}  # helpers, not benchmarks


def summary(doc: str) -> str:
    """The docstring's first sentence (its first paragraph up to '. ', on one line)."""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    head, dot, _ = para.partition(". ")
    return head + "." if dot else para


def benchmarks() -> list[tuple[str, str]]:
    """(module name, first docstring line) of each benchmark, read without importing it."""
    out = []
    for path in sorted(HERE.glob("*.py")):
        if path.stem in SHARED:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "(no docstring)"
        out.append((path.stem, summary(doc)))
    return out


def main() -> None:
    rows = benchmarks()
    width = max(len(name) for name, _ in rows)
    print("Benchmarks (run from the repository root: python -m benchmarks.NAME [--help]):")
    for name, line in rows:
        print(f"  {name:{width}}  {line}")


if __name__ == "__main__":
    main()
