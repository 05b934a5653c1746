"""An uploaded model's worker is stopped when no session uses it (issue: a worker of about 480 MB
outlived its session): the reference counting alone (explorer.model_leases), a real worker behind
it, and the app's sessions through AppTest (switching models, a session ending)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.model_leases import Leases
from sidebar import data_picker, model_picker  # tests/sidebar.py

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning",
                                        "ignore:`torch.jit.save` is deprecated:DeprecationWarning",
                                        "ignore:`torch.jit.load` is deprecated:DeprecationWarning")


def _wait_for(cond, within: float = 60.0) -> bool:
    """Poll cond until it holds or the deadline passes (returns as soon as it holds)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _gone(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


class _Fake:
    """A stand-in for a model proxy: counts close() calls; close can be made to wait."""

    def __init__(self, name: str, gate: threading.Event | None = None):
        self.name, self.closed, self.gate = name, 0, gate

    def close(self) -> None:
        if self.gate is not None:
            self.gate.wait(60)
        self.closed += 1


def _direct(fn) -> None:  # close at once, in the caller's thread: counts are exact when hold() returns
    fn()


def test_a_model_is_closed_when_its_last_session_lets_go():
    """close() is idempotent on a proxy: every change closes the models no session holds."""
    leases, a, b = Leases(_direct), _Fake("a"), _Fake("b")
    leases.add("A", a)
    leases.hold("s1", "A")
    leases.hold("s2", "A")
    leases.hold("s1", "A")  # a rerun: nothing changes
    assert leases.holders("A") == 2
    leases.add("B", b)  # s1 picks B: the model cache makes it, then the session holds it
    leases.hold("s1", "B")  # s2 still uses A
    assert leases.holders("A") == 1 and leases.holders("B") == 1
    assert (a.closed, b.closed) == (0, 0)
    leases.end("s2")  # the last holder of A leaves
    assert a.closed >= 1 and b.closed == 0
    leases.end("s1")
    assert b.closed >= 1 and leases.holders("A") == leases.holders("B") == 0
    leases.hold("s3", "A")  # used again later (its proxy restarts the worker by itself)
    closed = a.closed
    leases.hold("s4", "B")
    assert a.closed == closed, "s3 holds A"
    leases.end("s3")
    assert a.closed > closed


def test_a_model_tried_and_never_held_is_closed_at_the_next_change():
    leases, tried, kept = Leases(_direct), _Fake("tried"), _Fake("kept")
    leases.add("T", tried)  # a pick that did not fit the data: loaded, never held
    leases.add("K", kept)
    leases.hold("s1", "K")
    assert tried.closed == 1 and kept.closed == 0


def test_letting_go_never_waits_for_a_call_in_flight():
    """close() waits while the model answers a call; the session that lets go must not."""
    gate = threading.Event()
    leases, busy = Leases(), _Fake("busy", gate)
    leases.add("A", busy)
    leases.hold("s1", "A")
    t = threading.Thread(target=leases.end, args=("s1",))
    t.start()
    t.join(30)
    assert not t.is_alive() and busy.closed == 0
    gate.set()
    assert _wait_for(lambda: busy.closed == 1)


def test_a_real_worker_is_stopped_and_restarts_on_use(tmp_path, monkeypatch):
    from vae_core import VAE, ModelConfig
    from vae_core.runs.model_files import export_torchscript, load_torchscript

    monkeypatch.setenv("VAE_EXPLORER_WORKER_MEMORY_MB", "1024")
    torch.manual_seed(0)
    path = export_torchscript(VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))).eval(),
                              tmp_path / "m.ts")
    m = load_torchscript(path, (1, 8, 8))
    try:
        leases = Leases()
        leases.add("M", m)
        leases.hold("s1", "M")
        pid = m._worker.proc.pid
        leases.end("s1")
        assert _wait_for(lambda: _gone(pid) and m._worker is None)
        with torch.inference_mode():
            assert m.decode(torch.zeros(1, 2)).shape == (1, 1, 8, 8)  # a fresh worker
        assert m._worker.proc.pid != pid
    finally:
        m.close()


def _worker_pid(model) -> int | None:
    w = model._worker
    return w.proc.pid if w is not None and w.alive() else None


def test_app_session_releases_an_uploaded_models_worker(tmp_path):
    """The app's wiring (AppTest gives every session one id, so several sessions are the unit tests'
    business): an uploaded model's worker stops when the session switches away, restarts when it
    comes back, and stops when the session ends."""
    from streamlit.runtime.caching import clear_session_resource_cache

    from explorer import cache
    from sidebar import open_app, upload
    from vae_core.runs.model_files import export_torchscript
    from vae_core.runs.run_load import load_run

    ts = export_torchscript(load_run(ROOT / "runs" / "default").model, tmp_path / "mine.ts").read_bytes()
    at = upload(open_app(), "upload_model", "mine.ts", ts)
    assert not at.exception and at.session_state["model_src"].endswith(".ts")
    src = at.session_state["model_src"]
    model = cache.model(cache.source(src), (1, 28, 28))  # the shared cache's object (the data is mnist)
    assert at.session_state["data_src"] == "mnist"
    pid = _worker_pid(model)
    assert pid is not None

    model_picker(at).set_value(str(ROOT / "runs" / "default")).run()
    assert not at.exception and not at.session_state["model_src"].endswith(".ts")
    assert _wait_for(lambda: _gone(pid)), "no session uses it: its worker is stopped"

    model_picker(at).set_value(src).run()  # back: the worker restarts on use
    assert not at.exception and at.session_state["model_src"] == src
    pid = _worker_pid(model)
    assert pid is not None
    # Streamlit clears a session's session-scoped caches when it disconnects: this is that call
    (session,) = [s for s, k in cache._leases()._held.items() if k.src == src]
    clear_session_resource_cache(session)
    assert _wait_for(lambda: _gone(pid)), "the session ended: its worker is stopped"


def test_app_session_frees_an_uploaded_data_sets_memory():
    """An uploaded data set leaves the server's memory (its cached arrays, the jobs computed on it) when
    no session holds it: when the session picks other data, and when the session ends."""
    import gc
    import weakref

    from streamlit.runtime.caching import clear_session_resource_cache

    from explorer import cache, jobs
    from sidebar import npy_bytes, open_app, upload

    rng = np.random.default_rng(0)
    at = upload(open_app(), "upload_data", "mine.npy", npy_bytes((rng.random((30, 28, 28)) * 255).astype(np.uint8)))
    assert not at.exception, [e.value for e in at.exception]
    src = at.session_state["data_src"]
    assert src.endswith("mine.npy"), src
    d = cache.source(src)
    assert cache.is_upload(d) and not cache.is_upload(cache.source("mnist"))

    def held() -> tuple[weakref.ref, int]:
        ds = cache.dataset(d)  # the shared cache's object (a hit: the page loaded it)
        m = cache.source(at.session_state["model_src"])
        jobs.queue("encode").put_done(("encode", m, d), "the encoding of the data", ds)  # a job computed on it
        return weakref.ref(ds), sum(d in k for q in jobs._queues.values() for k in q.jobs)

    ref, n_jobs = held()
    assert n_jobs >= 1
    data_picker(at).set_value("mnist").run()
    assert not at.exception and at.session_state["data_src"] == "mnist"
    gc.collect()
    assert ref() is None, "no session holds the upload: its arrays are freed"
    assert not any(d in k for q in jobs._queues.values() for k in q.jobs), "and the jobs computed on it"

    data_picker(at).set_value(src).run()  # back: loaded again from its file
    assert not at.exception and at.session_state["data_src"] == src
    ref, n_jobs = held()
    assert ref() is not None and n_jobs >= 1
    (session,) = [s for s, k in cache._data_leases()._held.items() if k == d]
    clear_session_resource_cache(session)  # what Streamlit does when the session disconnects
    gc.collect()
    assert ref() is None, "the session ended: the upload's arrays are freed"
    assert not any(d in k for q in jobs._queues.values() for k in q.jobs)


def test_an_uploaded_models_check_and_its_pairing_share_one_worker(tmp_path, monkeypatch):
    """Old code: the upload's check loaded the file in a worker and dropped it, then the pairing started one
    worker per data shape it tried (a 64x64 TorchScript upload tried 28x28 and 8x8 first: three more
    workers, 1.3 s each). Now the check's model is taken over: a shape that does not fit is refused on its
    worker, which stays usable, and the shape that fits uses it too; no other worker starts."""
    from vae_core import VAE, ModelConfig
    from vae_core.runs.model_files import export_torchscript
    from vae_core.sandbox import proxy
    from explorer import cache

    monkeypatch.setenv("VAE_EXPLORER_WORKER_MEMORY_MB", "1024")
    torch.manual_seed(0)
    vae = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=2, hidden=(16,))).eval()
    src = cache.source(str(export_torchscript(vae, tmp_path / "m.ts")))
    starts = []
    real = proxy.RemoteModel._new_worker
    monkeypatch.setattr(proxy.RemoteModel, "_new_worker", lambda self, **kw: starts.append(1) or real(self, **kw))
    cache.model.clear()
    cache.check_model_file(src)
    assert len(starts) == 1
    with pytest.raises(Exception):
        cache.model(src, (1, 28, 28))  # a linear encoder of 8x8 images: 784 inputs do not fit
    m = cache.model(src, (1, 8, 8))
    try:
        assert len(starts) == 1, "the check's worker served the refused shape and the pairing"
        assert m.input_shape == (1, 8, 8) and m.latent_dim == 2
        x = torch.rand(3, 1, 8, 8)
        with torch.inference_mode():
            want = vae.encode(x)[0]  # the same weights, in this process: the reference
            np.testing.assert_allclose(m.encode(x)[0].numpy(), want.numpy(), atol=1e-6)
        assert cache.model(src, (1, 8, 8)) is m  # cached as before
    finally:
        m.close()
        cache.model.clear()
