"""The repository stands alone: every document it cites is inside it.

Any tracked text file (code, tests, benchmarks, configs, docs) that names a `.md` file must name
one that exists in the repository, either by a path (from the repository root, or relative to the
citing file as in a Markdown link) or by a bare name that some tracked file has. Nothing may point
into the team's folder beside the repository. A relative Markdown link (`[text](target)`) in a
tracked `.md` file must resolve too, images included. The documents the README promises are
there and linked.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from paths import ROOT

DOCS = ("architecture.md", "contracts.md", "live-decoding.md", "science.md", "guide.md", "benchmarks.md")
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# a .md name, with an optional path before it; not part of a longer word or path
MD_NAME = re.compile(r"(?<![\w/.-])((?:\.{1,2}/)*(?:[\w.-]+/)*[\w-]+\.md)(?![\w/-])")
OUTSIDE = re.compile(r"\.\./+shared\b|(?<![\w.-])shared/+[\w.-]+\.md")  # the team's folder beside the repo
MD_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MAX_BYTES = 2_000_000  # larger tracked files are data (runs, arrays), not text that cites


def tracked_files() -> list[Path]:
    """Files git tracks (a fresh clone's view); every file but .git's when git is unavailable."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def text_of(path: Path) -> str | None:
    """The file's text, or None for binary and large files."""
    if path.stat().st_size > MAX_BYTES:
        return None
    raw = path.read_bytes()
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def resolves(name: str, citing: Path, basenames: set[str]) -> bool:
    """True when the cited document exists: a bare name anywhere in the repo, a path from the root or
    from the citing file's folder, never outside the repository."""
    if "/" not in name:
        return name in basenames
    for base in (ROOT, citing.parent):
        target = (base / name).resolve()
        if target.is_relative_to(ROOT) and target.is_file():
            return True
    return False


def citations(files: list[Path]) -> list[tuple[Path, int, str]]:
    """(file, line number, cited .md name) for every .md name in every tracked text file."""
    found = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            for m in MD_NAME.finditer(URL.sub("", line)):
                found.append((path, i, m.group(1)))
    return found


@pytest.fixture(scope="module")
def files() -> list[Path]:
    return tracked_files()


def test_the_scan_finds_what_it_should():
    """The patterns themselves, on hand-made lines."""
    names = lambda s: [m.group(1) for m in MD_NAME.finditer(URL.sub("", s))]  # noqa: E731
    assert names('see docs/science.md, "Mutual information"') == ["docs/science.md"]
    brief = "SCIENCE" + ".md"  # built from parts: this file must not cite a document that is not here
    assert names(f"({brief}, Rybkin et al.)") == [brief]
    assert names("[guide](docs/guide.md#running-it-for-others)") == ["docs/guide.md"]
    assert names("../README.md and README.md") == ["../README.md", "README.md"]
    assert names("https://github.com/o/r/blob/main/README.md and nothing.mdx") == []
    team = "shared"  # the team's folder, named in parts so that this line is not a hit itself
    assert OUTSIDE.search(f"see ../{team}/X.md") and OUTSIDE.search(f"({team}/X.md)")
    assert not OUTSIDE.search("explorer/components/assets/shared.js")


def test_every_cited_document_exists_in_the_repository(files):
    basenames = {p.name for p in files}
    missing = [f"{p.relative_to(ROOT)}:{i}: {name}" for p, i, name in citations(files)
               if not resolves(name, p, basenames)]
    assert not missing, "cites a document that is not in the repository:\n" + "\n".join(missing)


def test_nothing_points_outside_the_repository(files):
    bad = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:120]}")
    assert not bad, "points into a folder outside the repository:\n" + "\n".join(bad)


def test_relative_markdown_links_resolve(files):
    broken = []
    for path in files:
        if path.suffix != ".md" or (text := text_of(path)) is None:
            continue
        for m in MD_LINK.finditer(text):
            target = m.group(1).split("#", 1)[0]
            if not target or URL.match(target) or target.startswith("mailto:"):
                continue
            resolved = (path.parent / target).resolve()
            if not (resolved.is_relative_to(ROOT) and resolved.exists()):
                broken.append(f"{path.relative_to(ROOT)}: {m.group(1)}")
    assert not broken, "Markdown links to nothing in the repository:\n" + "\n".join(broken)


def test_the_readme_links_every_document():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in DOCS:
        assert (ROOT / "docs" / name).is_file(), name
        assert f"docs/{name}" in readme, f"README does not link docs/{name}"
