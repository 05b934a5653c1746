"""AppTest and the server's job queue (explorer/jobs.py): a page that waits on a job draws its progress
and stops; a real browser reruns it from the progress fragment when the job ends, AppTest does not run
fragments on a timer. `settle(at)` waits for the queue, then runs the page again, until no job waits."""
from __future__ import annotations

import time

from explorer import jobs


def settle(at, timeout: float = 600.0):
    """`at` (an AppTest that has just run), run again after each wait for the job queue to empty."""
    deadline = time.monotonic() + timeout
    for _ in range(20):  # a page queues its jobs one after another (Blurriness: report, then images)
        q = jobs.queue()
        with q.lock:
            pending = any(not j.done.is_set() for j in q.jobs.values())
        if not pending:
            return at
        assert q.wait_idle(max(0.0, deadline - time.monotonic())), "the job queue did not empty in time"
        at.run()
    raise AssertionError("the page kept queueing jobs")
