"""The server-wide queue of heavy work: t-SNE/UMAP maps, diagnose reports, blurriness images.

Why a queue and not a cached call in the page: a Streamlit script can only be stopped at its next
`st.*` call, so a long computation on the script's thread holds the session: a page switch (the
sidebar included) waited for a diagnose report or a map on the page being left, which looked like a
frozen app and timed out browser tests. Here the work runs on the queue's own threads; a page asks
for a job, draws its progress in a polling fragment (`widgets.job_result_ui`) and returns at once, so another
page opens immediately, and the job goes on: a report is still there, finished or progressing, when
its user comes back.

- Identical requests (same key: model and data ids, method, settings) share one job, across sessions.
- At most `workers()` jobs run at once: the machine's cores less one (one at least), so the
  sessions' scripts keep a core; the rest wait, and a waiting job knows its place in the queue.
- A finished job is kept (its result is the cache); the oldest finished ones are dropped past
  `KEEP` jobs. A failed job keeps its one-sentence error; a request more than RETRY_AFTER_S after
  the failure computes it again (a page polling its progress must not restart it on every run).

This module imports no torch: a job's function brings what it needs.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

KEEP = 64  # finished jobs kept (reports and maps are small: a few MB at most each)
RETRY_AFTER_S = 10.0  # a failed job is shown as failed to requests within this time, then computed again


def workers() -> int:
    """Jobs run at once: cores - 1, at least 1 (2 cores here: one job, one core for the scripts)."""
    return max(1, (os.cpu_count() or 2) - 1)


def job_threads(n_workers: int) -> int:
    """torch threads of one job thread: the cores left to jobs (all but one) shared among the workers,
    at least 1 (on 2 cores: one job with 1 thread, the other core for the sessions' scripts)."""
    return max(1, ((os.cpu_count() or 2) - 1) // max(1, n_workers))


def _job_thread_init(threads: int) -> None:
    """Each job thread's own torch thread count (OpenMP's is per thread: the scripts keep theirs). With
    the default (every core) a running report starved the page scripts of a 2-core machine."""
    import torch

    torch.set_num_threads(threads)


@dataclass
class Job:
    """One piece of heavy work; `progress` in [0, 1]; `result` or `error` once `done` is set."""

    key: tuple
    what: str  # for people: "the diagnose report", "the t-SNE map"
    progress: float = 0.0
    phase: str = "queued"
    result: Any = None
    error: str | None = None
    partial: Any = None  # a usable result so far, set by the work (an encoding's first chunks), or None
    done: threading.Event = field(default_factory=threading.Event)
    seq: int = 0  # submission order: the place in the queue
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None  # time.monotonic() when a worker took it
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.started is not None and not self.done.is_set()

    def report(self, what: str, fraction: float) -> None:
        """Progress from the work (a vae_core progress event's `what` and `fraction`)."""
        self.phase, self.progress = what, min(1.0, max(0.0, float(fraction)))


class Queue:
    """Keyed jobs on a fixed pool of threads; see the module docstring."""

    def __init__(self, n_workers: int | None = None, retry_after_s: float = RETRY_AFTER_S) -> None:
        self.n_workers = n_workers or workers()
        self.retry_after_s = retry_after_s
        self.pool = ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix="vae-job",
                                       initializer=_job_thread_init, initargs=(job_threads(self.n_workers),))
        self.jobs: OrderedDict[tuple, Job] = OrderedDict()
        self.lock = threading.Lock()
        self._seq = itertools.count(1)

    def submit(self, key: tuple, what: str, fn: Callable[[Job], Any]) -> Job:
        """The job for `key`: the running, waiting or finished one, or a new one queued with `fn`."""
        with self.lock:
            job = self.jobs.get(key)
            stale = job is not None and job.error is not None and job.done.is_set() and \
                time.monotonic() - (job.finished or 0.0) >= self.retry_after_s
            if job is None or stale:
                job = Job(key=key, what=what, seq=next(self._seq))
                self.jobs[key] = job
                self.pool.submit(self._run, job, fn)
                self._trim()
            else:
                self.jobs.move_to_end(key)
            return job

    def put_done(self, key: tuple, what: str, result: Any) -> Job:
        """A finished job holding `result` (found elsewhere, e.g. on disk), so later requests share it."""
        job = Job(key=key, what=what, progress=1.0, phase="done", result=result)
        job.done.set()
        with self.lock:
            self.jobs[key] = job
            self._trim()
        return job

    def peek(self, key: tuple) -> Job | None:
        """The job for `key` if one was submitted (no new work)."""
        with self.lock:
            return self.jobs.get(key)

    def forget(self, drop: Callable[[tuple], bool]) -> int:
        """Drop finished jobs whose key `drop` picks (their results are freed); running ones stay."""
        with self.lock:
            gone = [k for k, j in self.jobs.items() if j.done.is_set() and drop(k)]
            for k in gone:
                del self.jobs[k]
        return len(gone)

    def place(self, job: Job) -> int:
        """0 while running or done; else 1 + the number of jobs ahead of it that have not started."""
        if job.started is not None or job.done.is_set():
            return 0
        with self.lock:
            ahead = sum(1 for j in self.jobs.values() if j.started is None and j.seq < job.seq)
        return ahead + 1

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is waiting or running (tests); True if that happened in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                pending = [j for j in self.jobs.values() if not j.done.is_set()]
            if not pending:
                return True
            pending[0].done.wait(max(0.0, min(0.5, deadline - time.monotonic())))
        return False

    def _trim(self) -> None:
        done = [k for k, j in self.jobs.items() if j.done.is_set()]
        for k in done[: max(0, len(self.jobs) - KEEP)]:
            del self.jobs[k]

    @staticmethod
    def _run(job: Job, fn: Callable[[Job], Any]) -> None:
        job.started, job.phase = time.monotonic(), "starting"
        try:
            job.result = fn(job)
        except Exception as e:  # shown to the user as one sentence; the next request retries
            from vae_core.errors import sentence

            log.info("%s failed", job.what, exc_info=True)
            job.error = sentence(e)
        finally:
            job.progress, job.finished = 1.0, time.monotonic()
            job.done.set()
            _record(job)


def _record(job: Job) -> None:
    """One JSON line per finished job in the file VAE_EXPLORER_JOB_LOG names (for an admin or a load
    benchmark: how long jobs waited in the queue and ran); nothing when it is unset."""
    path = os.environ.get("VAE_EXPLORER_JOB_LOG")
    if not path:
        return
    import json

    line = json.dumps({"what": job.what, "waited_s": round(job.started - job.submitted, 3),
                       "ran_s": round(job.finished - job.started, 3), "error": job.error is not None})
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        log.warning("could not write the job log %s", path)


_queues: dict[str, Queue] = {}
_queues_lock = threading.Lock()
LANES = {"heavy": None, "encode": 1}  # lane -> workers (None: `workers()`)


def queue(lane: str = "heavy") -> Queue:
    """The server's queue for a lane (module globals: shared by every session of this process).

    "heavy": maps, diagnose reports, blur images, at most `workers()` at once. "encode": encoding a
    data set for the pages, one at a time, apart so a first page never waits behind a two-minute map.
    """
    with _queues_lock:
        if lane not in _queues:
            _queues[lane] = Queue(LANES[lane])
        return _queues[lane]


def forget(drop: Callable[[tuple], bool]) -> int:
    """`Queue.forget` on every lane: the number of finished jobs dropped."""
    with _queues_lock:
        lanes = list(_queues.values())
    return sum(q.forget(drop) for q in lanes)


def lane_of(job: Job) -> Queue:
    """The queue holding `job`."""
    with _queues_lock:
        lanes = list(_queues.values())
    return next((q for q in lanes if q.peek(job.key) is job), queue())


def status_text(job: Job, words: dict[str, str] | None = None) -> str:
    """What a waiting or running job is doing, in words: its place in the queue, or its phase and progress."""
    q = lane_of(job)
    place = q.place(job)
    if place:
        n = q.n_workers
        return (f"Waiting for {job.what}: place {place} in the server's queue (it runs {n} heavy "
                f"job{'s' if n > 1 else ''} at a time).")
    return f"Computing {job.what}: {(words or {}).get(job.phase, job.phase)} ({job.progress:.0%})."
