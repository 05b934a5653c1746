"""Writing a VAE (an nn.Module with `shape`, `latent`, `encode`, `decode`) in each upload format, as
the user guide's recipes do: TorchScript, a zip of torch.export programs, a zip of ONNX graphs (see
docs/contracts.md). Used by benchmarks/upload_formats.py and tests/test_model_formats.py."""
from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn


def _write_zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return Path(path)


class Enc(nn.Module):
    """What a user exports as encode: forward(x) = model.encode(x)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        return self.vae.encode(x)


class Dec(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z)


def _pt2(module: nn.Module, example: torch.Tensor, dynamic: bool = True) -> bytes:
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    ep = torch.export.export(module.eval(), (example,), dynamic_shapes=shapes)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return buf.getvalue()


def _onnx(module: nn.Module, example: torch.Tensor, inp: str, outs: list[str], dynamic: bool = True) -> bytes:
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in [inp, *outs]} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), buf, dynamo=False, input_names=[inp], output_names=outs,
                          dynamic_axes=axes)
    return buf.getvalue()


def write_model(vae: nn.Module, fmt: str, folder: Path, meta: dict | None = None, dynamic: bool = True) -> Path:
    """vae written in fmt under folder, as a user would (README recipes)."""
    vae = vae.eval()
    x, z = torch.rand(3, *vae.shape), torch.randn(3, vae.latent)
    if not dynamic:
        x, z = x[:1], z[:1]
    extra = {"meta.json": json.dumps(meta)} if meta is not None else {}
    if fmt == "torchscript":
        path = folder / f"{type(vae).__name__}.ts"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.script(vae), str(path))
        return path
    if fmt == "export":
        return _write_zip(folder / f"{type(vae).__name__}-export.zip",
                          {"encode.pt2": _pt2(Enc(vae), x, dynamic), "decode.pt2": _pt2(Dec(vae), z, dynamic), **extra})
    return _write_zip(folder / f"{type(vae).__name__}-onnx.zip",
                      {"encode.onnx": _onnx(Enc(vae), x, "x", ["mu", "logvar"], dynamic),
                       "decode.onnx": _onnx(Dec(vae), z, "z", ["mean"], dynamic), **extra})
