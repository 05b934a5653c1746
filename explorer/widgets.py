"""Small widgets shared by several pages: image download buttons, and the error edge of a fragment."""
from __future__ import annotations

import functools
import logging

import streamlit as st

from vae_core.errors import sentence


def guarded(fn):
    """The app's edge for a fragment (a fragment rerun does not pass through the page's guard):
    an exception becomes one sentence in place of the fragment, the session state kept."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            logging.getLogger("explorer").exception("fragment failed")
            from .messages import for_user  # here: messages imports cache, which the panels import too
            st.error(f"This panel could not be drawn: {for_user(sentence(e))}", icon=":material/error:")
    return wrapper


def image_downloads_ui(name: str, *, png=None, gif=None) -> None:
    """PNG and/or GIF download buttons; the bytes are made only when clicked (callables)."""
    cols = st.columns(6)
    if png is not None:
        cols[0].download_button("Download PNG", png, f"{name}.png", "image/png", on_click="ignore",
                                key=f"dl_{name}_png")
    if gif is not None:
        cols[1].download_button("Download GIF", gif, f"{name}.gif", "image/gif", on_click="ignore",
                                key=f"dl_{name}_gif")


def job_result_ui(job, *, note: str = "", words: dict[str, str] | None = None, partial: bool = False):
    """A queued job's result (explorer/jobs.py). While it waits or runs: a progress bar that follows it
    (a fragment polling once a second, rerunning the page when the job ends) and the page stops here,
    so the script ends at once and a page switch never waits for the work. With `partial`, a job that
    already has a usable result so far (`job.partial`: an encoding's first chunks) returns that under
    its progress bar instead of stopping; a page that had none yet is drawn again as soon as one comes,
    and, whole, when the job ends. A failed job: its sentence as an error, and the page stops. `words`
    names the job's phases for people."""
    if not job.done.is_set():
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        if get_script_run_ctx() is None:  # bare mode (a script run outside Streamlit): nothing polls, wait
            job.done.wait()
        else:
            so_far = job.partial if partial else None
            # without a result so far yet, the page is drawn again as soon as the first one comes
            _job_progress(job, note, words or {}, await_partial=partial and so_far is None)
            if so_far is not None:
                return so_far
            st.stop()
    if job.error is not None:
        from .messages import for_user  # here: messages imports cache, which the panels import too

        st.error(f"{job.what[0].upper()}{job.what[1:]} failed: {for_user(job.error)} Try another model or data in "
                 "the sidebar, or reload the page to try again.", icon=":material/error:")
        st.stop()
    return job.result


@st.fragment(run_every=1.0)
def _job_progress(job, note: str, words: dict[str, str], await_partial: bool = False) -> None:
    from . import jobs

    if job.done.is_set() or (await_partial and job.partial is not None):
        st.rerun()  # the whole page, now with the result (or the first part of it)
    st.progress(job.progress, text=jobs.status_text(job, words) + note)


@st.fragment(run_every=1.0)
def rerun_when_done(job) -> None:
    """Draws nothing; reruns the whole page once `job` is done (a result the page uses when it has it)."""
    if job.done.is_set():
        st.rerun()
