"""A page switch is never undone by a rerun the browser asked for on the page it left.

Two faults, one cause: the browser names, in every rerun it asks for, the page it shows, and it learns
of a new page only when that page's run starts and its first message arrives. A request it sent in
between names the page left, and Streamlit (1.67) runs it as a run of that page.

1. A fragment's rerun (a blank page after a switch, once in about fifteen runs of the test command). A
   polling fragment (`st.fragment(run_every=...)`: a job's progress bar) makes the browser ask for a
   rerun of that fragment every second. A timer set up just after the click can fire before the new
   page arrives. The browser takes a run of another page as a page change and empties the page it
   shows; the fragment then sends its elements into the emptied page, and when the new page has a
   fragment with the same id (the progress bar Home and Explore both draw while the data is encoded)
   the browser throws "Bad delta path index 5 (should be between [0, 0])" and drops the connection
   (tests/test_st_client.py, tests/browser/test_page_switch_browser.py).
2. A full rerun (a click on another page that did nothing: the sidebar's page link took focus and the
   app stayed where it was, one browser test in about 50 runs). A widget or component of the page left
   reports a value just after the click (the map says what it holds once drawn, a toggle clicked at that
   moment). With fast reruns the request stops the new page's run before or just after it starts, and
   the old page runs again (tests/test_page_switches.py, tests/test_st_client.py).

3. A rerun the page left asks for itself (a click on another page did nothing, the same symptom). A job's
   polling fragment calls `st.rerun()` once its job is done. When the click arrives while that run is
   going, Streamlit folds the two requests into one and keeps the newer one's page: the page left.

The fix is in the server. A fragment rerun that names a page other than the one this session's latest
run drew is dropped. So is a full rerun that names the page a switch left, from the moment the switch
was asked for (or `st.switch_page` started it) until the new page's run has been going `GRACE_S`
seconds: long enough for a request the browser sent before it saw the new page to arrive. A rerun a
script asks for its own page (`st.rerun()`) while a run of another page is waiting is dropped: the run
waiting is a full one, and the old page's script stops at once for it. A request
from the browser's history (back, forward) is never dropped. The one cost: a click back to the page
left within that moment is dropped too, and the user clicks again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger("explorer")

GRACE_S = 1.0  # after the new page's run started: requests the browser sent before it saw that page
PENDING_S = 10.0  # a switch asked for whose run has not started yet (the old page's run still stopping)


@dataclass
class Switch:
    origin: str  # the page left
    target: str  # the page switched to
    asked: float | None  # when the browser asked for it (None: started by the server, st.switch_page)
    started: float | None = None  # when the target's run started


class PageSwitches:
    """One session's page switches as the server sees them: the requests (`asked`) and the full runs
    that start (`started`). `current` is the page the session's latest run drew (st.navigation's page:
    a run asked for by address starts as the entry script and finds its page there). Times are
    `time.monotonic()` seconds, passed in so tests can set them."""

    def __init__(self) -> None:
        self.switch: Switch | None = None

    def _open(self, now: float) -> bool:
        sw = self.switch
        if sw is None:
            return False
        if sw.started is None:
            return sw.asked is not None and now - sw.asked < PENDING_S
        return now - sw.started < GRACE_S

    def asked(self, page: str, current: str, *, history: bool = False, now: float) -> bool:
        """A full rerun the browser asked for, naming `page`: whether to run it."""
        if not page:  # a first request, by address: never stale
            return True
        if not history and self.switch is not None and page == self.switch.origin and self._open(now):
            return False
        pending = self.switch is not None and self.switch.target == page and self._open(now)
        if page != current and not pending:
            self.switch = Switch(origin=current, target=page, asked=now)
        return True

    def started(self, page: str, current: str, *, now: float, entry: str = "") -> None:
        """A full run asked for as `page` started (a fragment's run is not one). A run asked for by its
        address starts as the `entry` script, which finds its page later: no page to record yet."""
        if page == entry:
            return
        if self.switch is not None and self.switch.target == page and self.switch.started is None:
            self.switch.started = now
        elif page != current:  # the server switched (st.switch_page)
            self.switch = Switch(origin=current, target=page, asked=None, started=now)


def install() -> None:
    """Guard every session of this server process (idempotent; imported by `streamlit run`)."""
    from streamlit.runtime.app_session import AppSession

    if getattr(AppSession.request_rerun, "_drops_stale_reruns", False):
        return
    request_rerun, on_event = AppSession.request_rerun, AppSession._handle_scriptrunner_event_on_event_loop

    def switches(session) -> PageSwitches:
        if not hasattr(session, "_explorer_switches"):
            session._explorer_switches = PageSwitches()
        return session._explorer_switches

    def guarded_request_rerun(self, client_state) -> None:
        if client_state is not None:
            page, fragment = client_state.page_script_hash, client_state.fragment_id
            current = self._pages_manager.current_page_script_hash
            if is_stale(fragment, page, current):
                log.info("dropped a rerun of fragment %s asked for on a page this session has left", fragment)
                return
            if not fragment and not switches(self).asked(page, current, history=client_state.is_history_navigation,
                                                          now=time.monotonic()):
                log.info("dropped a rerun asked for on the page this session is leaving")
                return
        request_rerun(self, client_state)

    def guarded_on_event(self, sender, event, *args, **kwargs) -> None:
        from streamlit.runtime.scriptrunner import ScriptRunnerEvent

        if (event == ScriptRunnerEvent.SCRIPT_STARTED and sender is self._scriptrunner
                and not _fragments(args, kwargs)):
            page = _page(args, kwargs)
            if page:
                pm = self._pages_manager
                switches(self).started(page, pm.current_page_script_hash, now=time.monotonic(),
                                       entry=pm.main_script_hash)
        on_event(self, sender, event, *args, **kwargs)

    guarded_request_rerun._drops_stale_reruns = True
    AppSession.request_rerun = guarded_request_rerun
    AppSession._handle_scriptrunner_event_on_event_loop = guarded_on_event
    _guard_script_reruns()


def _guard_script_reruns() -> None:
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequests

    if not getattr(ScriptRequests._request_rerun_locked, "_drops_stale_reruns", False):
        ScriptRequests._request_rerun_locked = keeping_switches(ScriptRequests._request_rerun_locked)


def keeping_switches(fold):
    """`ScriptRequests._request_rerun_locked` (`fold`: Streamlit folds a rerun request into the one waiting
    and keeps the newer one's page), except that a script's own `st.rerun()` does not take the page back
    from a switch the browser asked for while it ran."""
    from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    def guarded_fold(self, new_data) -> bool:
        ctx = get_script_run_ctx(suppress_warning=True)
        waiting = self._rerun_data if self._state == ScriptRequestType.RERUN else None
        if ctx is not None and waiting is not None and script_rerun_is_stale(
                ctx.page_script_hash, new_data.page_script_hash, waiting.page_script_hash, waiting.page_name,
                full=not waiting.fragment_id and not waiting.fragment_id_queue):
            log.info("dropped a rerun the page left asked for while a switch to another page waited")
            return True
        return fold(self, new_data)

    guarded_fold._drops_stale_reruns = True
    return guarded_fold


def script_rerun_is_stale(script_page: str, asked_page: str, waiting_page: str, waiting_name: str, *,
                          full: bool) -> bool:
    """Whether a script running as `script_page` that asks for a rerun of `asked_page` asks too late: a
    full rerun of another page (by its hash, or by its name: an address) is already waiting. A script
    that asks for another page (`st.switch_page`) is never stale."""
    return (full and bool(script_page) and asked_page == script_page
            and (waiting_page or waiting_name) != "" and waiting_page != script_page)


# _handle_scriptrunner_event_on_event_loop(sender, event, forward_msg, exception, client_state,
# page_script_hash, fragment_ids_this_run, ...): AppSession passes them by position
def _page(args, kwargs) -> str | None:
    return kwargs.get("page_script_hash", args[3] if len(args) > 3 else None)


def _fragments(args, kwargs):
    return kwargs.get("fragment_ids_this_run", args[4] if len(args) > 4 else None)


def is_stale(fragment_id: str, page: str, current_page: str) -> bool:
    """Whether a rerun request is a fragment's, named for a page other than the session's current one
    (empty names: a first request, or no run yet, are never stale)."""
    return bool(fragment_id) and bool(page) and bool(current_page) and page != current_page
