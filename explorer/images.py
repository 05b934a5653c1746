"""Images for the page: tensors to uint8 arrays, PNG data URIs, grids, GIFs (Pillow). No Streamlit."""
from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """(B, C, H, W) in [0, 1] -> (B, H, W) or (B, H, W, 3) uint8."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = (np.clip(a, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return a[:, 0] if a.shape[1] == 1 else np.moveaxis(a, 1, -1)


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
