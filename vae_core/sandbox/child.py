"""The worker process: loads one user's model and runs its encode/decode on request.

Started by `proxy._Worker` as `python -m vae_core.sandbox.child CMD_FD REPLY_FD IO_FD SCRATCH`.
Code this project did not write runs here only (docs/architecture.md, "Trust boundary"). Order of events:
limits (memory, file size) -> read the model file -> close the filesystem (Landlock, before any
other thread exists so every later thread inherits it) -> load (TorchScript: torch.jit.load; a
model zip's torch.export or ONNX programs: `formats`) -> operation allow-list and weight checks ->
serve requests until the command pipe closes.

The load request's "format" is "torchscript" (default), "export" or "onnx" (with "meta", the
server-checked meta.json). With "then": "decoder_onnx" the worker instead exports the decoder to
ONNX (`onnx_export`), writes the bytes at offset 0 of the IO file, answers {"ok": 1,
"onnx_bytes": n} after the load answer, and exits.

Protocol (one request at a time): the parent writes float32 inputs into the IO file (a file in
the scratch directory on /dev/shm) at offset 0, one after another, and sends one JSON line
{"op": "encode"|"decode", "in": [shape, ...]}; the worker answers one JSON line
{"ok": 1, "out": [shape, ...]} with float32 outputs written at offset 0, one after another, or
{"ok": 0, "kind": "error"|"memory", "msg": "..."}. Nothing here is ever unpickled by the parent.
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import re
import resource
import select
import signal
import sys
import threading
import zipfile

import torch

from . import allowlist, formats, landlock

READ_ONLY = ["/proc/cpuinfo", "/sys/devices/system/cpu"]  # torch's cpuinfo reads these lazily (strace)
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): ?(.*)$")
MAX_MSG = 600


def inner_message(e: BaseException) -> str:
    """The innermost `SomethingError: message` of a (TorchScript) exception, on one line."""
    lines = str(e).splitlines()
    for i in range(len(lines) - 1, -1, -1):
        m = _ERROR_LINE.match(lines[i])
        if m:
            kind = m.group(1).rsplit(".", 1)[-1]
            rest = " ".join([m.group(2).strip(), *(s.strip() for s in lines[i + 1:] if s.strip())]).strip()
            text = f"{kind}: {rest}" if kind not in ("RuntimeError", "Error") else rest
            break
    else:
        text = next((s.strip() for s in lines if s.strip() and "TorchScript interpreter" not in s), type(e).__name__)
    return text[:MAX_MSG]


def is_memory_error(e: BaseException) -> bool:
    """An allocation refused under RLIMIT_DATA (torch's allocator, Python) or a write over RLIMIT_FSIZE."""
    s = str(e)
    return (isinstance(e, MemoryError) or getattr(e, "errno", None) == errno.EFBIG
            or any(w in s for w in ("can't allocate memory", "bad_alloc", "Cannot allocate memory")))


def _send(fd: int, obj: dict) -> None:
    data = (json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def _lines(fd: int):
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        yield json.loads(line)


def _exit_when_parent_goes(cmd_fd: int) -> None:
    """EOF on the command pipe (the parent died or closed it) ends the process, even mid-call."""
    p = select.poll()
    p.register(cmd_fd, 0)  # no events asked: poll returns on hang-up only
    while True:
        if p.poll():
            os._exit(0)


def _read_model(path: str, max_bytes: int) -> bytes:
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"the file is over {max_bytes / 2**20:.0f} MB")
    return data


def _check_code_text(data: bytes, name: str) -> None:
    """torch.jit.load runs a class's TorchScript __setstate__ while loading: refuse one beforehand.

    The archive's code/ files are the source TorchScript compiles; any mention of __setstate__
    there is refused (no VAE needs one), and so is a code file too large to read here.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            if "/code/" not in f"/{info.filename}":
                continue
            if info.file_size > 16 * 2**20:
                raise ValueError(f"{name}: {info.filename} holds {info.file_size / 2**20:.0f} MB of code; "
                                 "a model's code is at most 16 MB")
            if b"__setstate__" in z.read(info):
                raise ValueError(f"{name} defines __setstate__, code that would run while the file loads; "
                                 "export the model without a custom __setstate__")


def _load(data: bytes, name: str):
    """torch.jit.load into a compilation unit of our own, then check all of its code."""
    try:
        try:  # torch.jit.load without the wrapper, to keep the unit that holds every function
            cu = torch._C.CompilationUnit()
            cpp = torch._C.import_ir_module_from_buffer(cu, data, torch.device("cpu"), {}, False)
        except TypeError:  # another torch's private signature: the module's methods are checked instead
            cu = None
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        else:
            module = torch.jit._recursive.wrap_cpp_module(cpp)
    except Exception as e:
        raise ValueError(f"{name} could not be loaded as TorchScript: {inner_message(e)}") from None
    if cu is not None:
        allowlist.check_unit(cu, cpp._type().qualified_name(), name)
    else:
        allowlist.check_module(module, name)
    allowlist.check_attributes(module, name)
    return module


def _check_loaded(module, name: str) -> dict:
    for method in ("encode", "decode"):
        if not module._c._has_method(method):
            raise ValueError(f"{name}: the TorchScript module has no {method}() method; it needs "
                             "encode(x) -> (mu, logvar) and decode(z) -> mean")
    for label, t in [*module.named_parameters(), *module.named_buffers()]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: the model's weights contain NaN or Inf (in {label})")
    lik = getattr(module, "likelihood", "bernoulli")
    if lik not in ("bernoulli", "gaussian"):
        raise ValueError(f"{name}: TorchScript attribute likelihood must be 'bernoulli' or 'gaussian', "
                         f"got {str(lik)[:40]!r}")
    declared = hasattr(module, "scale")  # none declared: diagnostics calibrate it (docs/science.md, Rybkin et al.)
    scale = getattr(module, "scale", 1.0)
    if isinstance(scale, torch.Tensor) and scale.numel() == 1:
        scale = scale.item()
    if not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"{name}: TorchScript attribute scale must be a finite number > 0, got {str(scale)[:40]}")
    latent = getattr(module, "latent_dim", None)
    if latent is not None and (not isinstance(latent, int) or latent < 1):
        raise ValueError(f"{name}: TorchScript attribute latent_dim must be a whole number >= 1, "
                         f"got {str(latent)[:40]}")
    return {"likelihood": lik, "scale": float(scale), "scale_declared": declared, "latent_dim": latent}


def _load_format(fmt: str, data: bytes, name: str, req: dict):
    """(module, info) for a TorchScript file or a model zip of torch.export / ONNX programs."""
    if fmt == "torchscript":
        module = _load(data, name)
        return module, _check_loaded(module, name)
    max_bytes = int(req["max_file_mb"]) * 2**20
    if fmt == "export":
        module = formats.load_export(data, name, max_bytes)
    elif fmt == "onnx":
        module = formats.load_onnx(data, name, max_bytes, int(req["threads"]))
    else:
        raise ValueError(f"{name}: unknown model format {fmt[:20]!r}")
    meta = req.get("meta") or {}  # checked by the server (vae_core.runs.model_zips.parse_meta)
    latent = meta.get("latent_dim")
    if latent is not None and module.latent_dim is not None and latent != module.latent_dim:
        raise ValueError(f"{name}: meta.json says latent_dim {latent}, but decode takes z of {module.latent_dim} "
                         "dimensions; correct meta.json")
    return module, {"likelihood": meta.get("likelihood", "bernoulli"), "scale": float(meta.get("scale", 1.0)),
                    "scale_declared": "scale" in meta, "latent_dim": latent or module.latent_dim}


def _send_decoder_onnx(module, fmt: str, req: dict, name: str, rep_fd: int, io_fd: int) -> None:
    """Export the decoder to ONNX, check it, write its bytes at offset 0 of the IO file and say how many."""
    from . import onnx_export

    try:
        data = onnx_export.decoder_onnx(module, fmt, int(req["latent_dim"]), name, int(req["threads"]))
        view, off = memoryview(data), 0
        while view:
            n = os.pwrite(io_fd, view, off)
            view, off = view[n:], off + n
        _send(rep_fd, {"ok": 1, "onnx_bytes": len(data)})
    except Exception as e:
        msg = str(e)[:MAX_MSG] if type(e) is ValueError else inner_message(e)
        _send(rep_fd, {"ok": 0, "kind": "memory" if is_memory_error(e) else "error", "msg": msg})


def _read_inputs(fd: int, shapes: list) -> list[torch.Tensor]:
    out, off = [], 0
    for shape in shapes:
        t = torch.empty([int(s) for s in shape], dtype=torch.float32)
        n = t.numel() * 4
        if n and os.preadv(fd, [t.numpy()], off) != n:
            raise ValueError("short read of the input")
        out.append(t)
        off += n
    return out


def _write_outputs(fd: int, tensors: list[torch.Tensor]) -> list[list[int]]:
    shapes, off = [], 0
    for t in tensors:
        a = t.detach().to(torch.float32).contiguous().numpy()
        view = memoryview(a).cast("B") if a.size else b""
        while view:
            n = os.pwrite(fd, view, off)
            view, off = view[n:], off + n
        shapes.append(list(t.shape))
    return shapes


def _run(module, op: str, x: torch.Tensor) -> list[torch.Tensor]:
    if op == "encode":
        out = module.encode(x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2
                and all(isinstance(t, torch.Tensor) for t in out)):
            raise TypeError("encode(x) must return a tuple (mu, logvar) of tensors")
        return list(out)
    out = module.decode(x)
    if not isinstance(out, torch.Tensor):
        raise TypeError("decode(z) must return one tensor")
    return [out]


def main(argv: list[str]) -> int:
    cmd_fd, rep_fd, io_fd = (int(a) for a in argv[1:4])
    scratch = argv[4]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the size limit fails instead of killing
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal is for the server
    _send(rep_fd, {"hello": os.getpid()})
    requests = _lines(cmd_fd)
    req = next(requests, None)
    if req is None:
        return 0
    mem = int(req["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (mem, mem))
    resource.setrlimit(resource.RLIMIT_FSIZE, (mem, mem))  # the IO file cannot fill /dev/shm either
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    name = str(req["name"])
    fmt, then = str(req.get("format", "torchscript")), req.get("then")
    try:
        data = _read_model(req["path"], int(req["max_file_mb"]) * 2**20)
        if fmt == "torchscript":
            _check_code_text(data, name)
        formats.preload(fmt, then)  # imports read files: before the filesystem closes
        before = len(os.listdir("/proc/self/task"))  # Landlock binds this thread and the ones it starts
        try:
            extra, why = formats.read_only_paths(fmt, then)
            protection = landlock.restrict([scratch], [p for p in READ_ONLY if os.path.exists(p)] + extra)
            if extra:
                protection += f", {why}"
        except OSError as e:
            protection = f"none: Landlock failed ({e}); the operation allow-list still applies"
        if before > 1 and not protection.startswith("none"):
            protection += f" (not for {before - 1} thread(s) started before it)"
        threading.Thread(target=_exit_when_parent_goes, args=(cmd_fd,), daemon=True).start()
        torch.set_num_threads(int(req["threads"]))
        module, info = _load_format(fmt, data, name, req)
        del data
        module.eval()
    except Exception as e:
        _send(rep_fd, {"ok": 0, "kind": "memory" if is_memory_error(e) else "refused", "msg": str(e)[:MAX_MSG]})
        return 1
    _send(rep_fd, {"ok": 1, "protection": protection, **info})
    if then == "decoder_onnx":  # a worker started for this one export, then gone
        _send_decoder_onnx(module, fmt, req, name, rep_fd, io_fd)
        return 0
    with torch.inference_mode():  # once for the worker's life, not per call
        _serve(module, requests, rep_fd, io_fd)
    return 0


def _serve(module, requests, rep_fd: int, io_fd: int) -> None:
    for req in requests:
        try:
            op = req["op"]
            if op not in ("encode", "decode"):
                raise ValueError(f"unknown request {str(op)[:20]!r}")
            (x,) = _read_inputs(io_fd, req["in"])
            shapes = _write_outputs(io_fd, _run(module, op, x))
            os.write(rep_fd, f'{{"ok":1,"out":{shapes}}}\n'.replace(" ", "").encode())  # < PIPE_BUF: one write
        except Exception as e:
            _send(rep_fd, {"ok": 0, "kind": "memory" if is_memory_error(e) else "error", "msg": inner_message(e)})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
