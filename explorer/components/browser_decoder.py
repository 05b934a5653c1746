"""A decoder in the form the browser runs it: an MLP's weights for the plain-JS decoder, or any decoder as
an ONNX graph for onnxruntime-web (docs in `components/onnx_runtime.py`)."""
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


def onnx_decoder_payload(onnx_bytes: bytes, latent_dim: int, output: tuple[int, int, int]) -> dict:
    """A decoder's ONNX graph for the browser: ``{"kind": "onnx", "id", "onnx", "latent_dim", "output"}``.

    ``onnx`` is the graph's bytes in base64 (the loader sends them once per page); ``id`` is a hash of
    them, by which the pad and the sliders name the session; ``output`` is (C, H, W) of decode(z)."""
    return {"kind": "onnx", "id": hashlib.sha1(onnx_bytes).hexdigest()[:16],
            "onnx": base64.b64encode(onnx_bytes).decode("ascii"), "latent_dim": int(latent_dim),
            "output": [int(s) for s in output]}


def onnx_decoder_ref(payload: dict, affine: dict | None = None) -> dict:
    """What the pad and the sliders are sent for an ONNX decoder: its id and shapes, never its bytes.

    affine = {"base": (D,), "vector": (D,)} makes it a decoder of one strength s, z = base + s * vector
    (the attribute vector's strength slider); the browser computes z (float64) and runs the graph."""
    ref = {"kind": "onnx", "id": payload["id"], "latent_dim": payload["latent_dim"], "output": payload["output"]}
    if affine is not None:
        base = [float(v) for v in affine["base"]]
        vector = [float(v) for v in affine["vector"]]
        if len(base) != payload["latent_dim"] or len(vector) != payload["latent_dim"]:
            raise ValueError(f"base and vector must have the decoder's {payload['latent_dim']} dimensions, got "
                             f"{len(base)} and {len(vector)}")
        key = hashlib.sha1(repr((base, vector)).encode()).hexdigest()[:16]
        ref["affine"] = {"base": base, "vector": vector, "key": key}
    return ref


def decoder_in_dim(decoder: dict) -> int:
    """How many inputs a browser decoder takes: an MLP's first layer's, an ONNX decoder's latent size (1
    for a decoder of a strength)."""
    if decoder.get("kind") == "onnx":
        return 1 if decoder.get("affine") else int(decoder["latent_dim"])
    return int(decoder["layers"][0]["shape"][1])
