"""The server's job queue (explorer/jobs.py) and the pages that wait on it.

The fault it fixes: a diagnose report computed on the page's script thread held the session, so a
page switch (sidebar included) waited for it, and leaving Diagnose threw the report away. Here the
report is held at a gate the test controls, so nothing depends on how fast this machine is.
"""
from __future__ import annotations

import threading
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer import jobs, state
from settle import settle, unsettled
from vae_core import metrics
from vae_core.progress import Progress
from sidebar import model_picker  # tests/sidebar.py

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 300


def _gate():
    """A job function that waits at a gate; returns (fn, started, release)."""
    started, release = threading.Event(), threading.Event()

    def fn(job):
        job.report("working", 0.5)
        started.set()
        assert release.wait(60), "the test never opened the gate"
        return job.key

    return fn, started, release


def test_identical_requests_share_one_job_and_waiting_jobs_know_their_place():
    q = jobs.Queue(n_workers=1)
    fn, started, release = _gate()
    calls = []
    first = q.submit(("a",), "job a", fn)
    assert started.wait(30)
    second = q.submit(("b",), "job b", lambda job: calls.append("b") or "B")
    third = q.submit(("c",), "job c", lambda job: calls.append("c") or "C")
    again = q.submit(("a",), "job a", lambda job: calls.append("a again"))
    assert again is first, "an identical request gets the job already there"
    assert first.running and (q.place(first), q.place(second), q.place(third)) == (0, 1, 2)
    assert first.progress == 0.5 and first.phase == "working"
    release.set()
    assert q.wait_idle(30)
    assert (first.result, second.result, third.result) == (("a",), "B", "C")
    assert calls == ["b", "c"], "one worker runs the jobs in the order they came"


def test_a_failed_job_keeps_its_sentence_and_is_retried_after_a_while():
    q = jobs.Queue(n_workers=1, retry_after_s=3600)

    def boom(job):
        raise ValueError("the model could not encode 'x'\nsecond line")

    job = q.submit(("k",), "the report", boom)
    assert job.done.wait(30) and job.error == "the model could not encode 'x'" and job.result is None
    assert q.submit(("k",), "the report", lambda job: 42) is job, "a page polling a failed job must not restart it"
    q.retry_after_s = 0.0  # the failure is old now
    retry = q.submit(("k",), "the report", lambda job: 42)
    assert retry is not job and retry.done.wait(30) and retry.result == 42 and retry.error is None


def test_at_most_cores_minus_one_jobs_run_at_once(monkeypatch):
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 4)
    q = jobs.Queue()
    assert q.n_workers == 3
    fn, _, release = _gate()
    running, peak, lock = [0], [0], threading.Lock()

    def counted(job):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(60)
        with lock:
            running[0] -= 1

    for i in range(6):
        q.submit((i,), f"job {i}", counted)
    deadline = threading.Event()
    for _ in range(100):  # until three have started (each start is an event the queue records)
        with q.lock:
            if sum(j.started is not None for j in q.jobs.values()) == 3:
                break
        deadline.wait(0.05)
    assert [q.place(j) for j in q.jobs.values()] == [0, 0, 0, 1, 2, 3]
    release.set()
    assert q.wait_idle(30) and peak[0] == 3


def test_leaving_diagnose_mid_report_opens_the_next_page_at_once_and_the_report_goes_on(monkeypatch):
    """Old code: the first run blocked until the report ended (AppTest timed out at the gate);
    leaving the page threw the report away and coming back started it again."""
    real = metrics.diagnose
    started, release, calls = threading.Event(), threading.Event(), []

    def gated(*args, progress=None, **kwargs):
        calls.append(1)
        progress(Progress("iwae", 0.5, 1.0, 0.5))
        started.set()
        assert release.wait(120), "the test never opened the gate"
        return real(*args, progress=progress, **kwargs)

    monkeypatch.setattr(metrics, "diagnose", gated)
    monkeypatch.setattr(jobs, "_queues", {})  # a fresh server's queue: no other test's job ahead of this one
    with unsettled():  # each run returns while the report is held
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.session_state[state.DIAG_BUDGET] = 57.0  # a key no other test's report has
        at.switch_page("app_pages/3_Diagnose.py").run(timeout=60)  # returns while the report is held
        assert not at.exception, [e.value for e in at.exception]
        bars = [p.proto.text for p in at.get("progress")]
        assert bars and "the diagnose report" in bars[0], bars  # waiting for a worker, or computing
        assert not at.metric, "no figure is drawn before the report exists"
        assert started.wait(60)

        at.switch_page("app_pages/2_Train.py").run(timeout=60)  # the report is still at the gate
        assert not at.exception and not release.is_set()
        assert model_picker(at).value == str(ROOT / "runs" / "default")

        at.switch_page("app_pages/3_Diagnose.py").run(timeout=60)
        bars = [p.proto.text for p in at.get("progress")]
        assert bars and "Computing the diagnose report" in bars[0] and "(50%)" in bars[0], \
            f"the report restarted instead of going on: {bars}"
        assert len(calls) == 1, "coming back must find the same report, not start another"

    release.set()
    settle(at)
    assert not at.exception and not at.get("progress")
    assert any(m.label == "ELBO" for m in at.metric)
    assert len(calls) == 1


def test_a_job_uses_its_own_share_of_the_cores_and_the_scripts_keep_theirs(monkeypatch):
    import torch

    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 2)
    q = jobs.Queue(n_workers=1)
    before = torch.get_num_threads()
    job = q.submit(("threads",), "a job", lambda job: torch.get_num_threads())
    assert job.done.wait(30) and job.error is None
    assert job.result == 1, "on 2 cores a job runs torch on one thread, leaving a core to the pages"
    assert torch.get_num_threads() == before, "the calling (script) thread keeps its own count"
