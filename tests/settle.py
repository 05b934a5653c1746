"""AppTest and the server's job queue (explorer/jobs.py): a page that waits on a job draws its progress
and stops; a real browser reruns it from the progress fragment when the job ends, AppTest does not run
fragments on a timer. `settle(at)` waits for the queue, then runs the page again, until no job waits.
tests/conftest.py applies it to every AppTest run, except inside `unsettled()`."""
from __future__ import annotations

import contextlib
import threading
import time

from explorer import jobs

_local = threading.local()


def active() -> bool:
    """Whether runs are left unsettled here (inside `unsettled()`)."""
    return getattr(_local, "off", 0) > 0


@contextlib.contextmanager
def unsettled():
    """AppTest runs inside return as soon as the script ends, jobs pending or not."""
    _local.off = getattr(_local, "off", 0) + 1
    try:
        yield
    finally:
        _local.off -= 1


def settle(at, timeout: float = 600.0, since: float | None = None):
    """`at` (an AppTest that has just run, started at time.monotonic() `since`), run again after each
    wait for the job queue to empty, and again whenever a job ended after the last run began (the run
    may have drawn it as still pending)."""
    deadline = time.monotonic() + timeout
    since = time.monotonic() if since is None else since
    for _ in range(20):  # a page queues its jobs one after another (Blurriness: report, then images)
        lanes = [jobs.queue(lane) for lane in jobs.LANES]
        every = [j for q in lanes for j in list(q.jobs.values())]
        pending = [q for q in lanes if any(not j.done.is_set() for j in list(q.jobs.values()))]
        ended_since = any(j.finished is not None and j.finished >= since for j in every)
        if not pending and not ended_since:
            return at
        for q in pending:
            assert q.wait_idle(max(0.0, deadline - time.monotonic())), "the job queue did not empty in time"
        if getattr(at, "_page_hash", ""):  # rerun the page the last run finished on (a st.switch_page may have
            at._page_hash = ""             # moved it), as the browser's progress fragment does
        since = time.monotonic()
        with unsettled():
            at.run()
    raise AssertionError("the page kept queueing jobs")
