"""The vae_core foundation: losses, models, trainer and checkpoints, against independent references.

Every reference comes from torch.distributions / torch.nn.functional or a value worked out by
hand, never from the code under test. Shapes are tiny (B=4, 1x8x8, latent 2).
"""
from __future__ import annotations

import copy
import csv
import json
import math
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from vae_core import ModelConfig, TrainConfig, VAE
from vae_core.runs import checkpoints as ck, run_load
from vae_core import losses
from vae_core.errors import CheckpointError
from vae_core.runs.checkpoints import save_run
from vae_core.runs.model_files import export_torchscript
from vae_core.runs.run_load import list_runs, load_model, load_run
from vae_core.data import Dataset
from vae_core.train import fit

B, D, SHAPE = 4, 2, (1, 8, 8)
# history.csv columns that come first, in order (docs/contracts.md, "Run directory")
CONTRACT_COLUMNS = ["epoch", "loss", "recon_nll", "kl", "beta", "eval_elbo", "seconds", "samples_per_s"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny shapes gain nothing from threads, and on a loaded machine two OpenMP threads stall each other."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tiny_model(seed: int = 0, **kw) -> VAE:
    torch.manual_seed(seed)
    cfg = dict(input_shape=SHAPE, latent_dim=D, hidden=(16,))
    cfg.update(kw)
    return VAE(ModelConfig(**cfg)).eval()


def _x(seed: int = 0, n: int = B, shape=SHAPE) -> torch.Tensor:
    return torch.rand(n, *shape, generator=_gen(seed))


# ---------------------------------------------------------------------------------------- losses

def test_kl_per_dim_matches_torch_distributions():
    g = _gen(1)
    mu, logvar = torch.randn(B, D, generator=g), torch.randn(B, D, generator=g)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(()), torch.ones(())))
    got = losses.kl_per_dim(mu, logvar)
    assert got.shape == (B, D)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_bernoulli_nll_matches_bce_and_bernoulli_log_prob():
    g = _gen(2)
    logits = torch.randn(B, *SHAPE, generator=g) * 3
    grey = torch.rand(B, *SHAPE, generator=g)  # grey values: the cross-entropy on probabilities
    ref_grey = F.binary_cross_entropy(torch.sigmoid(logits).double(), grey.double(), reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(losses.bernoulli_nll(grey, logits).double(), ref_grey, rtol=1e-5, atol=1e-4)
    binary = (grey > 0.5).float()  # binary pixels: a true log-likelihood
    ref_bin = -Bernoulli(logits=logits).log_prob(binary).sum((1, 2, 3))
    got = losses.bernoulli_nll(binary, logits)
    assert got.shape == (B,)
    torch.testing.assert_close(got, ref_bin, rtol=1e-5, atol=1e-4)


def test_bernoulli_nll_from_mean_matches_bce_and_log_prob():
    g = _gen(3)
    mean = torch.rand(B, *SHAPE, generator=g) * 0.98 + 0.01  # away from the clamp at eps
    grey = torch.rand(B, *SHAPE, generator=g)
    ref = F.binary_cross_entropy(mean, grey, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(losses.bernoulli_nll_from_mean(grey, mean), ref, rtol=1e-5, atol=1e-4)
    binary = (grey > 0.5).float()
    ref_bin = -Bernoulli(probs=mean).log_prob(binary).sum((1, 2, 3))
    torch.testing.assert_close(losses.bernoulli_nll_from_mean(binary, mean), ref_bin, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("s", [0.1, 1.0, 2.5])
def test_gaussian_nll_matches_normal_log_prob(s):
    g = _gen(4)
    x, mean = torch.rand(B, *SHAPE, generator=g), torch.rand(B, *SHAPE, generator=g)
    ref = -Normal(mean, s).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(losses.gaussian_nll(x, mean, math.log(s)), ref, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(losses.gaussian_nll(x, mean, torch.tensor(math.log(s))), ref, rtol=1e-5, atol=1e-3)


def test_elbo_loss_reductions_are_mean_over_batch_of_sums():
    recon = torch.tensor([10.0, 20.0, 30.0, 40.0])  # (B,), already summed over pixels
    kl_dims = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])  # (B, D)
    t = losses.elbo_loss(recon, kl_dims, beta=2.0)
    assert float(t.recon_nll) == pytest.approx(25.0)
    assert float(t.kl) == pytest.approx((1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) / 4)  # 9.0
    torch.testing.assert_close(t.kl_per_dim, torch.tensor([4.0, 5.0]))
    assert float(t.loss) == pytest.approx(25.0 + 2.0 * 9.0)
    # beta = 1, no free bits: the loss is -ELBO
    assert float(losses.elbo_loss(recon, kl_dims).loss) == pytest.approx(34.0)


def test_free_bits_floor_per_dimension_of_batch_mean():
    recon = torch.zeros(B)
    # batch means per dim: 0.1, 0.5, 2.0; lambda = 0.8 lifts the first two only
    kl_dims = torch.tensor([[0.0, 0.5, 1.0], [0.2, 0.5, 3.0], [0.1, 0.5, 2.0], [0.1, 0.5, 2.0]])
    lam = 0.8
    t = losses.elbo_loss(recon, kl_dims, beta=1.0, free_bits=lam)
    assert float(t.loss) == pytest.approx(max(lam, 0.1) + max(lam, 0.5) + max(lam, 2.0))  # 3.6
    assert float(t.kl) == pytest.approx(2.6)  # the true KL is reported without the floor
    # the floor gives no gradient to the dims below lambda
    kd = kl_dims.clone().requires_grad_(True)
    losses.elbo_loss(recon, kd, free_bits=lam).loss.backward()
    torch.testing.assert_close(kd.grad, torch.tensor([[0.0, 0.0, 0.25]] * 4))


def test_kl_weight_constant_and_linear():
    for p in (0.0, 0.37, 1.0):
        assert losses.kl_weight(p, 2.5, "constant") == pytest.approx(2.5)
    kw = dict(warmup_fraction=0.3, beta_start=0.1)
    assert losses.kl_weight(0.0, 1.0, "linear", **kw) == pytest.approx(0.1)
    assert losses.kl_weight(0.15, 1.0, "linear", **kw) == pytest.approx(0.55)  # halfway through warm-up
    assert losses.kl_weight(0.3, 1.0, "linear", **kw) == pytest.approx(1.0)
    assert losses.kl_weight(0.9, 1.0, "linear", **kw) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="kl_schedule"):
        losses.kl_weight(0.5, 1.0, "sigmoid")


def test_kl_weight_cyclical_fu_et_al():
    # M = 4 cycles of length 0.25; beta rises linearly over the first R = 0.5 of each (0.125), then holds
    kw = dict(cycles=4, ramp_fraction=0.5)
    expected = {0.0: 0.0, 0.0625: 1.0, 0.125: 2.0, 0.2: 2.0, 0.25: 0.0, 0.3125: 1.0, 0.5: 0.0,
                0.53125: 0.5, 0.875: 2.0, 1.0: 2.0}
    for p, want in expected.items():
        assert losses.kl_weight(p, 2.0, "cyclical", **kw) == pytest.approx(want), p
    # M = 2, R = 1: a saw-tooth over each half
    assert losses.kl_weight(0.25, 1.0, "cyclical", cycles=2, ramp_fraction=1.0) == pytest.approx(0.5)
    assert losses.kl_weight(0.75, 1.0, "cyclical", cycles=2, ramp_fraction=1.0) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("arch,shape,extra", [
    ("mlp", (1, 28, 28), {}),
    ("mlp", (3, 64, 64), {}),
    ("conv", (1, 28, 28), {"conv_channels": (4, 8)}),
    ("conv", (1, 64, 64), {"conv_channels": (4, 8, 8)}),
    ("conv", (1, 8, 8), {"conv_channels": (4, 8)}),
])
def test_model_shapes_and_decode_range(arch, shape, extra):
    torch.manual_seed(0)
    m = VAE(ModelConfig(input_shape=shape, latent_dim=D, arch=arch, hidden=(16,), **extra)).eval()
    x = _x(0, shape=shape)
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (B, D)
    with torch.no_grad():
        out = m.decode(torch.randn(B, D) * 3)
    assert out.shape == (B, *shape)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    logits, mu2, logvar2 = m(x)
    assert logits.shape == (B, *shape) and mu2.shape == (B, D)
    assert m.latent_dim == D and m.input_shape == shape


def test_nll_equals_likelihood_reference():
    x = _x(5)
    z = torch.randn(B, D, generator=_gen(5))
    m = _tiny_model()
    binary = (x > 0.5).float()
    ref = -Bernoulli(logits=m.decode_logits(z)).log_prob(binary).sum((1, 2, 3))
    torch.testing.assert_close(m.nll(binary, z), ref, rtol=1e-5, atol=1e-4)
    g = _tiny_model(likelihood="gaussian", gaussian_scale=0.3)
    ref_g = -Normal(g.decode(z), 0.3).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(g.nll(x, z), ref_g, rtol=1e-5, atol=1e-3)


def test_learned_gaussian_scale_is_a_parameter_with_gradient():
    m = _tiny_model(likelihood="gaussian", learn_scale=True).train()
    assert isinstance(m.log_scale, nn.Parameter)
    assert any(p is m.log_scale for p in m.parameters())
    logits, mu, logvar = m(_x(6))
    m.nll_from_logits(_x(6), logits).mean().backward()
    assert m.log_scale.grad is not None and float(m.log_scale.grad.abs()) > 0
    fixed = _tiny_model(likelihood="gaussian")
    assert not isinstance(fixed.log_scale, nn.Parameter)
    assert "log_scale" in fixed.state_dict()  # a buffer: saved either way


@pytest.mark.parametrize("kw,field", [
    ({"arch": "resnet"}, "arch"),
    ({"likelihood": "poisson"}, "likelihood"),
    ({"arch": "conv", "input_shape": (1, 10, 10), "conv_channels": (4, 8)}, "H and W"),
    ({"latent_dim": 0}, "latent_dim"),
    ({"hidden": (16, -1)}, "hidden"),
    ({"gaussian_scale": 0.0}, "gaussian_scale"),
])
def test_model_config_errors_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**{"input_shape": SHAPE, **kw})


@pytest.mark.parametrize("kw,field", [({"kl_schedule": "cosine"}, "kl_schedule"), ({"lr": 0}, "lr"),
                                      ({"epochs": 0}, "epochs"), ({"free_bits": -1}, "free_bits")])
def test_train_config_errors_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kw)


# -------------------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def digits64() -> tuple[Dataset, Dataset]:
    from vae_core.data import load_dataset

    d = load_dataset("digits", n=80, seed=0)
    return d.split(0.2, 0)  # 64 train, 16 eval


def _fit(data, epochs=30, seed=0, progress=None, **kw):
    train, ev = data
    model = _tiny_model(seed, hidden=(32,)).train()
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=3e-3, seed=seed, **kw)
    return model, fit(model, train, ev, cfg, progress=progress)


def test_loss_falls_on_tiny_set(digits64):
    _, h = _fit(digits64, epochs=30)
    assert h.completed and h.stopped_reason is None and len(h.rows) == 30
    first, last = h.rows[0], h.rows[-1]
    assert last["loss"] < 0.8 * first["loss"], (first["loss"], last["loss"])
    assert last["eval_elbo"] > first["eval_elbo"]


def test_history_rows_have_design_columns(digits64):
    _, h = _fit(digits64, epochs=2)
    for r in h.rows:
        assert set(CONTRACT_COLUMNS) <= set(r)
        assert all(math.isfinite(r[c]) for c in CONTRACT_COLUMNS)
    assert [r["epoch"] for r in h.rows] == [1, 2]
    assert h.rows[-1]["beta"] == 1.0


def test_training_is_deterministic_given_the_seed(digits64):
    timing = ("seconds", "samples_per_s")
    m1, h1 = _fit(digits64, epochs=3, seed=7)
    m2, h2 = _fit(digits64, epochs=3, seed=7)
    strip = lambda h: [{k: v for k, v in r.items() if k not in timing} for r in h.rows]  # noqa: E731
    assert strip(h1) == strip(h2)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    _, h3 = _fit(digits64, epochs=3, seed=8)
    assert strip(h3) != strip(h1)


def test_bf16_autocast_trains_to_the_same_loss(digits64):
    _, h32 = _fit(digits64, epochs=4)
    _, h16 = _fit(digits64, epochs=4, bf16=True)
    assert h16.completed
    assert h16.rows[-1]["loss"] == pytest.approx(h32.rows[-1]["loss"], rel=0.05)


def _stop_at(step=None, epoch=None):
    """A progress callback that stops training at the given step or after the given epoch."""
    def progress(e):
        if e.what == "step":
            return step is not None and e.info["step"] >= step
        return epoch is not None and e.info["epoch"] >= epoch

    return progress


def test_progress_cancels_during_an_epoch(digits64):
    _, h = _fit(digits64, epochs=5, progress=_stop_at(step=3))  # 2 steps per epoch: stops in epoch 2
    assert h.stopped_reason.startswith("cancelled") and not h.completed
    assert len(h.rows) == 1


def test_progress_cancels_after_an_epoch(digits64):
    _, h = _fit(digits64, epochs=5, progress=_stop_at(epoch=2))
    assert h.stopped_reason.startswith("cancelled") and not h.completed
    assert len(h.rows) == 2


class _PoisonAfter:
    """Saves the weights at every epoch end, then sets one weight to NaN after epoch `at`."""

    def __init__(self, model, at):
        self.model, self.at, self.saved = model, at, None

    def __call__(self, event):
        if event.what != "epoch":
            return
        self.saved = copy.deepcopy(self.model.state_dict())
        if event.info["epoch"] == self.at:
            with torch.no_grad():
                self.model.enc_out.weight[0, 0] = float("nan")


def test_nan_guard_stops_and_keeps_last_good_epoch(digits64):
    train, ev = digits64
    model = _tiny_model(0, hidden=(32,)).train()
    cb = _PoisonAfter(model, at=2)
    h = fit(model, train, ev, TrainConfig(epochs=6, batch_size=16, seed=0), progress=cb)
    assert not h.completed and len(h.rows) == 2
    assert "nan" in h.stopped_reason.lower() and "epoch 2" in h.stopped_reason
    for k, v in model.state_dict().items():
        assert torch.isfinite(v).all(), k
        assert torch.equal(v, cb.saved[k]), k


def test_nan_data_stops_before_any_epoch_and_keeps_init(digits64):
    train, _ = digits64
    x = train.x.clone()
    x[3, 0, 2, 2] = float("nan")
    model = _tiny_model(0, hidden=(32,)).train()
    init = copy.deepcopy(model.state_dict())
    h = fit(model, Dataset(x=x, name="bad"), None, TrainConfig(epochs=2, batch_size=16, seed=0))
    assert h.rows == [] and "no epoch finished" in h.stopped_reason
    for k, v in model.state_dict().items():
        assert torch.equal(v, init[k]), k


# ----------------------------------------------------------------------------------- checkpoints

_HIST = [{"epoch": 1, "loss": 5.0, "recon_nll": 4.0, "kl": 1.0, "beta": 1.0, "eval_elbo": -5.5,
          "seconds": 0.1, "samples_per_s": 640.0, "kl_dim_0": 0.6, "kl_dim_1": 0.4}]


def _save(tmp_path, name="run", model=None, **kw) -> Path:
    model = model or _tiny_model(1)
    return save_run(tmp_path / name, model, TrainConfig(epochs=1, seed=3), _HIST, dataset="digits", **kw)


def test_save_load_round_trip(tmp_path):
    m = _tiny_model(1, likelihood="gaussian", learn_scale=True, gaussian_scale=0.2)
    p = _save(tmp_path, model=m)
    run = load_run(p)
    x, z = _x(1), torch.randn(B, D, generator=_gen(1))
    with torch.no_grad():
        for a, b in zip(m.encode(x), run.model.encode(x)):
            assert torch.equal(a, b)
        assert torch.equal(m.decode(z), run.model.decode(z))
    assert run.model_config == m.cfg and not run.model.training
    assert run.dataset == "digits"
    assert list_runs(tmp_path) == [p]


def test_config_json_and_history_csv_contents(tmp_path):
    p = _save(tmp_path)
    cfg = json.loads((p / "config.json").read_text())
    assert cfg["format_version"] == run_load.FORMAT_VERSION
    assert ModelConfig.from_dict(cfg["model"]) == _tiny_model(1).cfg
    assert TrainConfig.from_dict(cfg["train"]) == TrainConfig(epochs=1, seed=3)
    assert cfg["dataset"] == "digits" and cfg["seed"] == 3
    for key in ("created", "finished"):
        assert "T" in cfg[key]  # ISO timestamps
    with open(p / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    assert float(rows[0]["eval_elbo"]) == -5.5 and float(rows[0]["kl_dim_1"]) == 0.4


def _visible(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


def test_crash_during_save_leaves_nothing(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError, match="simulated"):
        _save(tmp_path)
    assert _visible(tmp_path) == []  # neither the run nor its hidden temp dir
    assert list_runs(tmp_path) == []


@pytest.mark.parametrize("where", ["history", "rename"])
def test_failed_overwrite_keeps_the_existing_run(tmp_path, monkeypatch, where):
    p = _save(tmp_path)
    before = {f.name: f.read_bytes() for f in p.iterdir()}
    if where == "history":
        def boom(*a, **k):
            raise OSError("simulated crash writing history")
        monkeypatch.setattr(ck, "_write_history", boom)
    else:  # the rename that puts the new run in place fails after the old one was moved aside
        monkeypatch.setattr(ck, "_renameat2", lambda *a: False)  # the two-rename path (no RENAME_EXCHANGE)
        real_rename, calls = os.rename, []

        def rename(src, dst):
            calls.append((src, dst))
            if len(calls) == 2:
                raise OSError("simulated crash renaming")
            return real_rename(src, dst)
        monkeypatch.setattr(ck.os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        _save(tmp_path, model=_tiny_model(2), overwrite=True)
    monkeypatch.undo()
    assert {f.name: f.read_bytes() for f in p.iterdir()} == before
    assert _visible(tmp_path) == ["run"]
    assert list_runs(tmp_path) == [p]


def test_save_refuses_existing_without_overwrite(tmp_path):
    _save(tmp_path)
    with pytest.raises(FileExistsError, match="run"):
        _save(tmp_path)


@pytest.mark.parametrize("arch,extra", [("mlp", {}), ("conv", {"conv_channels": (4, 8)})])
def test_export_torchscript_round_trip(tmp_path, arch, extra):
    m = _tiny_model(3, arch=arch, **extra)
    path = export_torchscript(m, tmp_path / "model.ts")
    loaded = load_model(path, input_shape=SHAPE)
    x, z = _x(3), torch.randn(B, D, generator=_gen(3))
    with torch.no_grad():
        for a, b in zip(m.encode(x), loaded.encode(x)):
            assert torch.equal(a, b)
        assert torch.equal(m.decode(z), loaded.decode(z))
        binary = (x > 0.5).float()
        torch.testing.assert_close(loaded.nll(binary, z), m.nll(binary, z), rtol=1e-4, atol=1e-3)
    assert loaded.likelihood == "bernoulli" and loaded.latent_dim == D
    assert not any(n.name.startswith(".") for n in tmp_path.iterdir())


class _HandWritten(nn.Module):
    """A user's own model following the TorchScript contract (docs/contracts.md)."""

    def __init__(self):
        super().__init__()
        self.likelihood = "gaussian"  # attributes TorchScript infers from their values
        self.scale = 0.5
        self.enc = nn.Linear(64, 2 * D)
        self.dec = nn.Linear(D, 64)

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x.flatten(1))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def test_hand_written_torchscript_loads(tmp_path):
    torch.manual_seed(4)
    mod = _HandWritten().eval()
    path = tmp_path / "mine.pt"
    torch.jit.save(torch.jit.script(mod), str(path))
    m = load_model(path)
    assert m.likelihood == "gaussian"
    m.set_input_shape(SHAPE)
    assert m.latent_dim == D
    x, z = _x(4), torch.randn(B, D, generator=_gen(4))
    with torch.no_grad():
        torch.testing.assert_close(m.encode(x)[0], mod.encode(x)[0])
        torch.testing.assert_close(m.decode(z), mod.decode(z))
        ref = -Normal(mod.decode(z), 0.5).log_prob(x).sum((1, 2, 3))
        torch.testing.assert_close(m.nll(x, z), ref, rtol=1e-5, atol=1e-3)


class _Payload:
    """Unpickling this creates a marker file: proof that a pickle ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _assert_pickle_refusal(err: pytest.ExceptionInfo, marker: Path):
    msg = str(err.value)
    assert "pickle" in msg.lower()
    assert "safetensors" in msg and "torch.jit" in msg  # says how to convert
    assert not marker.exists()


def test_payload_would_run_if_unpickled(tmp_path):
    """Control: the payload used below does run code when unpickled (so its absence means something)."""
    marker = tmp_path / "control"
    path = tmp_path / "control.pkl"
    with open(path, "wb") as f:
        pickle.dump({"w": _Payload(marker)}, f)
    with open(path, "rb") as f:
        pickle.load(f)
    assert marker.exists()


def test_torch_save_pickle_file_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": _Payload(marker)}, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    _assert_pickle_refusal(err, marker)


def test_pickle_inside_run_dir_refused(tmp_path):
    marker = tmp_path / "PWNED"
    p = _save(tmp_path)
    torch.save({"evil": _Payload(marker)}, p / "model.safetensors")
    for loader in (load_model, load_run):
        with pytest.raises(CheckpointError) as err:
            loader(p)
        _assert_pickle_refusal(err, marker)


@pytest.mark.parametrize("protocol", [pickle.HIGHEST_PROTOCOL, 2])
def test_raw_pickle_dump_refused(tmp_path, protocol):
    marker = tmp_path / "PWNED"
    path = tmp_path / "model.pkl"
    with open(path, "wb") as f:
        pickle.dump({"evil": _Payload(marker)}, f, protocol=protocol)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    _assert_pickle_refusal(err, marker)


def test_truncated_safetensors_refused(tmp_path):
    p = _save(tmp_path)
    w = p / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="safetensors"):
        load_run(p)


def test_safetensors_file_given_directly_refused(tmp_path):
    p = _save(tmp_path)
    with pytest.raises(CheckpointError, match="run directory"):
        load_model(p / "model.safetensors")


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nope.ts")


def test_fingerprint_changes_with_weights(tmp_path):
    a, b = _save(tmp_path, "a", model=_tiny_model(1)), _save(tmp_path, "b", model=_tiny_model(2))
    assert run_load.fingerprint(a) != run_load.fingerprint(b)
    assert run_load.fingerprint(a) == run_load.fingerprint(a)
