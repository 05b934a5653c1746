"""Which sessions use which shared model workers, so a worker no session uses is stopped.

A user's model runs in a worker process (239 MB for the shipped run by `python -m
benchmarks.worker_lifecycle`; about 480 MB for a 64x64 conv model) behind a proxy that the model
cache shares between sessions. Each session holds the model it has active; when its last holder picks
another model or leaves, the proxy's `close()` stops the worker, and a later call starts a fresh one
(the proxy restarts its worker lazily). Plain Python, no Streamlit: `cache.py` feeds it session ids.
"""
from __future__ import annotations

import threading
import weakref
from typing import Callable, Hashable


class Leases:
    """Session id -> the model key it holds; key -> the closable models made for it (held weakly)."""

    def __init__(self, run: Callable[[Callable[[], None]], None] | None = None) -> None:
        # how closing runs: in a thread of its own by default (close() waits for a call in flight, up
        # to the worker's time limit, and the session letting go must not); tests pass a direct call
        self._run = run or _in_thread
        self._lock = threading.Lock()
        self._held: dict[str, Hashable] = {}
        self._models: dict[Hashable, weakref.WeakSet] = {}

    def add(self, key: Hashable, model) -> None:
        """Register a model with a `close()` made for key (any session may hold it later)."""
        with self._lock:
            self._models.setdefault(key, weakref.WeakSet()).add(model)

    def hold(self, session: str, key: Hashable | None) -> None:
        """Session now uses key (None: nothing); models that lost their last holder are closed."""
        with self._lock:
            if self._held.get(session) == key:
                return  # every rerun holds again: nothing changed
            if key is None:
                self._held.pop(session, None)
            else:
                self._held[session] = key
            unused = self._unused()
        if unused:
            self._run(lambda: _close(unused))

    def end(self, session: str) -> None:
        """The session is gone: what only it held is closed."""
        self.hold(session, None)

    def holders(self, key: Hashable) -> int:
        """How many sessions hold key now."""
        with self._lock:
            return sum(1 for k in self._held.values() if k == key)

    def _unused(self) -> list:
        # every registered model whose key no session holds: the one just let go, and models made
        # while a pick was tried and never held (a model that did not fit the data)
        held = set(self._held.values())
        self._models = {k: ms for k, ms in self._models.items() if len(ms)}  # forget keys of collected models
        return [m for k, ms in self._models.items() if k not in held for m in list(ms)]


def _close(models: list) -> None:
    for m in models:
        m.close()


def _in_thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="close-workers", daemon=True).start()
