"""The operations a user's TorchScript model may use: checked on all of its code before any of it runs.

Allowed: the `aten::` and `prim::` namespaces (tensor maths, control flow, lists, strings,
prim::Print), minus the operations in DENIED, which reach outside the process. Refused: every
other namespace (custom `torch.ops.<ns>.*` from C++ extensions, `quantized::`, `c10d::`,
`profiler::`, `debugprims::`, ...): a VAE needs none of them and they cannot all be audited.

DENIED was built by scanning the names of `torch._C._jit_get_all_schemas()` (torch 2.13) for
file, save, load, mmap, shm, env, socket, rpc, process and thread words, and keeping those that
touch something outside the worker's own memory.

What is checked: every function of the model's compilation unit (`check_unit`: module methods,
hooks, `__setstate__`, free functions, TorchScript class methods such as `__enter__`/`__exit__`
of a `with` statement), each graph walked with its nested blocks and fork/closure subgraphs. A
method call is allowed only into a function that is checked too. `check_module` does the same
from a module alone (for a module scripted in this process): every method of every submodule,
inlined, where a call left after inlining is refused.
"""
from __future__ import annotations

import re

ALLOWED_NAMESPACES = ("aten", "prim")

DENIED = {
    "aten::from_file": "reads or writes files",  # torch.from_file(path, shared=True): maps a file
    "aten::save": "writes files",  # torch.save from TorchScript
    "prim::rpc_async": "uses the network",  # torch.distributed.rpc
    "prim::rpc_sync": "uses the network",
    "prim::rpc_remote": "uses the network",
    "prim::PythonOp": "runs Python code",  # a @torch.jit.ignore'd Python function
    "prim::IgnoredPythonOp": "runs Python code",
    # torch.jit.fork: a task that can outlive the call (and its time limit), burning CPU for ever
    "prim::fork": "starts a background task that can outlive the call",
}
# Reviewed and allowed: prim::Print / aten::_print (to the worker's log, /dev/null), aten::manual_seed
# / seed (the worker's own generator), aten::set_ (a tensor's own storage), aten::wait (of a fork).

_ONLY = ("models may only compute with tensors (aten and prim operations that touch no file, "
         "network or process)")
_MANGLE = re.compile(r"___torch_mangle_\d+\.")


def why_denied(kind: str) -> str | None:
    """None when the operation `kind` ('ns::name') is allowed, else what it does."""
    if kind in DENIED:
        return DENIED[kind]
    if kind.split("::", 1)[0] not in ALLOWED_NAMESPACES:
        return "is outside the aten and prim namespaces"
    return None


def _short(qualified: str, top: str = "") -> str:
    """'__torch__.pkg.M.encode' -> 'encode' for the top module M, else 'M.encode' (mangling removed)."""
    q = _MANGLE.sub("", qualified)
    if top and q.rsplit(".", 1)[0] == _MANGLE.sub("", top):
        return q.rsplit(".", 1)[1]
    return ".".join(q.split(".")[-2:])


def _problems(graph, known: set[str] | None, calls_ok: bool):
    """(operation, why) for each node of graph (blocks and subgraphs included) that is not allowed.

    known: the functions that are checked too (a method call must go to one); None: calls unchecked.
    calls_ok: whether prim::CallFunction (a call of a function of the same unit) is fine.
    """
    for n in graph.nodes():
        k = n.kind()
        why = why_denied(k)
        if why is None and known is not None and k in ("prim::CallMethod", "prim::Enter", "prim::Exit"):
            t = next(n.inputs()).type()
            method = n.s("name") if k == "prim::CallMethod" else "__enter__" if k == "prim::Enter" else "__exit__"
            target = f"{t.qualified_name()}.{method}" if hasattr(t, "qualified_name") else str(t)
            if target not in known:
                why = f"calls {_short(target)}, code that cannot be checked"
        elif why is None and k == "prim::CallFunction" and not calls_ok:
            why = "calls a function value, code that cannot be checked"
        if why:
            yield k, why
        for b in n.blocks():
            yield from _problems(b, known, calls_ok)
        for a in n.attributeNames():
            if n.kindOf(a) == "g":
                yield from _problems(n.g(a), known, calls_ok)
            elif n.kindOf(a) == "gs":
                for g in n.gs(a):
                    yield from _problems(g, known, calls_ok)


def _check(functions: list[tuple[str, object]], known: set[str] | None, name: str, calls_ok: bool) -> None:
    for where, graph in functions:
        for k, why in _problems(graph, known, calls_ok):
            raise ValueError(f"{name}: {where} uses {k}, which {why}; {_ONLY}")


def check_unit(cu, top: str, name: str = "model") -> None:
    """Raise ValueError naming the first function and operation outside the allow-list.

    cu: the torch._C.CompilationUnit the model was imported into (it holds all of its code);
    top: the qualified name of the model's module type (for shorter messages).
    """
    fns = [(f.qualified_name, f.graph) for f in cu.get_functions()]
    known = {q for q, _ in fns}
    _check([(_short(q, top), g) for q, g in fns], known, name, calls_ok=True)


def check_module(module, name: str = "model") -> None:
    """Like `check_unit` from a ScriptModule: every method and hook of every submodule, inlined."""
    import torch

    top = module._c._type().qualified_name()
    fns, known = [], set()
    for _, sub in module.named_modules():
        qn = sub._c._type().qualified_name()
        for m in sub._c._method_names():
            known.add(f"{qn}.{m}")
            fns.append((f"{qn}.{m}", sub._c._get_method(m).graph))
        for kind in ("_get_forward_hooks", "_get_forward_pre_hooks"):
            fns += [(f"{qn}.{h.name}", h.graph) for h in getattr(sub._c, kind, lambda: [])()]
    inlined = []
    for q, g in fns:
        g = g.copy()
        torch._C._jit_pass_inline(g)
        inlined.append((_short(q, top), g))
    _check([(_short(q, top), g) for q, g in fns], None, name, calls_ok=True)  # names the method itself
    _check(inlined, known, name, calls_ok=False)  # then what it calls (functions, class methods)


def check_attributes(module, name: str = "model") -> None:
    """Refuse module attributes holding a storage or a custom C++ class object."""
    import torch

    for attr, value in torch._C._jit_debug_module_iterators(module._c)["named_attributes_r"]:
        if isinstance(value, (torch.UntypedStorage, torch.TypedStorage)) or type(value).__name__ == "ScriptObject":
            raise ValueError(f"{name}: attribute {attr} is a {type(value).__name__}; models may only hold "
                             "tensors, numbers, strings and submodules")
