"""Every VAE_EXPLORER_* limit setting given garbage (inf, 1e999, nan, a negative number, zero, text,
a value past its highest) is refused at start, by the CLI and by the app, with one sentence naming
the variable, the bad value and the allowed range (issue 19, item 5).

Before: VAE_EXPLORER_MAX_PARAMS=1e999 raised OverflowError, and VAE_EXPLORER_WORKER_TIMEOUT_S=inf
or 1e7 was accepted, then failed every model call (poll(2) takes milliseconds in a C int).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer import startup
from vae_core import cli
from vae_core.limits import ENV, LimitError, Limits, limits

ROOT = Path(__file__).resolve().parent.parent
NUMERIC = [f.name for f in fields(Limits) if not isinstance(f.default, bool)]
BAD_KINDS = ["inf", "-inf", "1e999", "nan", "-5", "0", "lots", "past-max"]


def _bad(name: str, kind: str) -> str:
    """The raw text of a bad value of kind `kind` for limit `name` (past-max: ten times its highest)."""
    if kind == "past-max":
        hi = next(f.metadata["range"][1] for f in fields(Limits) if f.name == name)
        return repr(hi * 10)
    return kind


CASES = [(n, _bad(n, k)) for n in NUMERIC for k in BAD_KINDS] + [
    ("public", v) for v in ("maybe", "inf", "nan", "2", "-1")] + [
    ("max_params", "2.5"), ("max_batch", "64.5"),  # a count is a whole number, never rounded silently
    ("worker_timeout_s", "1e7"),  # passed before; poll(2) overflowed at the first model call
]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAE_EXPLORER_")}
    return {**env, **extra}


def _assert_sentence(text: str, name: str, raw: str) -> None:
    """One line naming the variable and the value, and saying what is allowed."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert ENV[name] in lines[0] and repr(raw) in lines[0], lines[0]
    assert "Traceback" not in text and "unexpected" not in text
    assert "must be" in lines[0], lines[0]


def test_every_numeric_limit_declares_a_finite_range_holding_its_default():
    for f in fields(Limits):
        if isinstance(f.default, bool):
            continue
        lo, hi = f.metadata["range"]
        assert 0 < lo <= f.default <= hi < float("inf"), f.name
    assert fields(Limits)[0].name and len(NUMERIC) == len(fields(Limits)) - 1


@pytest.mark.parametrize("name,raw", CASES)
def test_a_bad_setting_is_one_sentence_with_the_variable_value_and_range(monkeypatch, name, raw):
    monkeypatch.setenv(ENV[name], raw)
    with pytest.raises(LimitError) as e:
        limits()
    _assert_sentence(str(e.value), name, raw)
    f = next(f for f in fields(Limits) if f.name == name)
    if not isinstance(f.default, bool):  # the range, written as a person reads it
        lo, hi = f.metadata["range"]
        assert f"{lo:,}" in str(e.value) or f"{lo:,g}" in str(e.value), str(e.value)
        assert f"{hi:,}" in str(e.value) or f"{hi:,g}" in str(e.value), str(e.value)


@pytest.mark.parametrize("name,raw,want", [
    ("max_params", "1e6", 1_000_000), ("max_data_mb", " 4096 ", 4096), ("worker_timeout_s", "0.5", 0.5),
    ("worker_timeout_s", "86400", 86400.0), ("public", "yes", True), ("public", "0", False),
    ("public", "ON", True), ("max_layers", "1024", 1024),
])
def test_good_settings_are_read(monkeypatch, name, raw, want):
    monkeypatch.setenv(ENV[name], raw)
    got = getattr(limits(), name)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize("name,raw", CASES)
def test_the_cli_refuses_a_bad_setting_before_any_work(monkeypatch, capsys, name, raw):
    monkeypatch.setenv(ENV[name], raw)
    code = cli.main(["diagnose", str(ROOT / "runs" / "default"), "--data", "digits", "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    _assert_sentence(captured.err, name, raw)
    assert captured.err.startswith("error: ")


# Each variable once as a real process (the kinds taken in turn), and the three cases.
PROCESS_CASES = [(n, _bad(n, BAD_KINDS[i % len(BAD_KINDS)])) for i, n in enumerate(NUMERIC)] + [
    ("public", "maybe"), ("max_params", "1e999"), ("worker_timeout_s", "inf"), ("worker_timeout_s", "1e7")]


@pytest.mark.parametrize("name,raw", PROCESS_CASES)
def test_python_m_vae_core_exits_with_one_sentence(tmp_path, name, raw):
    p = subprocess.run([sys.executable, "-m", "vae_core", "train", "--data", "digits", "--epochs", "1",
                        "--out", str(tmp_path / "run")], cwd=ROOT, env=_clean_env(**{ENV[name]: raw}),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    _assert_sentence(p.stderr, name, raw)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name,raw", CASES)
def test_the_app_check_names_the_bad_setting(monkeypatch, name, raw):
    monkeypatch.setenv(ENV[name], raw)
    why = startup.settings_error()
    assert why is not None
    _assert_sentence(why, name, raw)
    monkeypatch.delenv(ENV[name])
    assert startup.settings_error() is None


def test_a_page_shows_the_bad_setting_and_draws_nothing_else(monkeypatch):
    monkeypatch.setenv(ENV["max_params"], "1e999")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and ENV["max_params"] in errors[0] and "'1e999'" in errors[0], errors
    assert not at.sidebar.selectbox  # the pickers are not drawn: nothing reads the bad setting


def test_the_server_refuses_to_start_on_a_bad_setting():
    with socket.socket() as sock:  # a free port, in case the check failed and the server started
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _clean_env(VAE_EXPLORER_WORKER_TIMEOUT_S="inf", VAE_EXPLORER_UPLOADS="/nonexistent-uploads")
    p = subprocess.run([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
                        "--server.address", "127.0.0.1", "--server.port", str(port)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    err = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), p.stderr
    _assert_sentence(err[0], "worker_timeout_s", "inf")
