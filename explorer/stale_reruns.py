"""A page switch is never undone by a fragment rerun the browser asked for on the page it left.

The fault (a blank page after a page switch, once in about fifteen runs of the test command): a
polling fragment (`st.fragment(run_every=...)`: a job's progress bar) makes the browser ask for a rerun
of that fragment every second, naming the page it was on. The browser stops those timers when the
user switches page, but a timer it set up just after the click (from the leaving page's last
messages) can still fire before the new page's first message arrives. That request reaches the
server after the new page's run has started, and Streamlit (1.67) runs the fragment as a run of the
old page. The browser takes a run of another page as a page change and empties the page it shows.
The fragment then sends its elements into the emptied page; when the new page has a fragment with the
same id (the same function at the same place, such as the progress bar both Home and Explore draw while
the data is encoded), the browser throws "Bad delta path index 5 (should be between [0, 0])" and
drops the connection. Reproduced by sending that late request by hand (tests/test_st_client.py,
tests/browser/test_page_switch_browser.py).

The fix is in the server: a fragment rerun that names a page other than the one this session's
latest run drew is dropped (and logged). A full run is never dropped. The browser asks again, naming the
new page, once it shows it.
"""
from __future__ import annotations

import logging

log = logging.getLogger("explorer")


def install() -> None:
    """Guard every session of this server process (idempotent; imported by `streamlit run`)."""
    from streamlit.runtime.app_session import AppSession

    if getattr(AppSession.request_rerun, "_drops_stale_fragments", False):
        return
    original = AppSession.request_rerun

    def request_rerun(self, client_state) -> None:
        if client_state is not None and is_stale(client_state.fragment_id, client_state.page_script_hash,
                                                 self._pages_manager.current_page_script_hash):
            log.info("dropped a rerun of fragment %s asked for on a page this session has left",
                     client_state.fragment_id)
            return
        original(self, client_state)

    request_rerun._drops_stale_fragments = True
    AppSession.request_rerun = request_rerun


def is_stale(fragment_id: str, page: str, current_page: str) -> bool:
    """Whether a rerun request is a fragment's, named for a page other than the session's current one
    (empty names: a first request, or no run yet, are never stale)."""
    return bool(fragment_id) and bool(page) and bool(current_page) and page != current_page
