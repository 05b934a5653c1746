"""Images for the page: tensors to uint8 arrays, PNG data URIs, grids, GIFs (Pillow). No Streamlit."""
from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from vae_core.data.lazy import Images, batch_rows, batches
from vae_core.limits import check_bytes


def to_uint8(x: "torch.Tensor | np.ndarray | Images", stop: int | None = None) -> np.ndarray:
    """(B, C, H, W) in [0, 1] -> (B, H, W) or (B, H, W, 3) uint8, of rows [:stop] (all when None).

    Lazy `Images` (a large file read in batches) are converted a batch at a time into the uint8
    array, never held whole as float32 (4x its size); that array is checked against max_data_mb.
    """
    if isinstance(x, Images):
        n = len(x) if stop is None else min(int(stop), len(x))
        c, h, w = tuple(x.shape[1:])
        check_bytes("the images as 8-bit pixels", n * c * h * w, "max_data_mb")
        out = np.empty((n, h, w) if c == 1 else (n, h, w, c), dtype=np.uint8)
        step = batch_rows(x)
        for s in range(0, n, step):
            out[s:s + step] = to_uint8(x[s:min(n, s + step)])
        return out
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a if stop is None else a[:stop]
    a = (np.clip(a, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return a[:, 0] if a.shape[1] == 1 else np.moveaxis(a, 1, -1)


class Uint8Rows:
    """to_uint8 of lazy `Images` one batch at a time, for code that walks images in order (a sprite
    sheet): `shape` (N, H, W[, 3]), `len`, iteration over (H, W[, 3]) uint8 images."""

    def __init__(self, x: Images):
        c, h, w = tuple(x.shape[1:])
        self.x, self.shape = x, (len(x), h, w) + ((c,) if c != 1 else ())

    def __len__(self) -> int:
        return self.shape[0]

    def __iter__(self):
        for b in batches(self.x):
            yield from to_uint8(b)


def uint8_rows(x: "torch.Tensor | Images") -> "np.ndarray | Uint8Rows":
    """Every image of x as uint8 for a walk in order: an array, or for lazy images a `Uint8Rows`."""
    return Uint8Rows(x) if isinstance(x, Images) else to_uint8(x)


def upscale(img: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling, so small digits stay crisp instead of browser-smoothed."""
    return img.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else img


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def png_data_uri(img: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(img)).decode("ascii")


def grid(images: np.ndarray, ncol: int, pad: int = 1, fill: int = 255) -> np.ndarray:
    """(N, H, W[, 3]) uint8 -> one image with ncol columns, separated by `pad` pixels of `fill`."""
    n, h, w = images.shape[:3]
    nrow = -(-n // ncol)
    shape = (nrow * (h + pad) - pad, ncol * (w + pad) - pad) + images.shape[3:]
    out = np.full(shape, fill, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = images[i]
    return out


def gif_bytes(frames: Sequence[np.ndarray], ms_per_frame: int = 120, bounce: bool = True) -> bytes:
    """An animated GIF that loops (and plays back in reverse when bounce), for downloads."""
    seq = list(frames) + (list(frames)[-2:0:-1] if bounce else [])
    imgs = [Image.fromarray(f) for f in seq]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=ms_per_frame, loop=0)
    return buf.getvalue()
