"""Close the filesystem of the calling process except a few directories, with Linux Landlock.

ctypes calls of the three Landlock syscalls (same numbers on x86_64 and aarch64). The ruleset
handles every filesystem right the kernel's ABI knows, so anything not granted below is denied;
from ABI 4 it also handles TCP bind/connect (none granted: no TCP), from ABI 6 it scopes abstract
Unix sockets and signals to the process itself. Landlock restricts the calling thread and the
threads and processes it creates later: call it before any other thread starts.
"""
from __future__ import annotations

import ctypes
import os
import platform

_SYS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# filesystem rights by the ABI that introduced them (linux/landlock.h)
_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_FILE = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV  # rights a file rule may hold
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """The kernel's Landlock ABI version, or 0 when it has none (old kernel, disabled, other CPU)."""
    nums = _SYS.get(platform.machine())
    if nums is None or platform.system() != "Linux":
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    v = libc.syscall(ctypes.c_long(nums[0]), None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(v) if v > 0 else 0


def describe(v: int) -> str:
    """The protection that `restrict` gives with Landlock ABI v (0: none)."""
    if v < 1:
        return "none: the kernel lacks Landlock; the operation allow-list still applies"
    return f"landlock ABI {v}: filesystem closed except the scratch dir" + (", no TCP" if v >= 4 else "")


def restrict(read_write: list[str], read_only: list[str] = ()) -> str:
    """Deny all filesystem access except read+write beneath `read_write` and reading `read_only`.

    Returns a short description of the protection that applied ("none: ..." when the kernel has
    no Landlock). Irreversible for this process and its future threads and children.
    """
    v = abi()
    if v < 1:
        return describe(0)
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    create, add_rule, restrict_self = _SYS[platform.machine()]
    fs = _FS_ABI1 | (_FS_REFER if v >= 2 else 0) | (_FS_TRUNCATE if v >= 3 else 0) | (_FS_IOCTL_DEV if v >= 5 else 0)
    attr = _RulesetAttr(fs, _NET_BIND_TCP | _NET_CONNECT_TCP if v >= 4 else 0,
                        _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if v >= 6 else 0)
    size = 8 if v < 4 else 16 if v < 6 else 24
    fd = libc.syscall(ctypes.c_long(create), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        ro = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        for paths, access in ((read_write, fs), (read_only, ro)):
            for p in paths:
                pfd = os.open(p, os.O_PATH | os.O_CLOEXEC)
                try:
                    # rights that only apply to directories are refused on a file: keep the file ones
                    a = access if os.path.isdir(p) else access & _FS_FILE
                    rule = _PathBeneathAttr(a, pfd)
                    if libc.syscall(ctypes.c_long(add_rule), ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH),
                                    ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {p}: {os.strerror(ctypes.get_errno())}")
                finally:
                    os.close(pfd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(ctypes.c_long(restrict_self), ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
    return describe(v)
