"""Shared test set-up: every AppTest run waits for the server's job queue (explorer/jobs.py).

A page that needs a queued job's result (an encoding, a report, a map) draws its progress and stops;
in a browser its progress fragment reruns the page when the job ends, but AppTest does not run
fragments on a timer. So `AppTest._run` is wrapped: after each run, while a job is pending, wait
for the queue and run the page again (`settle.settle`). A test that must see the page while a job
is pending (tests/test_jobs.py) runs inside `settle.unsettled()`.
"""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import app_test

import settle


@pytest.fixture(autouse=True, scope="session")
def _apptest_waits_for_jobs():
    original = app_test.AppTest._run

    def run(self, widget_state=None, timeout=None):
        out = original(self, widget_state, timeout)
        if settle.active():
            return out
        with settle.unsettled():  # the reruns below must not settle again inside
            return settle.settle(out)

    app_test.AppTest._run = run
    yield
    app_test.AppTest._run = original
