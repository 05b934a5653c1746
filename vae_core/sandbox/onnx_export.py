"""The decoder of a user's model as an ONNX graph, for the browser; made and checked in the worker.

- TorchScript: a small wrapper module whose forward(z) calls the loaded module's decode is
  scripted, put in eval mode and exported with the TorchScript-based exporter (`dynamo=False`);
- a `torch.export` program: the dynamo exporter takes decode.pt2's program as it is;
- ONNX: decode.onnx's bytes, already checked when the zip was loaded.
The result must parse, pass the same ONNX checks as an uploaded graph (standard operators, no
external data) and equal the model's own decode on a few random z under onnxruntime (max abs
difference below `TOLERANCE`), or the worker refuses it with one sentence. This worker keeps the
Python library readable (`formats.read_only_paths`): the exporters import code per operation.
"""
from __future__ import annotations

import io
import warnings

import torch

from . import formats

TOLERANCE = 1e-4  # max abs difference from the model's own decode; exports that match measured <= 3e-7
CHECK_ROWS = 4  # random z rows the export is compared on
OPSET = 18


class _Decode(torch.nn.Module):
    """forward(z) = the loaded TorchScript module's decode(z), so the exporter sees the decoder alone."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


def _export_torchscript(module, z: torch.Tensor) -> bytes:
    wrapper = torch.jit.script(_Decode(module).eval())
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (z,), buf, dynamo=False, opset_version=OPSET, input_names=["z"],
                          output_names=["mean"], dynamic_axes={"z": {0: "batch"}, "mean": {0: "batch"}})
    return buf.getvalue()


def _export_program(ep) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(ep, dynamo=True, opset_version=OPSET, verbose=False)
    return prog.model_proto.SerializeToString()


def decoder_onnx(module, fmt: str, latent_dim: int, name: str, threads: int) -> bytes:
    """The decoder as checked ONNX bytes; ValueError with one sentence where it cannot be made or differs."""
    batch = (module._batch["decode"] or CHECK_ROWS) if fmt != "torchscript" else CHECK_ROWS
    g = torch.Generator().manual_seed(0)
    z = torch.randn(batch, latent_dim, generator=g)
    try:
        if fmt == "torchscript":
            data = _export_torchscript(module, z[:1])
        elif fmt == "export":
            data = _export_program(module.decode_program)
        else:
            data = module.decode_bytes
    except Exception as e:
        raise ValueError(f"{name}: its decoder could not be exported to ONNX ({formats.why(e)[:300]})") from None
    proto = formats.read_onnx(data, f"{name}: the decoder's ONNX export", 1)
    fixed = formats._onnx_batch(proto)
    del proto
    if fixed is not None and fixed != batch:
        z = torch.randn(fixed, latent_dim, generator=g)
    try:
        sess = formats.onnx_session(data, threads)
        got = formats._runner(sess)(z)[0]
    except Exception as e:
        raise ValueError(f"{name}: onnxruntime could not run the decoder's ONNX export ({formats.why(e)[:300]})") \
            from None
    with torch.no_grad():
        want = module.decode(z)
    if tuple(got.shape) != tuple(want.shape):
        raise ValueError(f"{name}: the decoder's ONNX export gives shape {tuple(got.shape)}, the model's decode "
                         f"{tuple(want.shape)}")
    diff = float((got - want.float()).abs().max()) if got.numel() else 0.0
    if not diff < TOLERANCE:  # NaN too
        raise ValueError(f"{name}: the decoder's ONNX export differs from the model's decode by {diff:.3g} "
                         f"(more than {TOLERANCE:g}) on random codes, so it is not used")
    return data
