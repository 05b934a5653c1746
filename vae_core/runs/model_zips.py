"""Model zips of today's export formats, read in the server without running anything in them.

Two kinds of `.zip`, told apart by their members (at the top or in one folder):
- `torch.export` programs: `encode.pt2` and `decode.pt2`, each written by `torch.export.save`;
- ONNX graphs: `encode.onnx` (input x; outputs mu, logvar) and `decode.onnx` (input z; output the
  mean image);
each with an optional `meta.json`: `likelihood` ("bernoulli" or "gaussian"), `scale` (float > 0,
Gaussian only), `input_shape` ([C, H, W]) and `latent_dim` (int).

Here the server only reads the zip's directory and `meta.json` (size-capped, strictly
validated); the programs themselves are opened, checked against the operation allow-list and run
in the sandbox worker alone (`vae_core.sandbox`), never in this process.
"""
from __future__ import annotations

import json
import math
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError
from ..limits import limits
from ..streams import read_zip_member, zip_members

FORMATS = {  # format -> (its members, what writes them)
    "export": (("encode.pt2", "decode.pt2"), "a torch.export model zip holds encode.pt2 and decode.pt2 "
               "written by torch.export.save"),
    "onnx": (("encode.onnx", "decode.onnx"), "an ONNX model zip holds encode.onnx (input x; outputs mu, logvar) "
             "and decode.onnx (input z; output the mean image)"),
}
META = "meta.json"
MAX_META_BYTES = 64 * 2**10  # a meta.json holds four small fields
META_KEYS = ("likelihood", "scale", "input_shape", "latent_dim")
META_HELP = ('meta.json is optional and holds only likelihood ("bernoulli" or "gaussian"), scale (a number > 0, '
             "Gaussian only), input_shape ([C, H, W]) and latent_dim (a whole number >= 1)")


@dataclass(frozen=True)
class ModelZip:
    """What the server knows of a model zip before the worker opens it."""

    path: Path
    format: str  # "export" or "onnx"
    meta: dict = field(default_factory=dict)  # the validated meta.json (only the keys it gave)


def zip_format(path: str | Path) -> str | None:
    """'export' or 'onnx' for a zip holding any member of that format ('mixed' for both), else None.

    Never raises: a zip that cannot be read, or has more members than VAE_EXPLORER_MAX_FILES
    (counted before its directory is parsed), is None here and refused by whoever reads it next.
    """
    from ..data.files.zips import open_zip

    try:
        if not zipfile.is_zipfile(path):
            return None
        with open_zip(Path(path)) as z:
            names = {n.replace("\\", "/").strip("/").rsplit("/", 1)[-1] for n in z.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
        return None
    found = [fmt for fmt, (members, _) in FORMATS.items() if names & set(members)]
    return found[0] if len(found) == 1 else ("mixed" if found else None)


def parse_meta(raw: bytes, name: str) -> dict:
    """meta.json's bytes -> a dict of the keys it gives, each checked; CheckpointError naming the problem."""
    where = f"{name}: {META}"
    try:
        meta = json.loads(raw.decode("utf-8"), parse_constant=lambda c: math.nan)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{where} is not valid JSON ({str(e).splitlines()[0][:80]}); {META_HELP}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where} must hold one JSON object; {META_HELP}")
    unknown = [k for k in meta if k not in META_KEYS]
    if unknown:
        raise CheckpointError(f"{where} has an unknown key {str(unknown[0])[:40]!r}; {META_HELP}")
    out: dict = {}
    if "likelihood" in meta:
        if meta["likelihood"] not in ("bernoulli", "gaussian"):
            raise CheckpointError(f'{where}: likelihood must be "bernoulli" or "gaussian", '
                                  f"got {json.dumps(meta['likelihood'])[:40]}")
        out["likelihood"] = meta["likelihood"]
    if "scale" in meta:
        s = meta["scale"]
        if type(s) not in (int, float) or not (math.isfinite(s) and s > 0):
            raise CheckpointError(f"{where}: scale must be a finite number > 0, got {json.dumps(s)[:40]}")
        if out.get("likelihood", "bernoulli") != "gaussian":
            raise CheckpointError(f'{where}: scale is the Gaussian decoder\'s std; give "likelihood": "gaussian" '
                                  "with it, or remove it")
        out["scale"] = float(s)
    if "input_shape" in meta:
        s = meta["input_shape"]
        lim = limits().max_image_pixels
        if not (isinstance(s, list) and len(s) == 3 and all(type(v) is int and v >= 1 for v in s)):
            raise CheckpointError(f"{where}: input_shape must be [C, H, W], three whole numbers >= 1, "
                                  f"got {json.dumps(s)[:40]}")
        if s[0] > 4 or s[1] * s[2] > lim:
            raise CheckpointError(f"{where}: input_shape {s} is not an image of at most 4 channels and "
                                  f"{lim:,} pixels")
        out["input_shape"] = list(s)
    if "latent_dim" in meta:
        d = meta["latent_dim"]
        if type(d) is not int or not 1 <= d <= limits().max_latent:
            raise CheckpointError(f"{where}: latent_dim must be a whole number from 1 to {limits().max_latent}, "
                                  f"got {json.dumps(d)[:40]}")
        out["latent_dim"] = d
    return out


def read_model_zip(path: str | Path) -> ModelZip:
    """Check a model zip's members and read its meta.json; nothing in it is opened as a program here.

    Raises CheckpointError (one sentence naming the file or member and the fix).
    """
    from ..data import DataError
    from ..data.files.zips import open_zip

    p = Path(path)
    fmt = zip_format(p)
    if fmt == "mixed":
        raise CheckpointError(f"{p.name} holds both .pt2 and .onnx programs; zip encode and decode of one format")
    if fmt is None:
        raise CheckpointError(f"{p.name} is not a model zip; a torch.export model zip holds encode.pt2 and "
                              "decode.pt2, an ONNX one encode.onnx and decode.onnx")
    wanted, help_ = FORMATS[fmt]
    max_bytes = limits().max_file_mb * 2**20
    try:
        with open_zip(p) as z:  # counts the members before the directory is parsed
            members = zip_members(z)
            for m in (*wanted, META):
                if m in members and members[m] is None:
                    raise CheckpointError(f"{p.name} holds more than one {m}; {help_}")
            for m in wanted:
                if m not in members:
                    raise CheckpointError(f"{p.name}: {m} is missing; {help_}")
            total = sum(members[m].file_size for m in wanted)
            if total > max_bytes:
                raise CheckpointError(f"{p.name}: {' and '.join(wanted)} hold {total / 2**20:,.1f} MB unpacked, over "
                                      f"the limit of {limits().max_file_mb:,} MB; set VAE_EXPLORER_MAX_FILE_MB "
                                      "to raise it")
            meta: dict = {}
            if META in members:
                info = members[META]
                if info.file_size > MAX_META_BYTES:
                    raise CheckpointError(f"{p.name}: {META} holds {info.file_size:,} bytes, over "
                                          f"{MAX_META_BYTES:,}; {META_HELP}")
                try:
                    raw = read_zip_member(z, info)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as e:
                    raise CheckpointError(f"{p.name}: {META} is corrupt ({e}); make the zip again") from None
                meta = parse_meta(raw, p.name)
    except DataError as e:
        raise CheckpointError(str(e)) from None
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
        raise CheckpointError(f"{p.name} is not a readable zip file ({e}); make the zip again") from None
    return ModelZip(p, fmt, meta)


def declared_input_shape(path: str | Path) -> tuple[int, int, int] | None:
    """(C, H, W) from a model zip's meta.json; None for any other file, or a zip without one or unreadable."""
    if zip_format(path) not in FORMATS:
        return None
    try:
        shape = read_model_zip(path).meta.get("input_shape")
    except (CheckpointError, OSError):
        return None
    return tuple(shape) if shape else None
