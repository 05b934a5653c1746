"""explorer.images: grids, PNG and GIF bytes read back with Pillow against hand-made arrays."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageSequence

from explorer import images


def test_to_uint8_rounds_and_clips():
    x = torch.tensor([[[[0.0, 0.5, 1.0, 1.7], [-1.0, 0.2, 0.998, 0.002]]]])  # (1, 1, 2, 4)
    out = images.to_uint8(x)
    np.testing.assert_array_equal(out[0], [[0, 128, 255, 255], [0, 51, 254, 1]])


def test_grid_places_tiles_row_major_with_padding():
    tiles = np.stack([np.full((2, 3), v, np.uint8) for v in (10, 20, 30)])  # 3 tiles of 2x3
    g = images.grid(tiles, ncol=2, pad=1, fill=255)
    assert g.shape == (2 * 2 + 1, 2 * 3 + 1)
    assert (g[0:2, 0:3] == 10).all() and (g[0:2, 4:7] == 20).all() and (g[3:5, 0:3] == 30).all()
    assert (g[2, :] == 255).all() and (g[:, 3] == 255).all() and (g[3:5, 4:7] == 255).all()


def test_png_round_trip():
    img = np.arange(48, dtype=np.uint8).reshape(6, 8)
    back = np.asarray(Image.open(io.BytesIO(images.png_bytes(img))))
    np.testing.assert_array_equal(back, img)


def test_gif_frames_loop_and_bounce():
    frames = [np.full((4, 4), v, np.uint8) for v in (0, 100, 200)]
    gif = Image.open(io.BytesIO(images.gif_bytes(frames, ms_per_frame=50)))
    seq = [np.asarray(f.convert("L")) for f in ImageSequence.Iterator(gif)]
    assert [int(f[0, 0]) for f in seq] == [0, 100, 200, 100]  # forward, then back without repeating ends
    assert gif.info.get("loop") == 0 and gif.info.get("duration") == 50
