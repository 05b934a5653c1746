"""Exports as bytes: latent codes with map coordinates (CSV) and TensorBoard projector files. Pure
functions of arrays; the app offers them as downloads (a run as a zip: `vae_core.runs.checkpoints.run_zip`)."""
from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image


# TensorBoard's projector reads sprite images up to 8192 x 8192 pixels.
MAX_SPRITE_SIDE = 8192


_DATA_SUFFIXES = (".tar.gz", ".npz", ".npy", ".csv", ".zip", ".pt", ".pth", ".json")


def file_stem(name: str) -> str:
    """A name fit to start a download's file name: a data file's extension taken off (so
    'blobs20k.npz' gives 'blobs20k', not 'codes_blobs20k.npz_umap2d.csv'), anything but letters,
    digits, '-', '_' and '.' made '_'."""
    stem = Path(str(name)).name
    for suffix in _DATA_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    stem = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in stem).strip("._")
    return stem or "data"


def codes_csv(mu: np.ndarray, logvar: np.ndarray, coords: np.ndarray | None = None,
              labels: np.ndarray | None = None, extra: dict[str, np.ndarray] | None = None) -> bytes:
    """One row per point: index, label, map_0.., mu_0.., sigma_0.., extra columns (UTF-8 CSV)."""
    import pandas as pd

    n, d = mu.shape
    cols: dict[str, np.ndarray] = {"index": np.arange(n)}
    if labels is not None:
        cols["label"] = np.asarray(labels)
    if coords is not None:
        cols.update({f"map_{k}": coords[:, k] for k in range(coords.shape[1])})
    cols.update({f"mu_{j}": mu[:, j] for j in range(d)})
    sigma = np.exp(0.5 * logvar)
    cols.update({f"sigma_{j}": sigma[:, j] for j in range(d)})
    for name, v in (extra or {}).items():
        cols[name] = np.asarray(v)
    return pd.DataFrame(cols).to_csv(index=False, float_format="%.6g").encode("utf-8")


def sprite_image(images: Any) -> tuple[np.ndarray, tuple[int, int]]:
    """(N, H, W[, 3]) uint8 -> a square sprite sheet and the single-image size, shrunk to fit 8192 px.

    `images`: an array, or anything with that `shape` that yields the images in order (a large
    file's, converted a batch at a time), since they are placed one by one."""
    n, h, w = images.shape[:3]
    side = math.ceil(math.sqrt(n))
    scale = min(1.0, MAX_SPRITE_SIDE / (side * max(h, w)))
    th, tw = max(1, int(h * scale)), max(1, int(w * scale))
    sheet = np.zeros((side * th, side * tw) + images.shape[3:], dtype=np.uint8)
    for i, im in enumerate(images):
        if (th, tw) != (h, w):
            im = np.asarray(Image.fromarray(im).resize((tw, th), Image.BILINEAR))
        r, c = divmod(i, side)
        sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = im
    return sheet, (th, tw)


def projector_zip(mu: np.ndarray, images: Any, metadata: dict[str, Sequence]) -> bytes:
    """TensorBoard projector files in a zip: tensors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt.

    Unzip into a log directory and run `tensorboard --logdir DIR`; the Projector tab shows them.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("tensors.tsv", "\n".join("\t".join(f"{v:.6g}" for v in row) for row in mu) + "\n")
        names = list(metadata)
        # TensorBoard: a header row only when there is more than one column
        rows = (["\t".join(names)] if len(names) > 1 else []) + [
            "\t".join(str(metadata[k][i]).replace("\t", " ") for k in names) for i in range(len(mu))]
        z.writestr("metadata.tsv", "\n".join(rows) + "\n")
        cfg = ['embeddings {', '  tensor_name: "vae_latent_mu"', '  tensor_path: "tensors.tsv"',
               '  metadata_path: "metadata.tsv"']
        if images is not None:
            sheet, (th, tw) = sprite_image(images)
            buf = io.BytesIO()
            Image.fromarray(sheet).save(buf, format="PNG")
            z.writestr("sprite.png", buf.getvalue())
            cfg += ['  sprite {', '    image_path: "sprite.png"', f'    single_image_dim: {tw}',
                    f'    single_image_dim: {th}', '  }']
        z.writestr("projector_config.pbtxt", "\n".join(cfg + ["}"]) + "\n")
    return out.getvalue()

