"""Faults of the model worker (vae_core.sandbox) met by a hostile corpus: scratch left in RAM after a
killed parent, NaN scored as if fine, endless models making a person wait the batch limit.

Models are scripted into tmp_path here (no committed blobs); limits are set through the environment.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

from vae_core.errors import CheckpointError
from vae_core.runs.model_files import load_torchscript
from vae_core.sandbox import RemoteModel
from vae_core.sandbox.proxy import sweep_stale_scratch

from paths import ROOT  # the repository root (tests/paths.py)
from ts_models import D, SHAPE, TS_WARNINGS, Good, pid_gone, save_ts, set_worker_limits, wait_for

pytestmark = TS_WARNINGS
_Good, _save = Good, save_ts


@pytest.fixture(autouse=True)
def low_limits(monkeypatch):
    set_worker_limits(monkeypatch, timeout_s=30)


def _page_with(model: Path, page: str):
    """An AppTest of `page` (repository-relative) with `model` and the digits picked, run once."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / page), default_timeout=300)
    at.session_state["model_src"] = str(model)
    at.session_state["data_src"] = "digits"
    return at.run()


def _start_time(pid: int | str) -> int:
    """Field 22 of /proc/PID/stat (proc(5)), read here independently of the code under test."""
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])


def _pid_ns() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


# --- issue 19 item 3: scratch in /dev/shm outliving a killed parent -------------------------------

def test_scratch_is_removed_when_the_parent_is_killed(tmp_path):
    """A real parent (a script that loads a TorchScript model through the proxy) killed by SIGKILL:
    no finalizer runs, yet its worker exits and the worker's scratch directory disappears."""
    path = _save(_Good(), tmp_path / "good.ts")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from vae_core.sandbox import RemoteModel
        m = RemoteModel({str(path)!r}, {SHAPE!r})
        print(m._worker.scratch, m._worker.proc.pid, flush=True)
        sys.stdin.read()  # wait to be killed
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        assert line, parent.stderr.read()
        scratch, worker = line.split()[0], int(line.split()[1])
        assert os.path.isdir(scratch) and os.path.exists(os.path.join(scratch, "io"))
        parent.kill()
        parent.wait(30)
        assert wait_for(lambda: pid_gone(worker)), "the worker outlived its parent"
        assert wait_for(lambda: not os.path.exists(scratch)), f"{scratch} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _dead_pid_and_start() -> tuple[int, int]:
    p = subprocess.Popen(["sleep", "60"])
    start = _start_time(p.pid)
    p.kill()
    p.wait()
    return p.pid, start


def test_sweep_removes_scratch_of_dead_owners_only(tmp_path):
    dead, dead_start = _dead_pid_and_start()
    me, my_start, ns = os.getpid(), _start_time("self"), _pid_ns()
    dirs = {
        "dead": tmp_path / f"vae-worker-{dead}-{dead_start}-{ns}-a1b2",  # its owner exited
        "reused": tmp_path / f"vae-worker-{me}-{my_start + 1}-{ns}-c3d4",  # its owner's pid now runs another process
        "live": tmp_path / f"vae-worker-{me}-{my_start}-{ns}-e5f6",  # this process's own
        "other_ns": tmp_path / f"vae-worker-{dead}-{dead_start}-{ns + 1}-g7h8",  # another pid namespace's
        "legacy": tmp_path / "vae-worker-h10ob4sv",  # no owner recorded: may be live
    }
    for d in dirs.values():
        d.mkdir()
        (d / "io").write_bytes(b"\0" * 64)
    (tmp_path / f"vae-worker-{dead}-{dead_start}-{ns}-file").write_text("not a directory")
    removed = sweep_stale_scratch(str(tmp_path))
    assert sorted(removed) == sorted(str(dirs[k]) for k in ("dead", "reused"))
    assert not dirs["dead"].exists() and not dirs["reused"].exists()
    assert all(dirs[k].is_dir() for k in ("live", "other_ns", "legacy"))
    assert (tmp_path / f"vae-worker-{dead}-{dead_start}-{ns}-file").is_file()


def test_a_new_worker_sweeps_stale_scratch(tmp_path):
    """Starting a worker removes the scratch of an owner that was killed earlier, in the real scratch folder."""
    dead, dead_start = _dead_pid_and_start()
    folder = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    m = None
    stale = Path(folder or tempfile.gettempdir()) / f"vae-worker-{dead}-{dead_start}-{_pid_ns()}-stale{os.getpid()}"
    stale.mkdir()
    try:
        (stale / "io").write_bytes(b"\0" * 4096)
        m = load_torchscript(_save(_Good(), tmp_path / "good.ts"))
        assert not stale.exists()
        assert os.path.basename(m._worker.scratch).startswith(f"vae-worker-{os.getpid()}-{_start_time('self')}-")
    finally:
        if m is not None:
            m.close()
        if stale.exists():
            shutil.rmtree(stale)


# --- issue 19 item 4: NaN from a model that passed the probe is refused, not scored -------------

class _NaNDecode(_Good):
    """Passes the probe (batches of 2); past it, decode gives NaN on every odd row."""

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)
        if z.shape[0] > 2:
            odd = (torch.arange(z.shape[0]) % 2 == 1).view(-1, 1, 1, 1)
            out = torch.where(odd, out * float("nan"), out)
        return out


class _InfEncode(_Good):
    """Passes the probe; past it, encode gives +Inf in logvar on row 2 of a batch."""

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        if x.shape[0] > 2:
            logvar = torch.where((torch.arange(x.shape[0]) == 2).view(-1, 1), logvar + float("inf"), logvar)
        return mu, logvar


def test_nan_after_the_probe_is_one_sentence_naming_the_call(tmp_path):
    m = load_torchscript(_save(_NaNDecode(), tmp_path / "nan.ts"), SHAPE)  # the probe passes
    try:
        with torch.inference_mode():
            assert m.decode(torch.zeros(2, D)).shape == (2, *SHAPE)
            z = torch.tensor([[0.0, 0, 0], [1.0, -7.5, 0], [0, 0, 0], [2.0, 0, 0]])
            with pytest.raises(CheckpointError) as e:
                m.decode(z)
        msg = str(e.value)
        assert msg.startswith("nan.ts: the model's decode returned NaN/Inf") and "\n" not in msg
        assert "2 of 4 inputs" in msg and "|z_j| = 7.5" in msg  # rows 1 and 3; row 1's largest |z_j|
        with torch.inference_mode():  # the worker lives on: a finite call still answers
            assert torch.isfinite(m.decode(torch.zeros(1, D))).all()
    finally:
        m.close()
    m = load_torchscript(_save(_InfEncode(), tmp_path / "inf.ts"), SHAPE)
    try:
        with pytest.raises(CheckpointError, match=r"encode returned NaN/Inf in logvar for 1 of 4 inputs "
                                                  r"\(the first: image 2 of the batch\)"):
            m.encode(torch.rand(4, *SHAPE))
    finally:
        m.close()


def test_diagnose_stops_on_nan_with_one_sentence(tmp_path):
    """The CLI's diagnose of such a model exits non-zero with one sentence on stderr, no report."""
    path = _save(_NaNDecode(), tmp_path / "nan.ts")
    r = subprocess.run([sys.executable, "-m", "vae_core", "diagnose", str(path), "--data", "digits", "--json",
                        "--n-points", "40", "--iwae-k", "5", "--quiet"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode != 0 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "the model's decode returned NaN/Inf in the image" in lines[0], r.stderr


def test_diagnose_page_shows_the_sentence(tmp_path):
    """The Diagnose page of such a model shows the sentence instead of a report."""
    at = _page_with(_save(_NaNDecode(), tmp_path / "nan.ts"), "app_pages/3_Diagnose.py")
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "the model's decode returned NaN/Inf in the image" in errors, errors
    assert not any(m.label.startswith("ELBO") for m in at.metric)


# --- issue 19 item 10: a person waits the short limit, a batch job the long one -----------------

class _Hang(_Good):
    """encode never returns (the load-time probe included); decode is fine."""

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        while True:
            x = x + 0
        return x, x


class _HangOnLarge(_Good):
    """decode never returns when the codes sum to over 100; other calls answer."""

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        while bool(z.sum() > 100.0):
            z = z + 1.0  # not + 0, which TorchScript's peephole pass removes (and then the empty loop)
        return torch.sigmoid(self.dec(z)).view(-1, 1, 8, 8)


def test_endless_probe_is_refused_within_the_interactive_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_WORKER_TIMEOUT_S", "60")
    monkeypatch.setenv("VAE_EXPLORER_WORKER_INTERACTIVE_S", "3")
    m = RemoteModel(_save(_Hang(), tmp_path / "hang.ts"))  # loads: no code of the model runs yet
    t0 = time.monotonic()
    with pytest.raises(CheckpointError) as e:
        m.set_input_shape(SHAPE)  # the probe a person waits for on upload
    took = time.monotonic() - t0
    assert "did not answer within 3 s (encode)" in str(e.value)
    assert "VAE_EXPLORER_WORKER_INTERACTIVE_S" in str(e.value)
    assert took < 60  # under the batch limit (the sentence says which limit stopped it)
    m.close()


def test_batches_keep_the_long_limit(tmp_path, monkeypatch):
    """A call of up to 64 inputs gets the interactive limit; a larger batch the long one."""
    monkeypatch.setenv("VAE_EXPLORER_WORKER_TIMEOUT_S", "5")
    monkeypatch.setenv("VAE_EXPLORER_WORKER_INTERACTIVE_S", "2")
    m = load_torchscript(_save(_HangOnLarge(), tmp_path / "slow.ts"), SHAPE)
    try:
        with torch.inference_mode():
            with pytest.raises(CheckpointError) as small:
                m.decode(torch.full((64, D), 10.0))
            with pytest.raises(CheckpointError) as batch:
                m.decode(torch.full((65, D), 10.0))
            assert m.decode(torch.zeros(65, D)).shape == (65, *SHAPE)  # a fresh worker answers
        assert "did not answer within 2 s (decode)" in str(small.value)
        assert "VAE_EXPLORER_WORKER_INTERACTIVE_S" in str(small.value)
        assert "did not answer within 5 s (decode)" in str(batch.value)
        assert "VAE_EXPLORER_WORKER_TIMEOUT_S" in str(batch.value)
    finally:
        m.close()


def test_cli_diagnose_probe_is_interactive(tmp_path):
    """diagnose of an endless model from the CLI is refused at the short limit, with one sentence."""
    path = _save(_Hang(), tmp_path / "hang.ts")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "vae_core", "diagnose", str(path), "--data", "digits", "--quiet"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT,
                       env=dict(os.environ, VAE_EXPLORER_WORKER_TIMEOUT_S="600",
                                VAE_EXPLORER_WORKER_INTERACTIVE_S="3"))
    assert r.returncode != 0 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not answer within 3 s (encode)" in lines[0], r.stderr
    assert "VAE_EXPLORER_WORKER_INTERACTIVE_S" in lines[0]
    assert time.monotonic() - t0 < 600


def test_interactive_limit_is_a_validated_setting(monkeypatch):
    from vae_core.limits import LimitError, limits

    assert limits().worker_interactive_s == 15.0
    monkeypatch.setenv("VAE_EXPLORER_WORKER_INTERACTIVE_S", "-1")
    with pytest.raises(LimitError, match="VAE_EXPLORER_WORKER_INTERACTIVE_S"):
        limits()
    monkeypatch.setenv("VAE_EXPLORER_WORKER_INTERACTIVE_S", "soon")
    with pytest.raises(LimitError, match="VAE_EXPLORER_WORKER_INTERACTIVE_S"):
        limits()


@pytest.mark.parametrize("page", ["app_pages/1_Explore.py", "streamlit_app.py"])
def test_explore_and_home_show_the_sentence(tmp_path, page):
    """Encoding the data set with a model that gives Inf past the probe: the page says why, no traceback."""
    at = _page_with(_save(_InfEncode(), tmp_path / "inf.ts"), page)
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "inf.ts on digits cannot be shown" in errors and "encode returned NaN/Inf in logvar" in errors, errors
