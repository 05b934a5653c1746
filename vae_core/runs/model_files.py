"""Model files: a user's model file (TorchScript, or a zip of torch.export or ONNX programs; run in a
child worker), ours exported as TorchScript, and a pickle checkpoint refused with how to convert it.

`vae_core.errors.CheckpointError` is the one error for a model file or run directory that cannot be loaded;
the run directories themselves are read in `run_load` and written in `checkpoints`.
"""
from __future__ import annotations

import copy
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import CheckpointError
from ..models import VAE

if TYPE_CHECKING:
    from ..sandbox import RemoteModel

PICKLE_HELP = (
    "Convert it without pickle: save the weights with safetensors.torch.save_file(model.state_dict(), ...) "
    "beside a config.json, or export encode and decode as a .zip of encode.pt2 and decode.pt2 "
    "(torch.export.save) or of encode.onnx and decode.onnx (torch.onnx.export), or with "
    "torch.jit.save(torch.jit.script(model), 'model.ts') (deprecated upstream), following the contract "
    "(encode(x) -> (mu, logvar), decode(z) -> mean)."
)


def looks_like_pickle(path: Path) -> bool:
    """Whether a file is a pickle (protocol 2+) or a torch.save zip (which holds data.pkl)."""
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":  # pickle protocol 2+ opcode PROTO
        return True
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    return False


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zips with a code/ folder; torch.save zips have only data.pkl + data/."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return any("/code/" in n or n.startswith("code/") for n in names) and any(n.endswith("constants.pkl") for n in names)


def _starts_like_a_zip(path: Path) -> bool:
    """The file begins with a zip's first local header (b"PK\\x03\\x04"), whatever its end holds."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_torchscript(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> "RemoteModel":
    """A user's TorchScript model behind the VAE interface, run in a child worker.

    The contract: docs/contracts.md, "Bring your own model".

    The file is loaded by `torch.jit.load` in the worker only (docs/architecture.md, "Trust boundary"), after
    its filesystem is closed; every method is checked against the operation allow-list before
    any runs. With `input_shape` the model is also probed on zeros of that shape.
    """
    from ..sandbox import RemoteModel

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    if not _is_torchscript(p):
        if looks_like_pickle(p):
            raise CheckpointError(f"{p} is a pickle checkpoint (torch.save), which is never unpickled "
                                  f"because it can run arbitrary code. {PICKLE_HELP}")
        if not zipfile.is_zipfile(p) and _starts_like_a_zip(p):
            raise CheckpointError(f"{p} is a damaged zip (its end is missing or broken: cut short while copying or "
                                  "uploading?); write it again, or upload it again")
        raise CheckpointError(f"{p} is not a TorchScript file (torch.jit.save) nor a run directory. {PICKLE_HELP}")
    return RemoteModel(p, input_shape).eval()


def load_model_file(path: str | Path, input_shape: tuple[int, int, int] | None = None) -> "RemoteModel":
    """A user's model file behind the VAE interface, run in a child worker: a zip of torch.export
    programs (encode.pt2, decode.pt2) or of ONNX graphs (encode.onnx, decode.onnx), each with an
    optional meta.json, or a TorchScript file. Nothing of it runs in this process.
    """
    from .model_zips import read_model_zip, zip_format
    from ..sandbox import RemoteModel

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file not found: {p}")
    if _is_torchscript(p) or zip_format(p) is None:
        return load_torchscript(p, input_shape)
    mz = read_model_zip(p)  # members and meta.json checked here; the programs are opened in the worker
    return RemoteModel(p, input_shape, fmt=mz.format, meta=mz.meta).eval()


class _ScriptableVAE(torch.nn.Module):
    """The parts of a VAE that TorchScript needs, with the contract's methods (docs/contracts.md)."""

    # attributes likelihood (str) and scale (float) are inferred by TorchScript from their values

    def __init__(self, model: VAE):
        super().__init__()
        self.encoder, self.enc_out, self.decoder = model.encoder, model.enc_out, model.decoder
        self.likelihood = model.likelihood
        self.scale = float(model.log_scale.exp())

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc_out(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def export_torchscript(model: VAE, path: str | Path) -> Path:
    """Save a trained VAE as a TorchScript file that `load_model` (or anyone's code) can load."""
    path = Path(path)
    scripted = torch.jit.script(_ScriptableVAE(copy.deepcopy(model).eval()))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.jit.save(scripted, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
