"""Export an MLP decoder's weights so the latent pad can decode in the browser.

See docs/live-decoding.md, "The design", point 3.
"""
from __future__ import annotations

import base64
import hashlib

import torch
from torch import nn


def _b64_f32(t: torch.Tensor) -> str:
    """Tensor -> base64 of its little-endian float32 bytes (what a JS Float32Array reads)."""
    return base64.b64encode(t.detach().cpu().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()).decode("ascii")


def mlp_decoder_payload(model: nn.Module) -> dict | None:
    """An MLP VAE's decoder as JSON-ready layers, or None where the browser cannot run it.

    Shape of the result: ``{"id", "layers": [{"w", "b", "shape": [out, in], "relu"}], "output": [C, H, W]}``,
    where ``w`` (row-major, out x in) and ``b`` are base64 little-endian float32; the image is
    ``sigmoid`` of the last layer, laid out (C, H, W). ``id`` is a content hash so the pad can
    keep the weights it already has.
    """
    cfg = getattr(model, "cfg", None)
    decoder = getattr(model, "decoder", None)
    # Conv decoders and TorchScript models take the Python path: only a flat Linear/ReLU stack
    # ending in Unflatten is reproduced exactly by the JS loop.
    if cfg is None or getattr(cfg, "arch", None) != "mlp" or not isinstance(decoder, nn.Sequential):
        return None
    mods = list(decoder)
    if not mods or not isinstance(mods[-1], nn.Unflatten):
        return None
    layers: list[dict] = []
    for m in mods[:-1]:
        if isinstance(m, nn.Linear):
            layers.append({"w": m.weight, "b": m.bias, "relu": False})
        elif isinstance(m, nn.ReLU) and layers and not layers[-1]["relu"]:
            layers[-1]["relu"] = True
        else:
            return None
    if not layers or layers[-1]["relu"] or any(l["b"] is None for l in layers):
        return None
    c, h, w = (int(s) for s in mods[-1].unflattened_size)
    if layers[-1]["w"].shape[0] != c * h * w:
        return None

    digest = hashlib.sha1()
    out_layers = []
    for l in layers:
        wb, bb = _b64_f32(l["w"]), _b64_f32(l["b"])
        digest.update(wb.encode())
        digest.update(bb.encode())
        out_layers.append({"w": wb, "b": bb, "shape": [int(s) for s in l["w"].shape], "relu": l["relu"]})
    return {"id": digest.hexdigest()[:16], "layers": out_layers, "output": [c, h, w]}
