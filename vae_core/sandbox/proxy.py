"""`RemoteModel`: a user's model (TorchScript, or a zip of torch.export / ONNX programs) run in a child
worker process, behind the VAE interface.

The parent side of the protocol described in `child.py`. The parent never unpickles anything
from the worker: control messages are JSON lines of bounded length, tensors are float32 and
cross through a file in the worker's scratch directory on /dev/shm, read and written here with
pread/pwrite into buffers the parent allocated after checking every shape the worker reports
(no mmap: a worker truncating the file would otherwise crash the server with SIGBUS).
A call past its time limit (short for the few inputs a person waits for, long for batches), an
allocation past the memory limit or a crash kills the worker and raises one `CheckpointError`
sentence; the next call starts a fresh worker. An output holding NaN/Inf is refused the same way
(the worker lives on). The scratch directory is removed by a small keeper process when the
owner goes, however it goes; a new worker first sweeps scratch whose owner is gone.
"""
from __future__ import annotations

import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..limits import ENV, limits
from ..models import TorchScriptInterface

STARTUP_S = 120.0  # a fresh worker imports torch (trusted code) before its first answer; slow on a loaded machine
LOAD_S = 30.0  # at least this long for torch.jit.load and the checks (no code of the model runs then)
MAX_LINE = 1 << 16  # bytes of one JSON line from the worker
EXPORT_S = 300.0  # at least this long for the decoder's ONNX export and its check (dynamo: ~26 s for a 64x64 conv)
MAX_ONNX_MB = 100  # a decoder graph larger than this is too big to send to a browser
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding vae_core/
# vae-worker-<owner pid>-<owner start time in clock ticks>-<pid namespace inode>-<random>: the owner
# is the process that started the worker; pid, start time and namespace name it even after pid reuse
_SCRATCH_NAME = re.compile(r"vae-worker-(\d+)-(\d+)-(\d+)-")
# The scratch keeper: a small process beside each worker (the worker itself cannot remove its scratch
# once Landlock closes /dev/shm to it). It waits for the hang-up of the command pipe (the owner closed
# it or died, even by SIGKILL), removes the scratch and exits; it reads nothing from the pipe.
_KEEPER = ("import os,select,shutil,sys\n"
           "p=select.poll()\np.register(int(sys.argv[1]),0)\n"
           "while not p.poll():pass\n"
           "shutil.rmtree(sys.argv[2],ignore_errors=True)\n")


class _Stopped(Exception):
    """The worker was stopped (timeout, memory, crash, protocol); the message is for the user."""


def _shm_dir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK) else None


def _stat(pid: int | str) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of a process, from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            rest = f.read().rsplit(b")", 1)[1].split()  # after "pid (comm)": the name may hold spaces
        return rest[0].decode(), int(rest[19])  # fields 3 and 22 of proc(5)
    except (OSError, IndexError, ValueError):
        return None


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _scratch_prefix() -> str:
    own = _stat("self")
    return f"vae-worker-{os.getpid()}-{own[1] if own else 0}-{_pid_namespace()}-"


def _owner_alive(pid: int, start: int, namespace: int) -> bool:
    """Whether the process that made a scratch directory may still be running (True when unsure)."""
    if namespace != _pid_namespace():  # another pid namespace's (a container sharing /dev/shm): unknowable
        return True
    st = _stat(pid)
    if st is None:
        if os.path.isdir("/proc/self"):
            return False  # /proc works and has no such process
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass
        return True
    state, started = st
    return state not in ("Z", "X") and (start == 0 or started == start)  # another start time: the pid was reused


def sweep_stale_scratch(folder: str | None = None) -> list[str]:
    """Remove this user's worker scratch directories in folder whose owner process is gone; the removed paths.

    A directory whose name records no owner (an older version's) or whose owner may still run is kept.
    """
    folder = folder or _shm_dir() or tempfile.gettempdir()
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _SCRATCH_NAME.match(e.name)
        try:
            if not (m and e.is_dir(follow_symlinks=False) and e.stat(follow_symlinks=False).st_uid == os.getuid()):
                continue
        except OSError:
            continue
        if not _owner_alive(*(int(g) for g in m.groups())):
            shutil.rmtree(e.path, ignore_errors=True)
            removed.append(e.path)
    return removed


def _cleanup(proc: subprocess.Popen, fds: list[int], scratch: str, keeper: subprocess.Popen | None = None) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    for fd in fds:  # closing the command pipe also ends the scratch keeper
        try:
            os.close(fd)
        except OSError:
            pass
    shutil.rmtree(scratch, ignore_errors=True)
    if keeper is not None:
        try:
            keeper.wait(5)
        except subprocess.TimeoutExpired:
            keeper.kill()
            keeper.wait()


def _shape(v, max_dims: int = 8) -> tuple[int, ...]:
    if not (isinstance(v, list) and len(v) <= max_dims
            and all(type(s) is int and 0 <= s < 2**40 for s in v)):
        raise _Stopped("its worker answered with a malformed shape")
    return tuple(v)


class _Worker:
    """One child process with its pipes and scratch directory (parent side); not thread-safe."""

    def __init__(self, path: Path, name: str):
        lim = limits()
        self.memory_mb, self.timeout_s = lim.worker_memory_mb, float(lim.worker_timeout_s)
        self.interactive_s = float(lim.worker_interactive_s)
        self.max_latent = lim.max_latent
        sweep_stale_scratch()  # scratch left by owners killed before they could clean up (SIGKILL, OOM)
        self.scratch = tempfile.mkdtemp(prefix=_scratch_prefix(), dir=_shm_dir())
        self.proc = self.keeper = None
        fds: list[int] = []  # the parent's ends, closed when the worker is stopped
        child_fds: list[int] = []  # the child's ends, closed here once it has them
        try:
            self.io_fd = os.open(os.path.join(self.scratch, "io"),
                                 os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            fds.append(self.io_fd)
            cmd_r, self.cmd_w = os.pipe()
            child_fds.append(cmd_r)
            fds.append(self.cmd_w)
            self.rep_r, rep_w = os.pipe()
            child_fds.append(rep_w)
            fds.append(self.rep_r)
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS=str(torch.get_num_threads()),
                       PYTHONPATH=os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p))
            # stdout/stderr to /dev/null: a model's prim::Print cannot reach the protocol (its own pipes)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "vae_core.sandbox.child", str(cmd_r), str(rep_w), str(self.io_fd), self.scratch],
                pass_fds=(cmd_r, rep_w, self.io_fd), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd=self.scratch, env=env, start_new_session=True)
            self.keeper = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _KEEPER, str(cmd_r), self.scratch], pass_fds=(cmd_r,),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                start_new_session=True)
        except BaseException:
            if self.proc is not None:
                self.proc.kill()
                self.proc.wait()
            for fd in fds:
                os.close(fd)
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        self._finalizer = weakref.finalize(self, _cleanup, self.proc, fds, self.scratch, self.keeper)
        self._buf = b""
        self._poll = select.poll()
        self._poll.register(self.rep_r, select.POLLIN)
        self._io_size = 0
        self.load_request = {"op": "load", "path": str(Path(path).resolve()), "name": name,
                             "memory_mb": self.memory_mb, "max_file_mb": lim.max_file_mb,
                             "threads": torch.get_num_threads()}

    def start(self, what: str) -> dict:
        """Send the load request; the worker's answer (likelihood, scale, protection) or _Stopped."""
        self._send(self.load_request)
        self._recv(STARTUP_S, what)  # {"hello": pid} once torch is imported
        return self._recv(max(self.timeout_s, LOAD_S), what)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self._finalizer()

    def _send(self, obj: dict) -> None:
        self._send_line((json.dumps(obj, separators=(",", ":")) + "\n").encode())

    def _send_line(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self.cmd_w, data):]
        except BrokenPipeError:
            raise _Stopped(self._death_sentence("")) from None

    def _death_sentence(self, what: str) -> str:
        try:
            rc = self.proc.wait(2)
        except subprocess.TimeoutExpired:
            rc = None
        during = f" during {what}" if what else ""
        if rc is None or rc >= 0:
            return f"the model's worker process exited (code {rc}){during}"
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        return (f"the model's worker process was killed by {sig}{during}; if the model needs more memory than "
                f"{self.memory_mb} MB, set {ENV['worker_memory_mb']} to raise the limit")

    def limit(self, interactive: bool) -> tuple[float, str]:
        """(seconds, the setting that raises it) for one call; a person's calls get the shorter limit."""
        if interactive and self.interactive_s < self.timeout_s:
            return self.interactive_s, "worker_interactive_s"
        return self.timeout_s, "worker_timeout_s"

    def _recv(self, timeout: float, what: str, setting: str = "worker_timeout_s") -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self._poll.poll(max(1, math.ceil(left * 1000))):
                if time.monotonic() < deadline:
                    continue
                raise _Stopped(f"the model did not answer within {timeout:g} s ({what}); its worker process was "
                               f"stopped. Set {ENV[setting]} to allow longer calls")
            chunk = os.read(self.rep_r, 1 << 16)
            if not chunk:
                raise _Stopped(self._death_sentence(what))
            self._buf += chunk
            if len(self._buf) > MAX_LINE and b"\n" not in self._buf[:MAX_LINE]:
                raise _Stopped("its worker sent a message over the size limit")
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            msg = json.loads(line)
        except (ValueError, RecursionError):
            raise _Stopped("its worker sent a malformed message") from None
        if not isinstance(msg, dict):
            raise _Stopped("its worker sent a malformed message")
        return msg

    def call(self, op: str, x: torch.Tensor, interactive: bool = False) -> list[tuple[int, ...]]:
        """Run op on x in the worker (within `limit(interactive)`): the output shapes it reports (unchecked)."""
        a = x.detach().to(device="cpu", dtype=torch.float32).contiguous().numpy()
        if a.size:
            view = memoryview(a).cast("B")
            off = 0
            while view:
                n = os.pwrite(self.io_fd, view, off)
                view, off = view[n:], off + n
        self._send_line(f'{{"op":"{op}","in":[[{",".join(map(str, a.shape))}]]}}\n'.encode())  # one small JSON line
        seconds, setting = self.limit(interactive)
        msg = self._recv(seconds, op, setting)
        if msg.get("ok") == 1:
            out = msg.get("out")
            if not isinstance(out, list) or len(out) > 4:
                raise _Stopped("its worker answered with a malformed shape")
            return [_shape(s) for s in out]
        text = str(msg.get("msg", ""))[:600].replace("\n", " ")
        if msg.get("kind") == "memory":
            raise _Stopped(f"the model used more than {self.memory_mb} MB of memory ({op}: {text}); its worker "
                           f"process was stopped. Set {ENV['worker_memory_mb']} to raise the limit")
        raise CheckpointError(f"{op} failed inside the model: {text}")

    def read(self, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
        """The outputs of the last call, after the caller checked their shapes."""
        total = sum(math.prod(s) for s in shapes) * 4
        if total > self.memory_mb * 2**20:
            raise _Stopped(f"the model answered with {total / 2**20:,.0f} MB of output, more than its "
                           f"{self.memory_mb} MB memory limit")
        out, off = [], 0
        for s in shapes:
            t = torch.empty(s, dtype=torch.float32)
            n = t.numel() * 4
            if n and os.preadv(self.io_fd, [t.numpy()], off) != n:
                raise _Stopped("its worker's output was shorter than the shape it reported")
            out.append(t)
            off += n
        self._io_size = max(self._io_size, off)
        if self._io_size > 256 * 2**20:  # give a large batch's RAM on /dev/shm back
            os.ftruncate(self.io_fd, 0)
            self._io_size = 0
        return out


def _read_bytes(w: "_Worker", n: object, cap: int, what: str) -> bytes:
    """n bytes at offset 0 of a worker's IO file, after checking n (the worker's claim) and the file's size."""
    if type(n) is not int or n < 1:
        raise _Stopped(f"its worker answered with a malformed size ({what})")
    if n > cap:
        raise CheckpointError(f"{what} is {n / 2**20:,.1f} MB, over the {cap / 2**20:,.0f} MB a browser decoder may "
                              "take")
    if os.fstat(w.io_fd).st_size < n:
        raise _Stopped(f"its worker's output was shorter than the size it reported ({what})")
    buf = bytearray(n)
    view, off = memoryview(buf), 0
    while off < n:
        got = os.preadv(w.io_fd, [view[off:]], off)
        if got <= 0:
            raise _Stopped(f"its worker's output was shorter than the size it reported ({what})")
        off += got
    return bytes(buf)


_OUTPUTS = {"encode": ("mu", "logvar"), "decode": ("the image",)}  # what each call returns, for messages


def _check_finite(op: str, x: torch.Tensor, outs: list[torch.Tensor]) -> None:
    """Raise one CheckpointError sentence when an output of a call holds NaN or Inf (outs: (B, ...) each).

    A model that passed the load-time probe may still give NaN for other inputs; scored as if fine,
    that would read as a report about a working model.
    """
    for label, t in zip(_OUTPUTS.get(op, ()), outs):
        if t.dim() == 0 or t.numel() == 0 or bool(torch.isfinite(t).all()):
            continue
        rows = (~torch.isfinite(t.reshape(t.shape[0], -1))).any(1).nonzero().flatten()  # (bad rows,)
        first = int(rows[0])
        what = (f"a z with largest |z_j| = {float(x[first].abs().max()):.3g}" if op == "decode" and x.dim() == 2
                else f"image {first} of the batch")
        raise CheckpointError(
            f"the model's {op} returned NaN/Inf in {label} for {len(rows)} of {t.shape[0]} inputs (the first: "
            f"{what}); nothing was scored, since a model must give finite values for every input: check its "
            f"{op} on such inputs")


class RemoteModel(TorchScriptInterface):
    """A user's model file (TorchScript, or with `fmt` "export" / "onnx" a model zip and its checked
    meta.json) in a child worker, with the `VAE` interface. The contract: docs/contracts.md, "Bring
    your own model".

    `encode(x) -> (mu, logvar)`, `decode(z) -> mean`, `nll(x, z)`, `reparameterize`, `forward`,
    `latent_dim`, `input_shape` / `set_input_shape`, `likelihood`, the `log_scale` buffer, and
    `protection` (which filesystem protection the worker got). No parameters. Calls are
    serialised by a lock (one proxy is shared by every session); each waits at most
    `limits().worker_interactive_s` (up to INTERACTIVE_ROWS inputs) or `limits().worker_timeout_s`
    (larger batches) for the worker, which is killed and restarted past it.
    """

    _error = CheckpointError
    # A call of at most this many inputs is one a person waits for (the probe on load, a decode from a
    # slider or the pad, a few images encoded): it gets `worker_interactive_s`; larger batches (diagnose,
    # encoding a data set) get `worker_timeout_s`.
    INTERACTIVE_ROWS = 64

    def __init__(self, path: str | Path, input_shape: tuple[int, int, int] | None = None, *,
                 fmt: str = "torchscript", meta: dict | None = None):
        super().__init__()
        self.path = Path(path)
        self.name = self.path.name
        # "torchscript", or a model zip's "export" / "onnx" with its meta.json (checked by model_zips)
        self.format, self.meta = fmt, dict(meta or {})
        self._load_extra = {"format": fmt, "meta": self.meta}
        self._onnx: bytes | None = None
        self._onnx_lock = threading.Lock()
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._input_shape: tuple[int, int, int] | None = None
        self._latent_dim: int | None = None
        declared_shape = tuple(self.meta["input_shape"]) if "input_shape" in self.meta else None
        if input_shape is not None and declared_shape is not None and tuple(input_shape) != declared_shape:
            raise CheckpointError(f"{self.name}: meta.json says the model takes {' x '.join(map(str, declared_shape))} "
                                  f"images, the data is {' x '.join(map(str, input_shape))}; pick data of its shape")
        with self._lock:
            info = self._start()
        lik, scale, latent = info.get("likelihood"), info.get("scale"), info.get("latent_dim")
        if lik not in ("bernoulli", "gaussian"):
            raise CheckpointError(f"{self.name}: TorchScript attribute likelihood must be 'bernoulli' or 'gaussian'")
        if not (type(scale) in (int, float) and math.isfinite(scale) and scale > 0):
            raise CheckpointError(f"{self.name}: TorchScript attribute scale must be a finite number > 0")
        if latent is not None and not (type(latent) is int and latent >= 1):
            raise CheckpointError(f"{self.name}: the model's latent_dim is {str(latent)[:20]}; it must be >= 1")
        self._likelihood = lik
        self._declared_latent: int | None = latent  # TorchScript's latent_dim attribute, meta.json's, or decode's
        self.protection = str(info.get("protection", "none"))[:200]
        self.register_buffer("log_scale", torch.tensor(math.log(scale)))
        # None when the file declares no `scale` (most MSE-trained models): diagnose calibrates it
        self.declared_scale: float | None = float(scale) if info.get("scale_declared") is True else None
        if input_shape is not None or declared_shape is not None:
            self.set_input_shape(input_shape if input_shape is not None else declared_shape)

    def _new_worker(self, **extra) -> "_Worker":
        w = _Worker(self.path, self.name)
        w.load_request.update(self._load_extra, **extra)
        return w

    def _start(self) -> dict:
        w = self._new_worker()
        try:
            msg = w.start("loading the model")
        except _Stopped as e:
            w.kill()
            raise CheckpointError(f"{self.name}: {e}") from None
        if msg.get("ok") != 1:
            w.kill()
            text = str(msg.get("msg", "refused"))[:600]
            if msg.get("kind") == "memory":
                text = (f"the model used more than {w.memory_mb} MB of memory while loading; "
                        f"set {ENV['worker_memory_mb']} to raise the limit")
            raise CheckpointError(text if text.startswith(self.name) else f"{self.name}: {text}")
        self._worker = w
        return msg

    def close(self) -> None:
        """Stop the worker now (it is also stopped when the proxy is garbage-collected or at exit)."""
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None

    def _call(self, op: str, x: torch.Tensor, check) -> list[torch.Tensor]:
        with self._lock:
            if self._worker is None or not self._worker.alive():
                self._start()
            w = self._worker
            try:
                shapes = w.call(op, x, (int(x.shape[0]) if x.dim() else 0) <= self.INTERACTIVE_ROWS)
                check(shapes)
                out = w.read(shapes)
                _check_finite(op, x, out)
                return out
            except _Stopped as e:
                w.kill()
                self._worker = None
                raise CheckpointError(f"{self.name}: {e}") from None
            except CheckpointError as e:
                raise CheckpointError(f"{self.name}: {e}") from None

    # --- the VAE interface ---------------------------------------------------------------------

    @property
    def latent_dim(self) -> int:
        if self._latent_dim is None:
            if self._input_shape is None:
                raise ValueError("latent_dim of a TorchScript model is unknown until an input shape is set")
            self.set_input_shape(self._input_shape)
        return self._latent_dim

    def set_input_shape(self, shape: tuple[int, int, int]) -> None:
        """Set the data's (C, H, W) and probe the model on it: latent size, output shape and range."""
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise CheckpointError(f"{self.name}: the input shape must be (C, H, W), got {shape}")
        self._input_shape, self._latent_dim = shape, None
        mu, logvar = self.encode(torch.zeros(2, *shape))
        self._latent_dim = int(mu.shape[1])
        mean = self.decode(mu)  # every call's outputs are checked for NaN/Inf (_check_finite)
        lo, hi = float(mean.min()), float(mean.max())
        if self._likelihood == "bernoulli" and not (0.0 <= lo and hi <= 1.0):
            raise CheckpointError(f"{self.name}: decode(z) must give values in [0, 1] for a Bernoulli decoder; "
                                  f"got [{lo:.4g}, {hi:.4g}]")

    def try_input_shape(self, shape: tuple[int, int, int]) -> None:
        """`set_input_shape`, leaving the model as it was where the shape does not fit (it raises then):
        one worker can be tried on several data shapes."""
        before = self._input_shape, self._latent_dim
        try:
            self.set_input_shape(shape)
        except Exception:
            self._input_shape, self._latent_dim = before
            raise

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> (mu, logvar), each (B, D), computed in the worker."""
        b = int(x.shape[0]) if x.dim() else 0

        def check(shapes):
            if len(shapes) != 2 or len(shapes[0]) != 2 or shapes[0] != shapes[1] or shapes[0][0] != b:
                got = " and ".join(str(s) for s in shapes)
                raise CheckpointError(f"encode(x) must give mu, logvar of shape (B, D); got {got} for B={b}")
            d = shapes[0][1]
            if d < 1:
                raise CheckpointError("encode(x) gives a latent size of 0; mu and logvar must be (B, D) with D >= 1")
            limit = self._worker.max_latent
            if d > limit:
                raise CheckpointError(f"encode(x) gives {d} latent dimensions, over the limit of {limit}; "
                                      f"set {ENV['max_latent']} to raise it")
            if self._latent_dim is not None and d != self._latent_dim:
                raise CheckpointError(f"encode(x) gave {d} latent dimensions, earlier {self._latent_dim}")

        if self._input_shape is not None and tuple(x.shape[1:]) != self._input_shape:
            want = ", ".join(map(str, self._input_shape))
            raise CheckpointError(f"{self.name}: the model takes inputs of shape (B, {want}), got {tuple(x.shape)}")
        mu, logvar = self._call("encode", x, check)
        return mu, logvar


    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D) -> mean of p(x|z), (B, C, H, W), computed in the worker."""
        if z.dim() != 2 or (self._latent_dim is not None and z.shape[1] != self._latent_dim):
            want = f"(B, {self._latent_dim})" if self._latent_dim is not None else "(B, D)"
            raise CheckpointError(f"{self.name}: decode takes z of shape {want}, got {tuple(z.shape)}")
        b = int(z.shape[0])

        def check(shapes):
            if len(shapes) != 1 or len(shapes[0]) != 4 or shapes[0][0] != b:
                got = ", ".join(str(s) for s in shapes)
                raise CheckpointError(f"decode(z) must give images of shape (B, C, H, W) with B={b}; got {got}")
            if self._input_shape is not None and shapes[0][1:] != self._input_shape:
                raise CheckpointError(f"decode(z) gave shape {shapes[0]}, the data is {(b, *self._input_shape)}")

        return self._call("decode", z, check)[0]

    def _what(self) -> str:
        return self.name

    def decoder_onnx(self) -> bytes:
        """The decoder as an ONNX graph (input z (B, D) float32, output the mean (B, C, H, W)), for the browser.

        Made in a worker of its own (TorchScript: the scripted decode through the TorchScript-based
        exporter; torch.export: the dynamo exporter on decode.pt2; ONNX: decode.onnx as checked), and
        checked there against the model's own decode on random codes before it is returned. Kept
        for the proxy's life. CheckpointError (one sentence) when it cannot be made, differs, or is
        over MAX_ONNX_MB. Needs the latent size: an input shape set, or latent_dim declared.
        """
        with self._onnx_lock:
            if self._onnx is None:
                d = self._latent_dim or self._declared_latent or self.latent_dim
                self._onnx = self._export_decoder(int(d))
            return self._onnx

    def _export_decoder(self, latent_dim: int) -> bytes:
        what = "exporting the decoder to ONNX"
        w = self._new_worker(then="decoder_onnx", latent_dim=latent_dim)
        try:
            msg = w.start("loading the model")
            if msg.get("ok") == 1:
                msg = w._recv(max(w.timeout_s, EXPORT_S), what)
            if msg.get("ok") != 1:
                text = str(msg.get("msg", "refused"))[:600].replace("\n", " ")
                if msg.get("kind") == "memory":
                    text = (f"the model used more than {w.memory_mb} MB of memory while {what}; "
                            f"set {ENV['worker_memory_mb']} to raise the limit")
                raise CheckpointError(text if text.startswith(self.name) else f"{self.name}: {text}")
            return _read_bytes(w, msg.get("onnx_bytes"), MAX_ONNX_MB * 2**20, f"{self.name}: the decoder's ONNX graph")
        except _Stopped as e:
            raise CheckpointError(f"{self.name}: {e}") from None
        finally:
            w.kill()
