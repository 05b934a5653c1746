"""Two pages drawing the same polling fragment at the same place (as Home and Explore both draw the
encoding's progress bar), with the guard against late fragment reruns that streamlit_app.py installs.
VAE_TEST_GUARD=0 in the server's environment leaves the guard out, to see the fault it prevents."""
from __future__ import annotations

import os

import streamlit as st

from explorer import stale_reruns

if os.environ.get("VAE_TEST_GUARD", "1") != "0":
    stale_reruns.install()


@st.fragment(run_every=1.0)
def progress() -> None:
    st.caption("polling")


def page(name: str):
    def draw() -> None:
        st.title(f"Page {name}")
        for i in range(4):
            st.write(f"{name} line {i}")
        progress()  # the sixth element of the page on both pages: one fragment id
        st.write(f"{name} done")
    return draw


st.navigation([st.Page(page("A"), title="A", url_path="A", default=True),
               st.Page(page("B"), title="B", url_path="B")]).run()
