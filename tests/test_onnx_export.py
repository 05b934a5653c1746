"""`vae_core.onnx_export`: the decoder's ONNX graph equals torch's own decode (onnxruntime, float64),
is kept on disk by the model's content, and a failed export is one sentence."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vae_core import onnx_export
from vae_core.config import ModelConfig
from vae_core.models import VAE

ort = pytest.importorskip("onnxruntime")


def _vae(arch: str, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    kw = dict(conv_channels=(4, 8)) if arch == "conv" else {}
    return VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=3, arch=arch, hidden=(16,), **kw)).eval()


def _run(onnx_bytes: bytes, z: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: z.astype(np.float32)})[0], dtype=np.float64)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_exported_decoder_equals_torch_decode(arch, tmp_path):
    model = _vae(arch)
    data = onnx_export.decoder_onnx(model, tmp_path)
    rng = np.random.default_rng(1)
    for _ in range(5):
        z = 3 * rng.standard_normal((1, 3))
        got = _run(data, z)
        with torch.inference_mode():
            want = model.decode(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
        assert got.shape == want.shape == (1, 1, 8, 8)
        assert np.abs(got - want).max() < 1e-5
        assert np.ptp(want) > 1e-3  # a decoder whose output moves, so equality says something


def test_cached_by_content_and_written_once(tmp_path):
    a, b = _vae("mlp", seed=0), _vae("mlp", seed=1)
    assert onnx_export.model_fingerprint(a) != onnx_export.model_fingerprint(b)
    assert onnx_export.model_fingerprint(a) == onnx_export.model_fingerprint(_vae("mlp", seed=0))
    first = onnx_export.decoder_onnx(a, tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"{onnx_export.model_fingerprint(a)}.onnx"]  # no temporary file left behind
    # The kept file is what the next call returns: overwrite it and see it come back unchanged.
    path = tmp_path / files[0]
    marker = first[:-1] + bytes([first[-1] ^ 1])
    path.write_bytes(marker)
    assert onnx_export.decoder_onnx(a, tmp_path) == marker
    onnx_export.decoder_onnx(b, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_training_mode_model_is_exported_as_in_eval(tmp_path):
    """Batch norm traced in training mode would normalise by the batch (one z): the export uses eval mode
    and leaves the caller's model as it was."""
    torch.manual_seed(0)

    class BN(nn.Module):
        latent_dim = 3

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 64)
            self.bn = nn.BatchNorm1d(64)
            self.bn.running_mean.fill_(0.3)
            self.bn.running_var.fill_(2.0)

        def decode(self, z):
            return torch.sigmoid(self.bn(self.lin(z))).view(-1, 1, 8, 8)

    m = BN().train()
    data = onnx_export.decoder_onnx(m, tmp_path)
    assert m.training
    z = np.array([[0.5, -1.0, 2.0]])
    with torch.inference_mode():
        want = m.eval().decode(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
    assert np.abs(_run(data, z) - want).max() < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_model_on_a_gpu_is_exported_from_a_cpu_copy(tmp_path):
    """The app keeps a run's model on the GPU when there is one: the export must still trace a CPU graph,
    equal to the model's own decode on the GPU, and leave the model where it was."""
    model = _vae("conv").cuda()
    data = onnx_export.decoder_onnx(model, tmp_path)
    assert next(model.parameters()).is_cuda
    z = np.array([[0.3, -1.2, 2.0]])
    with torch.inference_mode():
        want = model.decode(torch.as_tensor(z, dtype=torch.float32, device="cuda")).double().cpu().numpy()
    assert np.abs(_run(data, z) - want).max() < 1e-4  # cuDNN's convolutions round differently from the CPU's


def test_failed_export_is_one_sentence(tmp_path):
    class Opaque(nn.Module):
        latent_dim = 2

        def decode(self, z):
            # numpy in the middle: neither exporter can trace through it
            return torch.from_numpy(np.tanh(z.numpy())).view(-1, 1, 1, 2)

    with pytest.raises(onnx_export.OnnxExportError) as e:
        onnx_export.decoder_onnx(Opaque(), tmp_path)
    msg = str(e.value)
    assert msg.endswith(".") and "\n" not in msg
    assert not list(tmp_path.iterdir())  # nothing kept


def test_too_large_graph_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_export, "MAX_ONNX_BYTES", 1000)
    with pytest.raises(onnx_export.OnnxExportError, match="MB"):
        onnx_export.decoder_onnx(_vae("mlp"), tmp_path)
