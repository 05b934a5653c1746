"""`streamlit run streamlit_app.py` with the shipped .streamlit/config.toml listens on loopback only
(issue #13), and an explicit `--server.address` on the command line still wins over the file.

Each test starts the real server on a free port, waits for /_stcore/health (no browser session, so
the script itself never runs), and reads the listening TCP sockets the process owns from /proc: the
inodes behind its /proc/<pid>/fd links, looked up in /proc/<pid>/net/tcp and tcp6. Linux only.
Nothing here ever binds a non-loopback address.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
from paths import ROOT as REPO  # the repository root (tests/paths.py)

APP = REPO / "streamlit_app.py"
TCP_LISTEN = "0A"  # the `st` column of /proc/net/tcp for a listening socket

pytestmark = [
    pytest.mark.slow,  # two server starts, 2-5 s each on a loaded 2-core machine
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads listening sockets from /proc"),
]


def _free_port(host: str) -> int:
    """A TCP port free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _decode_addr(hexaddr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp{,6} print an address as 32-bit words in host byte order, each as %08X."""
    words = [int(hexaddr[i:i + 8], 16) for i in range(0, len(hexaddr), 8)]
    return ipaddress.ip_address(b"".join(struct.pack("=I", w) for w in words))


def _process_tree(pid: int) -> list[int]:
    """pid and every descendant (Streamlit serves from its own process, but do not assume it)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket owned by pid or its children."""
    inodes: set[str] = set()
    for p in _process_tree(pid):
        for fd in Path(f"/proc/{p}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    found = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():  # no IPv6 in this kernel
            continue
        for line in path.read_text().splitlines()[1:]:
            f = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            if f[3] == TCP_LISTEN and f[9] in inodes:
                addr, port = f[1].rsplit(":", 1)
                found.add((str(_decode_addr(addr)), int(port, 16)))
    return found


def is_loopback(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback  # 127.0.0.0/8 or ::1


class Server:
    """`streamlit run streamlit_app.py` from the repository root (so the shipped config applies)."""

    def __init__(self, port: int, *args: str):
        env = dict(os.environ)
        env.pop("STREAMLIT_SERVER_ADDRESS", None)  # would override the config file under test
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.port = port
        self._log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), *args],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, host: str, timeout: float = 90.0) -> None:
        # No proxies: a proxy from the environment must not answer for (or block) a loopback address.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://{host}:{self.port}/_stcore/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"streamlit exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with opener.open(url, timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{url} did not answer ok in {timeout:.0f} s:\n{self.output()}")

    def stop(self) -> None:
        """Terminate by process id, kill if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()

    def output(self) -> str:
        """Everything it printed so far."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")


@pytest.fixture
def serve():
    """Factory: serve(port, *args) -> a started Server; every one is stopped at the end."""
    started: list[Server] = []

    def start(port: int, *args: str) -> Server:
        server = Server(port, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def assert_listens_only_on(server: Server, allowed: set[str]) -> None:
    socks = listening_sockets(server.proc.pid)
    on_port = {a for a, p in socks if p == server.port}
    assert on_port, f"no listening socket on port {server.port}: {sorted(socks)}"
    assert on_port <= allowed, f"port {server.port} listens on {sorted(on_port)}, allowed only {sorted(allowed)}"
    # Nothing else the process opened listens beyond loopback either.
    assert all(is_loopback(a) for a, _ in socks), f"a listening socket off loopback: {sorted(socks)}"


def test_shipped_config_binds_loopback_only(serve):
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost", config.get("server")
    server = serve(_free_port("127.0.0.1"))  # the README's command, plus a port: no --server.address
    server.wait_healthy("localhost")
    assert_listens_only_on(server, {"127.0.0.1", "::1"})


def test_explicit_address_wins_over_config(serve):
    # Another loopback address than the config's, so the test proves the override without ever
    # offering the app beyond this machine.
    port = _free_port("127.0.0.2")
    server = serve(port, "--server.address", "127.0.0.2")
    server.wait_healthy("127.0.0.2")
    assert_listens_only_on(server, {"127.0.0.2"})
