"""The view as a link, and a session as one JSON file: encoding, parsing and every check.

Pure (no Streamlit): `explorer/share_ui.py` reads `st.query_params` and uploads and applies what
this module returns; the tests (tests/test_view_link.py) feed it hand-made parameters and files.

A link's query parameters (the page is the URL's path, /Explore):
    run    a run under the runs folder, by its folder name ("default"); "upload:NAME" for an uploaded
           model, which cannot travel in a link (the page says so and keeps the rest)
    data   a built-in dataset ("mnist"), a file of the server's data folder by its name, or
           "upload:NAME" (an uploaded file: cannot travel either)
    method pca | tsne | umap          dims  2 | 3          color  one of the map's colourings
    point  the selected row           z     the pinned code, comma-separated, one number a dimension
    tab    the open code-tool tab     decode=server  kept as it was (server-side decoding)
A bad or stale parameter falls back to its default, and one sentence says which and why.

A session file holds the same view, the kept selections (name -> rows) and the attribute vector's
groups and strength, with the run, data, row count and latent dimension it was saved on: a file of
another run or data set is refused, naming both.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

METHODS = ("pca", "tsne", "umap")
DIMS = (2, 3)
UPLOAD = "upload:"  # a run or data value naming an upload, which a link cannot carry
Z_LIMIT = 100.0  # |z_j| at most this in a link or a session (the prior's codes lie within +-6)
KEPT = ("decode",)  # parameters of other features, left in the URL as they are

SESSION_APP = "vae-latent-explorer session"
SESSION_VERSION = 1
SESSION_MAX_BYTES = 32 * 2**20  # a session file larger than this is refused before it is read
MAX_SELECTIONS = 64
MAX_NAME = 80
STRENGTH_RANGE = (-10.0, 10.0)


@dataclass
class View:
    """What the link and the session file hold of the Explore page (None: the page's default)."""

    method: str = "pca"
    dims: int = 2
    color: str | None = None
    point: int | None = None
    z: list[float] | None = None
    tab: str | None = None

    def to_dict(self) -> dict:
        return {"method": self.method, "dims": self.dims, "color": self.color, "point": self.point,
                "z": self.z, "tab": self.tab}


@dataclass
class Session:
    """A loaded session file, every field checked."""

    run: str
    data: str
    view: View
    selections: dict[str, np.ndarray] = field(default_factory=dict)
    vector: dict | None = None  # {"from": group, "to": group, "strength": float}


class SessionError(ValueError):
    """A session file refused; the message is one sentence for the user."""


# --- sources: run and data as link values --------------------------------------------------------

def source_value(src: str | None, known: Mapping[str, str], upload_name: str | None) -> str | None:
    """The link value of a model or data source: its name among `known` (value -> source), else
    "upload:NAME" for an upload (NAME: its original file name), else None (not linkable)."""
    if src is None:
        return None
    for value, s in known.items():
        if s == src:
            return value
    return UPLOAD + upload_name if upload_name else None


def parse_source(params: Mapping[str, str], runs: Mapping[str, str],
                 datas: Mapping[str, str]) -> tuple[str | None, str | None, list[str]]:
    """(model source, data source, sentences) from a link's run and data. runs and datas: link value
    -> source (`source_value`'s `known`). A value that is absent gives None (keep the active one);
    an upload or an unknown name gives None and one sentence."""
    notes: list[str] = []
    picked: list[str | None] = []
    for key, known, what, how in (("run", runs, "model", "train it or copy its run folder to this server"),
                                  ("data", datas, "data", "put the file in the server's data folder")):
        v = params.get(key)
        if v is None or v == "":
            picked.append(None)
        elif v in known:
            picked.append(known[v])
        elif v.startswith(UPLOAD):
            name = v[len(UPLOAD):] or "a file"
            notes.append(f"This link was made with an uploaded {what} ({name}), which cannot travel in a link: "
                         f"upload {name} in the sidebar to see the same view; the rest of the link is kept.")
            picked.append(None)
        else:
            notes.append(f"The link's {key} {v!r} is not on this server, so the active {what} stays "
                         f"(to share it, {how}).")
            picked.append(None)
    return picked[0], picked[1], notes


# --- the view --------------------------------------------------------------------------------------

def format_z(z: Iterable[float]) -> str:
    """A code as the link writes it: six significant digits a number (re-formatting gives the same text)."""
    return ",".join(f"{float(v):.6g}" for v in z)


def encode(run: str | None, data: str | None, view: View, *, kept: Mapping[str, str] | None = None) -> dict[str, str]:
    """The query parameters of a view (defaults left out, so a plain view has a short link)."""
    out: dict[str, str] = {}
    if run:
        out["run"] = run
    if data:
        out["data"] = data
    if view.method != "pca":
        out["method"] = view.method
    if view.dims != 2:
        out["dims"] = str(view.dims)
    if view.color:
        out["color"] = view.color
    if view.point is not None:
        out["point"] = str(int(view.point))
    if view.z is not None:
        out["z"] = format_z(view.z)
    if view.tab:
        out["tab"] = view.tab
    for k, v in (kept or {}).items():
        if k in KEPT and v is not None:
            out[k] = v
    return out


def _check_z(raw, latent_dim: int) -> list[float]:
    """A code: latent_dim finite numbers within +-Z_LIMIT; raises ValueError saying what is wrong."""
    if isinstance(raw, str):
        parts = [p.strip() for p in raw.split(",")] if raw.strip() else []
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ValueError("is not a list of numbers") from None
    elif isinstance(raw, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        vals = [float(v) for v in raw]
    else:
        raise ValueError("is not a list of numbers")
    if len(vals) != latent_dim:
        raise ValueError(f"has {len(vals)} numbers but this model's code has {latent_dim}")
    if not all(math.isfinite(v) and abs(v) <= Z_LIMIT for v in vals):
        raise ValueError(f"has a number that is not finite or lies beyond +-{Z_LIMIT:g}")
    return vals


def _as_int(raw) -> int:
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw.strip())
    raise ValueError


def check_view(raw: Mapping, *, n: int, latent_dim: int, colors: Iterable[str], tabs: Iterable[str],
               where: str = "link") -> tuple[View, list[str]]:
    """A View from a link's parameters (strings) or a session file's "view" (JSON values), each field
    checked against this data (n rows), model (latent_dim) and page (colors, tabs). A bad or stale
    field falls back to its default; the sentences (one per field) say which and why."""
    colors, tabs = list(colors), list(tabs)
    v, notes = View(), []

    def bad(key: str, value, why: str, default: str) -> None:
        shown = value if isinstance(value, str) and len(value) <= 40 else f"{str(value)[:40]}..."
        notes.append(f"The {where}'s {key} {shown!r} {why}, so {default}.")

    if raw.get("method") is not None:
        if raw["method"] in METHODS:
            v.method = raw["method"]
        else:
            bad("method", raw["method"], f"is not one of {', '.join(METHODS)}", "the map is PCA")
    if raw.get("dims") is not None:
        try:
            dims = _as_int(raw["dims"])
            if dims not in DIMS:
                raise ValueError
            v.dims = dims
        except ValueError:
            bad("dims", raw["dims"], "is not 2 or 3", "the map is 2-D")
    if raw.get("color") is not None:
        if raw["color"] in colors:
            v.color = raw["color"]
        else:
            bad("color", raw["color"], "is not a colouring of this data", f"the map is coloured by {colors[0]}"
                if colors else "the map keeps its colouring")
    if raw.get("point") is not None:
        try:
            p = _as_int(raw["point"])
            if not 0 <= p < n:
                raise ValueError
            v.point = p
        except ValueError:
            bad("point", raw["point"], f"is not a row of this data (0 to {n - 1:,})", "no point is selected")
    if raw.get("z") is not None:
        try:
            v.z = _check_z(raw["z"], latent_dim)
        except ValueError as e:
            bad("z", raw["z"], str(e), "the sliders keep their code")
    if raw.get("tab") is not None:
        if raw["tab"] in tabs:
            v.tab = raw["tab"]
        else:
            bad("tab", raw["tab"], "is not a tab of this page", f"{tabs[0] if tabs else 'the first tab'} is open")
    return v, notes


# --- the session file ------------------------------------------------------------------------------

def session_json(*, run: str, data: str, n: int, latent_dim: int, view: View,
                 selections: Mapping[str, np.ndarray], vector: dict | None) -> str:
    """The session as JSON text (rows as lists of ints: no pickles, readable and diffable)."""
    doc = {"app": SESSION_APP, "version": SESSION_VERSION, "run": run, "data": data, "n": int(n),
           "latent_dim": int(latent_dim), "view": view.to_dict(),
           "selections": {k: [int(r) for r in np.asarray(rows).ravel()] for k, rows in selections.items()},
           "vector": vector}
    return json.dumps(doc, separators=(",", ":"))


def _rows(name: str, raw, n: int) -> np.ndarray:
    if not isinstance(raw, list) or not raw:
        raise SessionError(f"Session refused: selection {name!r} is not a non-empty list of rows.")
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in raw):
        raise SessionError(f"Session refused: selection {name!r} holds something other than whole row numbers.")
    rows = np.asarray(raw, dtype=np.int64)
    if rows.min() < 0 or rows.max() >= n:
        raise SessionError(f"Session refused: selection {name!r} has rows outside 0 to {n - 1:,}.")
    return np.unique(rows)


def load_session(raw: bytes, *, run: str, data: str, n: int, latent_dim: int, colors: Iterable[str],
                 tabs: Iterable[str]) -> tuple[Session, list[str]]:
    """Check a session file against the active run, data (by their link values), row count and latent
    dimension; returns the session and the view's fallback sentences. Raises SessionError (one
    sentence) for a file that is not a session, of another run or data set, or with a bad field.
    Only JSON is read, and only up to SESSION_MAX_BYTES."""
    if len(raw) > SESSION_MAX_BYTES:
        raise SessionError(f"Session refused: the file is {len(raw) / 2**20:.1f} MB, more than the "
                           f"{SESSION_MAX_BYTES // 2**20} MB a session file may have.")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise SessionError("Session refused: the file is not JSON text.") from None
    if not isinstance(doc, dict) or doc.get("app") != SESSION_APP:
        raise SessionError("Session refused: the file is not a session saved by this app.")
    if doc.get("version") != SESSION_VERSION:
        raise SessionError(f"Session refused: it is version {doc.get('version')!r}; this app reads version "
                           f"{SESSION_VERSION}.")
    extra = set(doc) - {"app", "version", "run", "data", "n", "latent_dim", "view", "selections", "vector"}
    if extra:
        raise SessionError(f"Session refused: unknown field(s) {', '.join(sorted(extra))}.")
    for key, want in (("run", str), ("data", str), ("n", int), ("latent_dim", int)):
        if not isinstance(doc.get(key), want) or isinstance(doc.get(key), bool):
            raise SessionError(f"Session refused: its {key} is missing or not a {want.__name__}.")
    if doc["run"] != run or doc["data"] != data:
        raise SessionError(f"Session refused: it was saved on run {doc['run']!r} with data {doc['data']!r}, "
                           f"but run {run!r} with data {data!r} is active; pick those in the sidebar first.")
    if doc["n"] != n or doc["latent_dim"] != latent_dim:
        raise SessionError(f"Session refused: it was saved on {doc['n']:,} rows and {doc['latent_dim']} latent "
                           f"dimensions, but the active data has {n:,} rows and the model {latent_dim}.")
    view_raw = doc.get("view")
    if not isinstance(view_raw, dict):
        raise SessionError("Session refused: its view is missing or not an object.")
    view, notes = check_view(view_raw, n=n, latent_dim=latent_dim, colors=colors, tabs=tabs, where="session")
    sels_raw = doc.get("selections") or {}
    if not isinstance(sels_raw, dict) or len(sels_raw) > MAX_SELECTIONS:
        raise SessionError(f"Session refused: its selections must be an object of at most {MAX_SELECTIONS} "
                           "named lists of rows.")
    selections = {}
    for name, rows in sels_raw.items():
        if not name.strip() or len(name) > MAX_NAME:
            raise SessionError(f"Session refused: a selection's name must have 1 to {MAX_NAME} characters.")
        selections[name] = _rows(name, rows, n)
    vec = doc.get("vector")
    if vec is not None:
        ok = (isinstance(vec, dict) and set(vec) == {"from", "to", "strength"} and isinstance(vec["from"], str)
              and isinstance(vec["to"], str) and isinstance(vec["strength"], (int, float))
              and not isinstance(vec["strength"], bool) and math.isfinite(vec["strength"])
              and STRENGTH_RANGE[0] <= vec["strength"] <= STRENGTH_RANGE[1])
        if not ok:
            raise SessionError("Session refused: its vector must be {from: group, to: group, strength: a number "
                               f"from {STRENGTH_RANGE[0]:g} to {STRENGTH_RANGE[1]:g}}}.")
        vec = {"from": vec["from"], "to": vec["to"], "strength": float(vec["strength"])}
    return Session(run=doc["run"], data=doc["data"], view=view, selections=selections, vector=vec), notes
