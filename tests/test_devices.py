"""`--device auto|cpu|cuda`: resolved, refused in one sentence where it cannot be used, and never part of a run.

CUDA paths run where a GPU is present and are skipped (not failed) elsewhere.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_core import ModelConfig, TrainConfig, VAE, devices
from vae_core.runs.checkpoints import save_run
from vae_core.runs.run_load import load_model
from vae_core.cli import main
from vae_core.data import load_dataset
from vae_core.train import fit

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
without_cuda = pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
TINY = ["--data", "digits", "--n", "300", "--epochs", "1", "--latent-dim", "2", "--hidden", "16", "--quiet"]


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}


def test_cpu_and_auto_resolve():
    assert devices.resolve("cpu") == torch.device("cpu")
    assert devices.resolve("auto").type == ("cuda" if CUDA else "cpu")
    with pytest.raises(ValueError, match="--device must be one of auto, cpu, cuda"):
        devices.resolve("gpu")


@without_cuda
def test_cuda_is_refused_in_one_sentence_without_a_gpu():
    with pytest.raises(ValueError) as e:
        devices.resolve("cuda")
    msg = str(e.value)
    assert "--device cuda" in msg and "--device cpu" in msg and "\n" not in msg


@needs_cuda
def test_cuda_takes_the_local_rank_gpu_and_refuses_a_rank_without_one():
    assert devices.resolve("cuda") == torch.device("cuda", 0)
    n = torch.cuda.device_count()
    assert devices.resolve("cuda", local_rank=n - 1) == torch.device("cuda", n - 1)
    with pytest.raises(ValueError, match="--nproc-per-node"):
        devices.resolve("cuda", local_rank=n)


def test_native_bf16_on_the_cpu_follows_its_instruction_set():
    flags = _cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:
        assert devices.native_bf16("cpu")
    elif flags and not any(f.startswith("avx512") for f in flags):  # AVX2 and older: emulated
        assert not devices.native_bf16("cpu")
    else:
        pytest.skip("this CPU's bf16 support is not decided by its flags alone (AVX-512 without BF16)")


@needs_cuda
def test_native_bf16_on_a_gpu_is_ampere_or_newer():
    assert devices.native_bf16("cuda") == (torch.cuda.get_device_capability(0)[0] >= 8)


def test_model_device_is_the_first_parameter_s():
    model = VAE(ModelConfig(input_shape=(1, 2, 2), hidden=(4,), latent_dim=2))
    assert devices.model_device(model) == torch.device("cpu")
    assert devices.model_device(object()) == torch.device("cpu")  # nothing to ask: the CPU


def test_train_and_diagnose_on_the_cpu_leave_no_device_in_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--device", "cpu", "--out", str(out)]) == 0
    config = (out / "config.json").read_text()
    assert "device" not in config and "cuda" not in config  # --device is no config field
    assert all(p.device.type == "cpu" for p in load_model(out).parameters())
    capsys.readouterr()
    assert main(["diagnose", str(out), "--data", "digits", "--device", "cpu", "--json", "--quiet",
                 "--n-points", "100", "--iwae-k", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["iwae_k"] == 5


@without_cuda
@pytest.mark.parametrize("command", ["train", "diagnose"])
def test_device_cuda_is_refused_in_one_line_by_the_cli(command, tmp_path, capsys):
    if command == "train":
        argv = ["train", *TINY, "--device", "cuda", "--out", str(tmp_path / "run")]
    else:
        argv = ["diagnose", "runs/default", "--data", "mnist", "--device", "cuda", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --device cuda") and "--device cpu" in err[0]
    assert not (tmp_path / "run").exists()


@needs_cuda
def test_a_run_trained_on_the_gpu_loads_the_same_on_the_cpu(tmp_path):
    data = load_dataset("digits", n=300, seed=0)
    train, ev = data.split(0.2, 0)
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=data.shape, hidden=(32,), latent_dim=2)).to("cuda")
    cfg = TrainConfig(epochs=2, batch_size=64, seed=0)
    hist = fit(model, train, ev, cfg)
    assert hist.completed and next(model.parameters()).device.type == "cuda"
    save_run(tmp_path / "run", model, cfg, hist.rows, dataset="digits")
    loaded = load_model(tmp_path / "run")
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    with torch.inference_mode():
        mu_gpu, _ = model.encode(ev.x.cuda())
        mu_cpu, _ = loaded.encode(ev.x)
    np.testing.assert_allclose(mu_cpu.numpy(), mu_gpu.cpu().numpy(), atol=1e-4)


@needs_cuda
def test_diagnose_on_the_gpu_agrees_with_the_cpu(capsys):
    reports = []
    for device in ("cpu", "cuda"):
        assert main(["diagnose", "runs/default", "--data", "mnist", "--device", device, "--json", "--quiet",
                     "--n-points", "200", "--iwae-k", "10"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    cpu, gpu = reports
    assert gpu["kl"] == pytest.approx(cpu["kl"], rel=1e-3, abs=1e-3)  # closed form: no Monte Carlo noise
    np.testing.assert_allclose(gpu["kl_per_dim"], cpu["kl_per_dim"], rtol=1e-3, atol=1e-3)
    assert abs(gpu["iwae"] - cpu["iwae"]) < 5 * max(cpu["iwae_se"], 0.05)  # different draws: within their error
