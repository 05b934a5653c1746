"""The app's pages, in the sidebar's order: file, title, icon and what each is for.

`streamlit_app.py` builds the navigation from this table and Home links to the tool pages with it.
Imports Streamlit only.
"""
from __future__ import annotations

from typing import NamedTuple


class PageInfo(NamedTuple):
    path: str  # relative to the repository root, as st.Page and st.page_link take it
    title: str
    icon: str
    blurb: str  # what the page is for, on Home's "Where to go"


HOME = PageInfo("app_pages/0_Home.py", "Home", ":material/home:", "what a VAE is, and the active model at work")
PAGES = [
    HOME,
    PageInfo("app_pages/1_Explore.py", "Explore", ":material/explore:",
             "drag through the latent space and watch the decoder answer"),
    PageInfo("app_pages/2_Train.py", "Train", ":material/model_training:",
             "train a VAE in the background and watch KL per dimension (and collapse) live"),
    PageInfo("app_pages/3_Diagnose.py", "Diagnose", ":material/troubleshoot:",
             "KL per dimension, posterior collapse, likelihood bounds and the aggregate posterior, as pictures"),
    PageInfo("app_pages/4_Blurriness.py", "Blurriness", ":material/blur_on:",
             "how much fine detail reconstructions and prior samples keep, against the data"),
    PageInfo("app_pages/5_Compare.py", "Compare", ":material/compare:",
             "two or more runs side by side: a beta sweep's bounds, collapse, curves and samples"),
]
