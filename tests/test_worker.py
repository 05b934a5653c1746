"""Users' TorchScript models run in a child worker (vae_core.sandbox; docs/architecture.md, "Trust boundary").

Every hostile model is written here with torch.jit.script + torch.jit.save into tmp_path (no
committed blobs). The limits are set low through the environment: 3 s per call, 1024 MB.
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from vae_core import VAE, ModelConfig
from vae_core.errors import CheckpointError
from vae_core.runs.model_files import export_torchscript, load_torchscript
from vae_core.runs.run_load import load_model
from vae_core.sandbox import RemoteModel, allowlist, fs_protection, landlock
from vae_core.sandbox.child import inner_message
from paths import ROOT  # the repository root (tests/paths.py)
from ts_models import D, SHAPE, TS_WARNINGS, Good, pid_gone, save_ts, set_worker_limits, wait_for

pytestmark = TS_WARNINGS
_Good, _save = Good, save_ts


@pytest.fixture(autouse=True)
def low_limits(monkeypatch):
    set_worker_limits(monkeypatch, timeout_s=3)


def _good(tmp_path: Path, name: str = "good.ts") -> Path:
    torch.manual_seed(0)
    return _save(_Good(), tmp_path / name)


def _pid_gone(pid: int, within: float = 10.0) -> bool:
    return wait_for(lambda: pid_gone(pid), within)


# --- a good model: same numbers as in-process, the VAE interface ----------------------------------

def test_good_model_matches_in_process(tmp_path):
    path = _good(tmp_path)
    local = torch.jit.load(str(path))
    m = load_model(path, SHAPE)
    assert isinstance(m, RemoteModel) and not isinstance(m, VAE)
    assert m.latent_dim == D and m.input_shape == SHAPE and m.likelihood == "bernoulli"
    assert list(m.parameters()) == [] and m.eval() is m
    assert m.protection == fs_protection()
    g = torch.Generator().manual_seed(1)
    x, z = torch.rand(5, *SHAPE, generator=g), torch.randn(5, D, generator=g)
    with torch.inference_mode():
        for a, b in zip(m.encode(x), local.encode(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        torch.testing.assert_close(m.decode(z), local.decode(z), rtol=0, atol=1e-6)
        xb = (x > 0.5).float()
        ref = -torch.distributions.Bernoulli(probs=local.decode(z)).log_prob(xb).sum((1, 2, 3))
        torch.testing.assert_close(m.nll(xb, z), ref, rtol=1e-5, atol=1e-4)
        out, mu, logvar = m(x)
        assert out.shape == x.shape and mu.shape == (5, D)
        big = torch.randn(3000, D, generator=g)  # 750 KB each way through shared memory
        torch.testing.assert_close(m.decode(big), local.decode(big), rtol=0, atol=1e-6)
    m.close()


def test_exported_vae_and_metrics_through_the_worker(tmp_path):
    """export_torchscript -> load_model gives the VAE's numbers; the IWAE bound runs on the proxy."""
    from vae_core.metrics.iwae import _log_weights

    torch.manual_seed(2)
    vae = VAE(ModelConfig(input_shape=SHAPE, latent_dim=D, hidden=(16,))).eval()
    m = load_model(export_torchscript(vae, tmp_path / "vae.ts"), SHAPE)
    x = (torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(3)) > 0.5).float()
    with torch.inference_mode():
        mu, logvar = vae.encode(x)
        assert torch.equal(m.encode(x)[0], mu)
        lw_remote = _log_weights(m, x, mu, logvar, 8, generator=torch.Generator().manual_seed(4))
        lw_local = _log_weights(vae, x, mu, logvar, 8, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(lw_remote, lw_local, rtol=1e-4, atol=1e-2)


def test_worker_stops_when_proxy_is_collected(tmp_path):
    m = load_torchscript(_good(tmp_path))
    pid = m._worker.proc.pid
    del m
    gc.collect()
    assert _pid_gone(pid)


def test_worker_exits_when_the_server_dies(tmp_path):
    """A worker mid-call (a model in an endless loop) exits by itself when its parent process dies."""
    path = _save(_Hang(), tmp_path / "hang.ts")
    script = textwrap.dedent(f"""
        import os, sys, threading, time
        sys.path.insert(0, {str(ROOT)!r})
        import torch
        from vae_core.sandbox import RemoteModel
        m = RemoteModel({str(path)!r})
        threading.Thread(target=m.encode, args=(torch.zeros(1, 1, 8, 8),), daemon=True).start()
        while not (m._lock.locked() and m._worker is not None):  # the call holds the model, its worker is up
            time.sleep(0.01)
        print(m._worker.proc.pid, flush=True)
        os._exit(0)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, VAE_EXPLORER_WORKER_TIMEOUT_S="100"))
    assert r.returncode == 0, r.stderr
    assert _pid_gone(int(r.stdout.split()[-1]))


# --- time and memory limits ----------------------------------------------------------------------

class _Hang(_Good):
    """encode never returns; decode is fine."""

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        while bool(x.sum() > -1):
            x = x + 0
        return x, x


def test_endless_model_is_stopped_and_others_go_on(tmp_path):
    hang = load_torchscript(_save(_Hang(), tmp_path / "hang.ts"))
    good = load_torchscript(_good(tmp_path), SHAPE)
    result: dict = {}

    def call():
        t0 = time.monotonic()
        try:
            hang.encode(torch.zeros(1, *SHAPE))
        except CheckpointError as e:
            result["err"] = str(e)
        result["s"] = time.monotonic() - t0

    th = threading.Thread(target=call)
    th.start()
    deadline = time.monotonic() + 60
    while not (hang._lock.locked() and hang._worker is not None):  # the endless call holds its worker
        assert th.is_alive() and time.monotonic() < deadline, result
        time.sleep(0.01)
    t0 = time.monotonic()
    with torch.inference_mode():
        assert good.decode(torch.zeros(2, D)).shape == (2, *SHAPE)  # answers while the other hangs
    assert time.monotonic() - t0 < 3
    th.join(60)
    assert "did not answer within 3 s" in result["err"] and "VAE_EXPLORER_WORKER_TIMEOUT_S" in result["err"]
    assert 2.5 <= result["s"] < 30
    # the next call starts a fresh worker: decode works on the same proxy
    assert hang.decode(torch.zeros(1, D)).shape == (1, *SHAPE)


class _Huge(_Good):
    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        big = torch.zeros(100_000_000_000)  # 400 GB
        return big[:3].expand(x.shape[0], 3), big[:3].expand(x.shape[0], 3)


def test_huge_allocation_is_refused(tmp_path):
    m = load_torchscript(_save(_Huge(), tmp_path / "huge.ts"))
    t0 = time.monotonic()
    with pytest.raises(CheckpointError, match="more than 1024 MB") as e:
        m.encode(torch.zeros(1, *SHAPE))
    assert "VAE_EXPLORER_WORKER_MEMORY_MB" in str(e.value) and time.monotonic() - t0 < 30
    assert m.decode(torch.zeros(1, D)).shape == (1, *SHAPE)  # fresh worker


# --- refused at load ------------------------------------------------------------------------------

def test_nan_weights_refused(tmp_path):
    mod = _Good()
    with torch.no_grad():
        mod.dec.weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="weights contain NaN or Inf"):
        load_torchscript(_save(mod, tmp_path / "nan.ts"))


class _Latent0(_Good):
    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = x.flatten(1)[:, :0]
        return z, z


def test_latent_zero_refused(tmp_path):
    with pytest.raises(CheckpointError, match="latent size of 0"):
        load_torchscript(_save(_Latent0(), tmp_path / "d0.ts"), SHAPE)
    mod = _Good()
    mod.latent_dim = 0  # an attribute saying so is refused too
    with pytest.raises(CheckpointError, match="latent_dim"):
        load_torchscript(_save(mod, tmp_path / "attr0.ts"))


class _Logits(_Good):
    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (self.dec(z) * 10).view(-1, 1, 8, 8)  # logits, not probabilities


def test_bernoulli_decoder_outside_unit_interval_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"must give values in \[0, 1\] for a Bernoulli decoder; got \["):
        load_torchscript(_save(_Logits(), tmp_path / "logits.ts"), SHAPE)


def test_bad_attributes_refused(tmp_path):
    mod = _Good()
    mod.likelihood = "poisson"
    with pytest.raises(CheckpointError, match="likelihood must be 'bernoulli' or 'gaussian'"):
        load_torchscript(_save(mod, tmp_path / "lik.ts"))
    mod = _Good()
    mod.likelihood, mod.scale = "gaussian", -1.0
    with pytest.raises(CheckpointError, match="scale must be a finite number > 0"):
        load_torchscript(_save(mod, tmp_path / "scale.ts"))


def test_declared_scale_is_reported_or_none(tmp_path):
    """A Gaussian file without `scale` reports none (diagnose calibrates it); a declared one is kept."""
    mod = _Good()
    mod.likelihood = "gaussian"
    undeclared = load_torchscript(_save(mod, tmp_path / "mse.ts"), SHAPE)
    assert undeclared.declared_scale is None and undeclared.likelihood == "gaussian"
    mod.scale = 0.25
    declared = load_torchscript(_save(mod, tmp_path / "s.ts"), SHAPE)
    assert declared.declared_scale == 0.25
    assert float(declared.log_scale.exp()) == pytest.approx(0.25)


# --- errors and bad outputs at call time ----------------------------------------------------------

class _Mismatch(_Good):
    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.flatten(1) + torch.ones(3)  # (B, 64) + (3,): a shape error inside the model
        return h, h


def test_runtime_error_shows_the_inner_message(tmp_path):
    m = load_torchscript(_save(_Mismatch(), tmp_path / "mismatch.ts"))
    with pytest.raises(CheckpointError) as e:
        m.encode(torch.zeros(2, *SHAPE))
    msg = str(e.value)
    assert "must match the size of tensor b (3)" in msg and "encode failed inside the model" in msg
    assert "The following operation failed" not in msg and "\n" not in msg


def test_inner_message_of_a_torchscript_error():
    text = ("The following operation failed in the TorchScript interpreter.\nTraceback of TorchScript "
            "(most recent call last):\n  File \"code/__torch__.py\", line 9, in encode\n    h = x + y\n"
            "        ~~~~~ <--- HERE\nRuntimeError: The size of tensor a (64) must match the size of tensor b (3)")
    assert inner_message(RuntimeError(text)) == "The size of tensor a (64) must match the size of tensor b (3)"
    assert inner_message(RuntimeError("x\nbuiltins.ValueError: bad input")) == "ValueError: bad input"


class _BadShapes(_Good):
    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.flatten(1), x.flatten(1)[:, :2]

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z.repeat(1, 5)


def test_bad_output_shapes_are_sentences(tmp_path):
    m = load_torchscript(_save(_BadShapes(), tmp_path / "shapes.ts"))
    with pytest.raises(CheckpointError, match=r"encode\(x\) must give mu, logvar of shape \(B, D\)"):
        m.encode(torch.zeros(2, *SHAPE))
    with pytest.raises(CheckpointError, match=r"decode\(z\) must give images of shape \(B, C, H, W\)"):
        m.decode(torch.zeros(2, D))


def test_truncated_shared_memory_is_an_error_not_a_crash(tmp_path):
    """A worker that reports more output than it wrote (or truncates the file) gets a sentence."""
    from vae_core.sandbox.proxy import _Stopped

    m = load_torchscript(_good(tmp_path))
    w = m._worker
    shapes = w.call("decode", torch.zeros(4, D))
    os.ftruncate(w.io_fd, 0)
    with pytest.raises(_Stopped, match="shorter than the shape it reported"):
        w.read(shapes)


# --- the operation allow-list ---------------------------------------------------------------------

class _FromFile(_Good):
    """encode maps a file of the server shared and writes into it."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.from_file(self.target, True, 16, dtype=torch.uint8)
        t.fill_(88)
        mu, logvar = self.enc(x.flatten(1) + t.float().sum()).chunk(2, dim=1)
        return mu, logvar


def test_from_file_model_refused_and_file_untouched(tmp_path):
    target = tmp_path / "precious.bin"
    target.write_bytes(b"0123456789abcdef")
    mod = torch.jit.script(_FromFile(str(target)))
    mod.encode(torch.zeros(1, *SHAPE))  # control: run in-process, it does overwrite the file
    assert target.read_bytes() == b"X" * 16
    target.write_bytes(b"0123456789abcdef")
    torch.jit.save(mod, str(tmp_path / "from_file.ts"))
    with pytest.raises(CheckpointError, match="encode uses aten::from_file, which reads or writes files") as e:
        load_torchscript(tmp_path / "from_file.ts", SHAPE)
    assert str(e.value).startswith("from_file.ts: ")
    assert target.read_bytes() == b"0123456789abcdef"


class _SetState(_Good):
    """__setstate__ runs inside torch.jit.load: it would write a file before any check."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    @torch.jit.export
    def __getstate__(self) -> tuple[str, bool]:
        return (self.target, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.target = state[0]
        self.training = state[1]
        t = torch.from_file(self.target, True, 4, dtype=torch.uint8)
        t.fill_(88)
        self.target = str(t.sum().item())


def test_setstate_model_refused_before_loading(tmp_path):
    target = tmp_path / "precious.bin"
    target.write_bytes(b"keep")
    torch.jit.save(torch.jit.script(_SetState(str(target))), str(tmp_path / "setstate.ts"))
    assert target.read_bytes() == b"keep"
    with pytest.raises(CheckpointError, match="__setstate__"):
        load_torchscript(tmp_path / "setstate.ts")
    assert target.read_bytes() == b"keep"


class _Opener:
    """A TorchScript class whose __enter__ (run by `with`, not inlined into the caller) maps a file."""

    def __init__(self, path: str):
        self.path = path
        self.n = 0

    def __enter__(self):
        t = torch.from_file(self.path, True, 4, dtype=torch.uint8)
        t.fill_(88)
        self.n = int(t.sum())

    def __exit__(self, kind: Any, value: Any, tb: Any):
        pass


with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _Opener = torch.jit.script(_Opener)


class _With(_FromFile):
    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with _Opener(self.target):
            mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar


def test_code_behind_a_with_statement_is_checked(tmp_path):
    target = tmp_path / "precious.bin"
    target.write_bytes(b"keep")
    mod = torch.jit.script(_With(str(target)))
    mod.encode(torch.zeros(1, *SHAPE))  # control: in-process it writes the file
    assert target.read_bytes() == b"XXXX"
    target.write_bytes(b"keep")
    torch.jit.save(mod, str(tmp_path / "with.ts"))
    with pytest.raises(CheckpointError, match=r"_Opener.__enter__ uses aten::from_file"):
        load_torchscript(tmp_path / "with.ts", SHAPE)
    assert target.read_bytes() == b"keep"
    with pytest.raises(ValueError, match="_Opener.__enter__, code that cannot be checked"):
        allowlist.check_module(mod, "with.ts")  # from the module alone: the call is refused


class _Profiled(_Good):
    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autograd.profiler.record_function("mine"):
            mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar


def test_other_namespaces_refused(tmp_path):
    """profiler:: ops exist in every torch; a custom torch.library op is refused the same way."""
    with pytest.raises(CheckpointError, match=r"uses profiler::\w+, which is outside the aten and prim"):
        load_torchscript(_save(_Profiled(), tmp_path / "profiled.ts"))

    lib = torch.library.Library("vaetestns", "DEF")
    lib.define("twice(Tensor x) -> Tensor")
    lib.impl("twice", lambda x: 2 * x, "CPU")

    class Custom(_Good):
        @torch.jit.export
        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mu, logvar = self.enc(torch.ops.vaetestns.twice(x).flatten(1)).chunk(2, dim=1)
            return mu, logvar

    with pytest.raises(ValueError, match="encode uses vaetestns::twice, which is outside the aten and prim"):
        allowlist.check_module(torch.jit.script(Custom()), "custom.ts")
    allowlist.check_module(torch.jit.script(_Good()), "good.ts")  # the good model passes


def test_denied_names_exist_in_torch():
    """The deny list names real operations (a rename in torch would silently drop one)."""
    names = {s.name for s in torch._C._jit_get_all_schemas()}
    assert {k for k in allowlist.DENIED if k.startswith("aten::")} <= names


# --- the filesystem ----------------------------------------------------------------------------------

def test_landlock_closes_the_filesystem(tmp_path):
    if landlock.abi() == 0:
        assert fs_protection().startswith("none")
        pytest.skip("the kernel lacks Landlock")
    assert fs_protection().startswith(f"landlock ABI {landlock.abi()}")
    scratch, outside = tmp_path / "scratch", tmp_path / "outside.txt"
    scratch.mkdir()
    (scratch / "in.txt").write_text("inside")
    outside.write_text("secret")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from vae_core.sandbox import landlock
        print(landlock.restrict([{str(scratch)!r}]))
        print(open({str(scratch / 'in.txt')!r}).read())
        open({str(scratch / 'new.txt')!r}, 'w').write('ok')
        for path, mode in (({str(outside)!r}, 'r'), ({str(tmp_path / 'new.txt')!r}, 'w'), ('/etc/hostname', 'r')):
            try:
                open(path, mode)
                print('OPENED', path)
            except PermissionError:
                print('denied')
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].startswith("landlock ABI") and lines[1] == "inside" and lines[2:5] == ["denied"] * 3, r.stdout
    assert (scratch / "new.txt").read_text() == "ok" and not (tmp_path / "new.txt").exists()
