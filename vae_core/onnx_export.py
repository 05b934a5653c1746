"""A model's decoder as an ONNX graph, so a browser can run it (onnxruntime-web, WebAssembly).

`decoder_onnx(model)` exports `decode(z)` for one latent vector, z (1, D) -> mean image (1, C, H, W),
checks the graph against the model's own decode with onnxruntime before trusting it, and keeps the
bytes on disk by the model's content (`model_fingerprint`), so a model is exported once per machine.

Only for models whose code this process may run: the project's own runs (`models.VAE`). A user's
model is exported inside its sandbox worker (`RemoteModel.decoder_onnx`), never here.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

# A browser holds the graph in memory and the app sends it base64 (4/3 of its size) once per page:
# past this the server decodes instead.
MAX_ONNX_BYTES = 100 * 2**20
# Largest |browser - torch| tolerated on the checks' decodes, in data units ([0, 1] images).
TOLERANCE = 1e-4
OPSET = 18  # onnxruntime-web 1.30 runs opsets up to 23; 18 is what both torch exporters write well
CACHE_ENV = "VAE_EXPLORER_ONNX_CACHE"  # where exported decoders are kept (default ~/.cache/vae_explorer/onnx)
_FORMAT = "decoder-onnx-1"  # part of every fingerprint: bump it when the export itself changes


class OnnxExportError(ValueError):
    """The decoder could not be exported (or its export was not exact); the message is one sentence."""


class _Decode(nn.Module):
    """`forward(z) = model.decode(z)`: the one method the exporters trace."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


def cache_dir() -> Path:
    """Where exported decoders are kept: $VAE_EXPLORER_ONNX_CACHE, else ~/.cache/vae_explorer/onnx."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vae_explorer" / "onnx")


def model_fingerprint(model: nn.Module) -> str:
    """A hash of what the decoder's export depends on: the model's class, config, every weight and buffer
    (names, shapes, dtypes, bytes), and the torch version and export format that write the graph."""
    h = hashlib.sha256(f"{_FORMAT}|{torch.__version__}|{type(model).__qualname__}".encode())
    h.update(repr(getattr(model, "cfg", None)).encode())
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"|{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:32]


def _export(module: nn.Module, z: torch.Tensor, path: Path) -> None:
    """Write module(z)'s graph to path: the TorchScript-based exporter first (about 1 s for a 64x64 conv
    decoder, against several for the dynamo one), the dynamo exporter where it fails (it outlives the
    former, which torch 2.13 marks as deprecated)."""
    names = dict(input_names=["z"], output_names=["x"], opset_version=OPSET)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(module, (z,), str(path), dynamo=False, **names)
        return
    except Exception as e:  # noqa: BLE001 - any exporter failure: try the other exporter
        log.info("TorchScript-based ONNX export failed (%s); trying the dynamo exporter", e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (z,), str(path), dynamo=True, external_data=False, verbose=False, **names)


def check_onnx(onnx_bytes: bytes, model: nn.Module, n: int = 4, seed: int = 0) -> float:
    """Largest |onnxruntime(graph)(z) - model.decode(z)| over n latent vectors (z = 0, then N(0, 2^2)
    draws), computed in float64; raises OnnxExportError where the graph does not run or differs by
    more than `TOLERANCE`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one decode at a time; leave the other cores to the pages
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise OnnxExportError(f"onnxruntime could not load the exported decoder ({str(e).splitlines()[0]}).") from None
    d = int(model.latent_dim)
    inputs = sess.get_inputs()
    if len(inputs) != 1 or list(inputs[0].shape) != [1, d]:
        raise OnnxExportError(f"the exported decoder takes {[tuple(i.shape) for i in inputs]}, not one z of shape "
                              f"(1, {d}): its decode computes outside torch, which a trace cannot follow.")
    name = inputs[0].name
    rng = np.random.default_rng(seed)
    zs = [np.zeros((1, d), np.float32)] + [(2 * rng.standard_normal((1, d))).astype(np.float32) for _ in range(n - 1)]
    worst = 0.0
    for z in zs:
        with torch.inference_mode():
            want = model.decode(torch.from_numpy(z)).double().cpu().numpy()
        try:
            got = np.asarray(sess.run(None, {name: z})[0], dtype=np.float64)
        except Exception as e:  # noqa: BLE001
            raise OnnxExportError(f"the exported decoder failed in onnxruntime ({str(e).splitlines()[0]}).") from None
        if got.shape != want.shape:
            raise OnnxExportError(f"the exported decoder gives shape {got.shape}, the model's decode {want.shape}.")
        worst = max(worst, float(np.abs(got - want).max()))
    if not worst <= TOLERANCE:
        raise OnnxExportError(f"the exported decoder differs from the model's decode by {worst:.2g} "
                              f"(more than {TOLERANCE:g}).")
    return worst


def export_decoder_onnx(model: nn.Module) -> bytes:
    """The decoder as ONNX bytes, checked against `model.decode` (`check_onnx`); no cache.

    Exported in eval mode and from the CPU (a copy, when the model is in training mode, where batch norm
    and dropout would be traced as in training, or on a GPU). Raises OnnxExportError with one sentence
    where it cannot.
    """
    on = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    if model.training or on.type != "cpu":
        # A copy, so the caller's (often shared) model stays as it is: in eval mode (batch norm and
        # dropout as at inference) and on the CPU (the graph is traced with a CPU z; the browser runs it).
        model = copy.deepcopy(model).cpu().eval()
    d = getattr(model, "latent_dim", None)
    if not isinstance(d, int) or d < 1:
        raise OnnxExportError("the model has no latent size (latent_dim) to export its decoder with.")
    z = torch.zeros(1, d)
    with tempfile.TemporaryDirectory(prefix="vae-onnx-") as tmp:
        path = Path(tmp) / "decoder.onnx"
        try:
            _export(_Decode(model).eval(), z, path)
        except Exception as e:  # noqa: BLE001 - both exporters failed: say why in one line
            raise OnnxExportError(f"torch.onnx.export could not export this decoder "
                                  f"({str(e).strip().splitlines()[0][:200]}).") from None
        size = path.stat().st_size
        if size > MAX_ONNX_BYTES:
            raise OnnxExportError(f"the decoder's ONNX graph is {size / 2**20:.0f} MB, more than the "
                                  f"{MAX_ONNX_BYTES // 2**20} MB a browser is sent.")
        data = path.read_bytes()
    check_onnx(data, model)
    return data


def decoder_onnx(model: nn.Module, directory: str | Path | None = None) -> bytes:
    """The model's decoder as ONNX bytes (z (1, D) -> image (1, C, H, W)), exported once and kept on disk.

    Kept as `<directory>/<model_fingerprint(model)>.onnx` (default `cache_dir()`), written atomically
    (a temporary file, then a rename), only after `check_onnx` passed. Raises OnnxExportError.
    """
    root = Path(directory) if directory is not None else cache_dir()
    path = root / f"{model_fingerprint(model)}.onnx"
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    if data is not None and 0 < len(data) <= MAX_ONNX_BYTES:
        return data
    data = export_decoder_onnx(model)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=root)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:  # a read-only home: the export still serves this process
        log.warning("could not keep the exported decoder in %s: %s", root, e)
    return data
