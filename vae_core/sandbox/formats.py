"""The worker's loaders for model zips of today's formats: `torch.export` programs and ONNX graphs.

Runs only in the sandbox worker (`child.py`), after its filesystem is closed; the server reads
nothing here (it checked the zip's members and meta.json in `vae_core.runs.model_zips`). Each program
is checked before it runs:
- a `torch.export` program's graph (`ep.graph_module`, every nested graph too) holds only `aten`
  operations that pass the TorchScript allow-list (`allowlist.why_denied`), the getitem and
  symbolic-size arithmetic the exporter writes, and no custom class objects;
- an ONNX graph uses only the standard ai.onnx domain (no custom or contrib operators, which
  onnxruntime would look up in native libraries), known operators, and no tensor stored as
  external data (no file access).
`ProgramModel` then gives them the TorchScript module's face (`encode`, `decode`) for `child._run`.
A program exported with a fixed batch size is run in chunks of that size.
"""
from __future__ import annotations

import io
import math
import os
import operator
import zipfile
from pathlib import Path

import torch

from ..streams import read_member_capped
from . import allowlist

ONNX_DOMAINS = ("", "ai.onnx")
# What torch.export writes besides aten operations: tuple indexing and arithmetic on symbolic sizes
_PY_OPS = {getattr(operator, n) for n in ("getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "neg",
                                           "pow", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_")}
_PY_OPS |= {getattr(torch, n) for n in ("sym_max", "sym_min", "sym_not", "sym_float", "sym_int", "sym_ite",
                                         "sym_sqrt", "sym_sum") if hasattr(torch, n)}
_PY_OPS |= {math.ceil, math.floor, math.trunc}
EXPORT_HOW = ("write it with torch.export.save(torch.export.export(wrapper, (example,)), PATH), where the "
              "wrapper's forward calls your model's encode or decode")
ONNX_HOW = "export it with torch.onnx.export(wrapper, (example,), PATH) from standard ONNX operators"


def why(e: BaseException) -> str:
    """An exception's first non-empty line (the worker's own modules only: child.py is __main__ here)."""
    line = next((s.strip() for s in str(e).splitlines() if s.strip()), "")
    return f"{type(e).__name__}: {line}" if not isinstance(e, (ValueError, RuntimeError)) or not line else line


def _in_batches(fn, x: torch.Tensor, fixed: int | None) -> list[torch.Tensor]:
    """fn on x (B, ...) in chunks of a program's fixed batch size, the last chunk padded with its last row."""
    b = int(x.shape[0])
    if fixed is None or b == fixed or b == 0:
        return list(fn(x))
    parts = []
    for i in range(0, b, fixed):
        chunk = x[i:i + fixed]
        n = int(chunk.shape[0])
        if n < fixed:
            chunk = torch.cat([chunk, chunk[-1:].expand(fixed - n, *chunk.shape[1:])])
        parts.append([t[:n] for t in fn(chunk)])
    return [torch.cat(ts) for ts in zip(*parts)]


class ProgramModel:
    """encode/decode of a model zip's two programs, in the worker; the face `child._run` expects."""

    def __init__(self, fmt: str, encode, decode, batch: dict[str, int | None], n_out: dict[str, int],
                 decode_program=None, decode_bytes: bytes | None = None, latent_dim: int | None = None):
        self.format = fmt
        self._fns = {"encode": encode, "decode": decode}
        self._batch, self._n_out = batch, n_out
        self.decode_program = decode_program  # the torch.export program (for the ONNX export)
        self.decode_bytes = decode_bytes  # the checked decode.onnx
        self.latent_dim = latent_dim  # from decode's input shape where it is fixed

    def eval(self):
        return self

    def _call(self, role: str, x: torch.Tensor) -> list[torch.Tensor]:
        def run(t):
            out = self._fns[role](t.contiguous())
            out = list(out) if isinstance(out, (tuple, list)) else [out]
            if len(out) != self._n_out[role] or not all(isinstance(o, torch.Tensor) for o in out):
                want = "a tuple (mu, logvar) of tensors" if role == "encode" else "one tensor"
                raise TypeError(f"{role}(x) must return {want}, got {len(out)} output(s)")
            return out
        return _in_batches(run, x, self._batch[role])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self._call("encode", x)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._call("decode", z)[0]


# ------------------------------------------------------------------ torch.export


def _node_problem(node) -> str | None:
    """Why an ExportedProgram graph node is refused, or None."""
    if node.op in ("placeholder", "output", "get_attr"):
        return None
    if node.op != "call_function":
        return f"has a {node.op} node ({str(node.target)[:60]}), which exported programs never hold"
    t = node.target
    if isinstance(t, torch._ops.OpOverload):
        kind = t._schema.name  # 'aten::conv2d'
        why = allowlist.why_denied(kind)
        if why is None and not kind.startswith("aten::"):
            why = "is outside the aten namespace"
        return f"uses {kind}, which {why}" if why else None
    if t in _PY_OPS:
        return None
    return f"calls {getattr(t, '__module__', '') or ''}.{getattr(t, '__name__', str(t))[:60]}, which is not an aten operation"


def check_program(ep, where: str) -> None:
    """Raise ValueError naming the first operation of the program outside the allow-list."""
    graphs = [m.graph for m in ep.graph_module.modules() if isinstance(getattr(m, "graph", None), torch.fx.Graph)]
    for g in graphs:
        for n in g.nodes:
            why = _node_problem(n)
            if why:
                raise ValueError(f"{where} {why}; models may only compute with tensors (aten operations that "
                                 "touch no file, network or process)")
    for label, value in {**ep.state_dict, **ep.constants}.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}: constant {label} is a {type(value).__name__}; programs may only hold tensors")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{where}: the program's weights contain NaN or Inf (in {label})")


def _user_input(ep, where: str):
    """The placeholder node of the program's one user input (x or z)."""
    names = list(ep.graph_signature.user_inputs)
    if len(names) != 1:
        raise ValueError(f"{where} takes {len(names)} inputs; it must take one tensor (x for encode, z for decode)")
    return next(n for n in ep.graph_module.graph.nodes if n.op == "placeholder" and n.name == names[0])


def _fixed(dim) -> int | None:
    return dim if type(dim) is int else None


def load_export(data: bytes, name: str, max_bytes: int) -> ProgramModel:
    """encode.pt2 and decode.pt2 of a model zip (bytes) -> ProgramModel, each program checked first."""
    progs, batch, latent = {}, {}, None
    for role in ("encode", "decode"):
        member = f"{role}.pt2"
        where = f"{name}: {member}"
        raw = read_member_capped(data, name, member, max_bytes)
        if not zipfile.is_zipfile(io.BytesIO(raw)):
            raise ValueError(f"{where} is not a torch.export program (not a .pt2 archive); {EXPORT_HOW}")
        try:
            ep = torch.export.load(io.BytesIO(raw))
        except Exception as e:  # any failure of a stranger's archive is the file's fault
            raise ValueError(f"{where} could not be loaded by torch.export.load ({why(e)[:200]}); "
                             f"{EXPORT_HOW}") from None
        if not isinstance(ep, torch.export.ExportedProgram):
            raise ValueError(f"{where} is not a torch.export program; {EXPORT_HOW}")
        check_program(ep, where)
        val = _user_input(ep, where).meta.get("val")
        shape = tuple(val.shape) if isinstance(val, torch.Tensor) else ()
        batch[role] = _fixed(shape[0]) if shape else None
        if role == "decode" and len(shape) == 2:
            latent = _fixed(shape[1])
        progs[role] = ep
    enc, dec = progs["encode"].module(), progs["decode"].module()
    return ProgramModel("export", enc, dec, batch, {"encode": 2, "decode": 1},
                        decode_program=progs["decode"], latent_dim=latent)


# ------------------------------------------------------------------ ONNX


def _tensor_problem(t) -> str | None:
    import onnx

    if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
        return f"stores tensor {t.name[:60]!r} as external data (a file beside the model)"
    return None


def _graph_problems(g, seen: int = 0):
    """(why) for each node, tensor or subgraph of an ONNX graph outside what the worker runs."""
    import onnx

    for t in g.initializer:
        why = _tensor_problem(t)
        if why:
            yield why
    for st in g.sparse_initializer:
        for t in (st.values, st.indices):
            why = _tensor_problem(t)
            if why:
                yield why
    for n in g.node:
        if n.domain not in ONNX_DOMAINS:
            yield f"uses operator {n.op_type[:60]} of the custom domain {n.domain[:60]!r}"
            continue
        if not onnx.defs.has(n.op_type, ""):
            yield f"uses {n.op_type[:60]!r}, which is not a standard ONNX operator"
            continue
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _graph_problems(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sub in a.graphs:
                    yield from _graph_problems(sub)
            elif a.type == onnx.AttributeProto.TENSOR:
                why = _tensor_problem(a.t)
                if why:
                    yield why
            elif a.type == onnx.AttributeProto.TENSORS:
                for t in a.tensors:
                    why = _tensor_problem(t)
                    if why:
                        yield why
            elif a.type == onnx.AttributeProto.SPARSE_TENSOR:
                for t in (a.sparse_tensor.values, a.sparse_tensor.indices):
                    why = _tensor_problem(t)
                    if why:
                        yield why


def check_onnx(proto, where: str, n_out: int) -> None:
    """Raise ValueError for an ONNX model outside the standard domain, with external data or the wrong arity."""
    for op in proto.opset_import:
        if op.domain not in ONNX_DOMAINS:
            raise ValueError(f"{where} imports the custom operator domain {op.domain[:60]!r}; {ONNX_HOW}")
    if len(proto.functions):
        f = proto.functions[0]
        raise ValueError(f"{where} defines the function {f.domain[:40]}.{f.name[:40]}; {ONNX_HOW} "
                         "(functions inlined)")
    for why in _graph_problems(proto.graph):
        raise ValueError(f"{where} {why}; {ONNX_HOW}")
    g = proto.graph
    inits = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    want = "x (outputs mu, logvar)" if n_out == 2 else "z (output the mean image)"
    if len(inputs) != 1 or len(g.output) != n_out:
        raise ValueError(f"{where} has {len(inputs)} input(s) and {len(g.output)} output(s); it must take one input "
                         f"{want}")
    elem = inputs[0].type.tensor_type.elem_type
    if elem != 1:  # TensorProto.FLOAT
        raise ValueError(f"{where}: its input {inputs[0].name[:40]!r} is not float32; export it with float32 inputs")


def _onnx_batch(proto) -> int | None:
    g = proto.graph
    inits = {t.name for t in g.initializer}
    dims = next(i for i in g.input if i.name not in inits).type.tensor_type.shape.dim
    return dims[0].dim_value if len(dims) and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None


def onnx_session(raw: bytes, threads: int):
    """An onnxruntime session on the CPU for checked ONNX bytes."""
    import onnxruntime as ort

    if hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(raw, so, providers=["CPUExecutionProvider"])


def _runner(sess):
    name = sess.get_inputs()[0].name

    def run(x: torch.Tensor):
        return [torch.from_numpy(o.copy()) for o in sess.run(None, {name: x.detach().numpy()})]
    return run


def read_onnx(raw: bytes, where: str, n_out: int):
    """Parse and check ONNX bytes: the ModelProto, or ValueError naming the member and the fix."""
    import onnx

    try:
        proto = onnx.load_model_from_string(raw)
    except Exception:  # protobuf's DecodeError and kin
        raise ValueError(f"{where} is not an ONNX model (it does not parse); {ONNX_HOW}") from None
    if not len(proto.graph.node) and not len(proto.graph.output):
        raise ValueError(f"{where} is not an ONNX model (it holds no graph); {ONNX_HOW}")
    check_onnx(proto, where, n_out)
    return proto


def load_onnx(data: bytes, name: str, max_bytes: int, threads: int) -> ProgramModel:
    """encode.onnx and decode.onnx of a model zip (bytes) -> ProgramModel, each graph checked first."""
    fns, batch, raws, latent = {}, {}, {}, None
    for role, n_out in (("encode", 2), ("decode", 1)):
        member = f"{role}.onnx"
        where = f"{name}: {member}"
        raw = read_member_capped(data, name, member, max_bytes)
        proto = read_onnx(raw, where, n_out)
        batch[role] = _onnx_batch(proto)
        if role == "decode":
            g = proto.graph
            inits = {t.name for t in g.initializer}
            dims = next(i for i in g.input if i.name not in inits).type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value > 0:
                latent = int(dims[1].dim_value)
        del proto
        try:
            sess = onnx_session(raw, threads)
        except Exception as e:
            raise ValueError(f"{where} could not be loaded by onnxruntime ({why(e)[:200]}); "
                             f"{ONNX_HOW}") from None
        fns[role], raws[role] = _runner(sess), raw
    return ProgramModel("onnx", fns["encode"], fns["decode"], batch, {"encode": 2, "decode": 1},
                        decode_bytes=raws["decode"], latent_dim=latent)


WARMUP = Path(__file__).with_name("assets") / "warmup.pt2"  # the project's own tiny program (make_warmup)


class _Warmup(torch.nn.Module):
    """z (B, 2) -> (B, 1, 2, 2): the shape of a decoder, with the operations of a small one."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(z)).reshape(-1, 1, 2, 2)


def make_warmup(path: str | Path = WARMUP) -> Path:
    """Write the warm-up program (`python -m vae_core.sandbox.formats` does; the file ships with the code)."""
    torch.manual_seed(0)
    ep = torch.export.export(_Warmup().eval(), (torch.zeros(3, 2),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, str(path))
    return Path(path)


def warmup_program():
    """The warm-up program, loaded and run once (torch.export.load and its module import their code lazily)."""
    ep = torch.export.load(str(WARMUP))
    ep.module()(torch.zeros(2, 2))
    return ep


def preload(fmt: str, then: str | None) -> None:
    """Import what loading a format needs, before the worker's filesystem is closed.

    torch.export.load and its module import hundreds of modules lazily, on first use; after
    Landlock closes the filesystem they could not. So the project's own warm-up program goes
    through the same steps first. A worker started for the decoder's ONNX export instead keeps
    the Python library readable (`library_paths`): the exporters import by operation, as they go.
    """
    if then == "decoder_onnx":
        return
    if fmt in ("export", "onnx"):
        import encodings.cp437  # noqa: F401  (zipfile decodes member names that are not UTF-8 with it)
    if fmt == "export":
        warmup_program()
    if fmt == "onnx":
        import onnx  # noqa: F401  (onnxruntime is imported after: its import starts a telemetry thread)


def read_only_paths(fmt: str, then: str | None) -> tuple[list[str], str]:
    """Folders a worker may read besides its scratch directory, and why, in a few words.

    The export worker: the Python library (`library_paths`). An ONNX worker: onnxruntime's package
    folder, so onnxruntime is imported after the filesystem closes and the thread its import
    starts (telemetry) is bound by Landlock too (no file writes, no TCP).
    """
    if then == "decoder_onnx":
        return library_paths(), "the Python library readable (the ONNX exporters import as they go)"
    if fmt == "onnx":
        import importlib.util

        spec = importlib.util.find_spec("onnxruntime")
        if spec is not None and spec.origin:
            return [os.path.dirname(spec.origin)], "onnxruntime's own files readable"
    return [], ""


def library_paths() -> list[str]:
    """The installed Python code, read-only for the export worker: the standard library, site-packages, vae_core.

    Not the folder above vae_core (it may hold runs and uploads) nor other PYTHONPATH entries.
    """
    import site
    import sysconfig

    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages())
    user = site.getusersitepackages()
    if isinstance(user, str):
        paths.add(user)
    paths.add(str(Path(__file__).resolve().parents[1]))  # vae_core itself
    return sorted(p for p in paths if p and os.path.isdir(p) and Path(p).resolve() != Path("/"))


if __name__ == "__main__":
    print(make_warmup())
