"""A Streamlit session without a browser: Streamlit's own websocket protocol, spoken from Python.

Why: a benchmark of many sessions on one machine that renders each in Chromium measures Chromium.
On the project's 2-core machine one Explore session costs the server about 2 s of CPU and its
Chromium tab about 19 s (page loads, slider steps, Diagnose, a t-SNE map; measured per process
with /proc). Thirty tabs on the server's cores can never be served, whatever the server does, and
thirty students bring thirty machines. This client is what such a student's browser sends and
waits for, and nothing it draws:

- a page load is `rerun_script` with the page's name, as the browser's first message; served at
  the run's `script_finished`;
- a widget change is `rerun_script` with that widget's state (by the key it was given in the app,
  matched to the `$$ID-...-key` id the server sent), in its fragment when it lives in one;
- `auto_rerun` messages (an `st.fragment(run_every=...)`: job progress) are answered as the
  browser answers them, a fragment rerun each interval, until `stop_auto_rerun`, a full run that
  ends without drawing that fragment, or the next page;
- the query string the app sets (`page_info_changed`) goes back with each rerun, as the address
  bar's does.

It does not report what a component holds (its "cache" handshake), so the server sends each
component's payload on every full run: more work for the server than a browser causes, never less.
Widgets it never set keep their values on the server (Streamlit keeps a widget's last value when a
rerun does not carry it).
"""
from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

_ID = re.compile(rb"\$\$ID-[0-9a-f]{32}-([A-Za-z0-9_]+)")
_VERSIONED = re.compile(r"(.*[A-Za-z_])[0-9]+$")  # a versioned widget's key: its stem and a version
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


class RunFailed(RuntimeError):
    """A run ended with a compile error (a run that does not end in time is a False/None, not this)."""


class Session:
    """One session on `url` (http://host:port), driven by `await load(page)`, `await set(key, ...)`."""

    def __init__(self, url: str) -> None:
        self.ws_url = url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
        self.origin = url.rstrip("/")
        self.ws = None
        self.page = ""
        self.page_hash = ""
        self.query = ""
        self.ids: dict[str, str] = {}        # widget key -> its element id
        self.fragment: dict[str, str] = {}   # widget key -> the fragment it was drawn in ("" for none)
        self.latest: dict[str, str] = {}     # a versioned widget's stem -> its key drawn last (`versioned`)
        self.texts: list[bytes] = []         # raw deltas since the last request was sent
        self.answer: list[bytes] = []        # raw deltas of the run that answered the last request
        self._runs = 0                       # runs started (new_session messages)
        self.run_pages: list[str] = []       # the page each started run names, in order
        self._run_texts: list[bytes] = []    # deltas of the run whose messages arrive now
        # (the run's number, its fragments, its status, its deltas) for each run that ended
        self._finished: list[tuple[int, tuple[str, ...], int, list[bytes]]] = []
        self._done = asyncio.Event()
        self._reader: asyncio.Task | None = None
        self._auto: dict[str, asyncio.Task] = {}  # polling fragment -> its ticking task
        self._named: set[str] | None = None  # fragments the full run now going said poll

    async def __aenter__(self) -> "Session":
        import websockets

        self.ws = await websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None,
                                           origin=self.origin, open_timeout=120, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._stop_polling()
        if self._reader:
            self._reader.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "new_session":  # a run starts; its deltas follow, in order, until script_finished
                self._runs += 1
                self.run_pages.append(msg.new_session.page_script_hash)
                self._run_texts = []
                # a full run says again which fragments poll; those it did not name stop when it ends
                self._named = set() if not msg.metadata.run.fragment_ids else None
            elif kind == "navigation":  # an st.navigation app: the page this run drew
                self.page_hash = msg.navigation.page_script_hash or self.page_hash
            elif kind == "delta":
                body = msg.delta.SerializeToString()
                self.texts.append(body)
                self._run_texts.append(body)
                for m in _ID.finditer(body):
                    key = m.group(1).decode()
                    self.ids[key] = m.group(0).decode()
                    self.fragment[key] = msg.delta.fragment_id
                    stem = _VERSIONED.match(key)
                    if stem:
                        self.latest[stem.group(1)] = key
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "auto_rerun":
                fid = msg.auto_rerun.fragment_id
                if self._named is not None:
                    self._named.add(fid)
                if fid not in self._auto:
                    self._auto[fid] = asyncio.create_task(self._tick(fid, msg.auto_rerun.interval))
            elif kind == "stop_auto_rerun":
                self._stop(msg.stop_auto_rerun.fragment_ids or list(self._auto))
            elif kind == "script_finished":
                if self._named is not None and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                    self._stop(set(self._auto) - self._named)  # their fragments are no longer on the page
                self._named = None
                self._finished.append((self._runs, tuple(msg.metadata.run.fragment_ids), msg.script_finished,
                                       self._run_texts))
                self._done.set()

    def _stop(self, fragment_ids) -> None:
        """Stop the polling of these fragments (those not polling are ignored)."""
        for fid in list(fragment_ids):
            t = self._auto.pop(fid, None)
            if t:
                t.cancel()

    def _stop_polling(self) -> None:
        self._stop(list(self._auto))

    @property
    def polling(self) -> bool:
        """Whether a fragment of the page reruns itself (a job in progress)."""
        return bool(self._auto)

    async def _tick(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._send(fragment_id=fragment_id, auto=True)

    async def _send(self, *, widgets: list[WidgetState] = (), fragment_id: str = "", auto: bool = False,
                    page_name: str = "") -> None:
        m = BackMsg()
        rs = m.rerun_script
        rs.query_string = self.query
        rs.page_name = page_name or self.page
        if not page_name and self.page_hash:
            rs.page_script_hash = self.page_hash
        rs.fragment_id = fragment_id
        rs.is_auto_rerun = auto
        rs.context_info.timezone = "UTC"
        rs.context_info.locale = "en-US"
        rs.context_info.url = f"{self.origin}/{rs.page_name}"
        rs.widget_states.SetInParent()
        for w in widgets:
            rs.widget_states.widgets.append(w)
        await self.ws.send(m.SerializeToString())

    async def _run(self, timeout: float, until: bytes | None = None, **send: Any) -> bool:
        """Send one rerun; True once a run that answers it finished successfully (and, with `until`, a
        delta holding those bytes arrived since), False past `timeout` seconds. A run answers only if
        it started after the request was sent (one already running does not hold its widget values);
        a fragment request is answered by a run of that fragment or a full run (Streamlit folds a
        fragment's rerun into a pending full one), a full request only by a full run. Other runs (a
        polling fragment's ticks) end in between and answer nothing."""
        want = send.get("fragment_id", "")
        deadline = time.monotonic() + timeout
        self.texts, self.answer = [], []
        self._finished.clear()
        self._done.clear()
        sent_after = self._runs
        await self._send(**send)
        while True:
            for number, fragments, status, texts in self._finished:
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    raise RunFailed("the app's script did not compile")
                if number > sent_after and status in FINISHED and (not fragments or want in fragments):
                    self.answer = texts
                    if until is None or any(until in t for t in self.texts):
                        return True
            self._finished.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._done.wait(), left)
            except asyncio.TimeoutError:
                return False
            self._done.clear()

    async def load(self, page: str, query: str = "", timeout: float = 120) -> float | None:
        """Open `page` as a new address would; seconds to the run's end, None past `timeout`."""
        self._stop_polling()
        self.page, self.page_hash, self.query = page, "", query
        self.ids.clear()
        self.fragment.clear()
        self.latest.clear()
        t0 = time.perf_counter()
        ok = await self._run(timeout, page_name=page)
        return time.perf_counter() - t0 if ok else None

    async def wait_for(self, key: str, timeout: float, settled: bool = False) -> bool:
        """Wait until the page has drawn widget `key` (a job's fragment reruns the page when it ends),
        and with `settled` until no fragment polls a job any more."""
        deadline = time.monotonic() + timeout
        while key not in self.ids or (settled and self.polling):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    def versioned(self, stem: str) -> str | None:
        """The key the page drew last for the versioned widget `stem` (the app gives such a widget a new
        key, stem + version, when it sets its value: `explorer.state.renew`); None if never drawn."""
        return self.latest.get(stem)

    async def set(self, key: str, timeout: float, until: bytes | None = None, **value: Any) -> float | None:
        """Set widget `key` (one WidgetState field, e.g. json_value='...'); seconds until its run ends
        (and `until` was drawn), None past `timeout` or when the page has no such widget."""
        if key not in self.ids:
            return None
        w = WidgetState(id=self.ids[key])
        for field, v in value.items():
            target = getattr(w, field, None)
            if hasattr(target, "data"):
                target.data.extend(v)
            else:
                setattr(w, field, v)
        t0 = time.perf_counter()
        ok = await self._run(timeout, until, widgets=[w], fragment_id=self.fragment.get(key, ""))
        return time.perf_counter() - t0 if ok else None
