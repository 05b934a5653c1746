"""Entry script: the navigation (pages listed in explorer/navigation.py; Home is app_pages/0_Home.py).

Start-up (issue 11, item 5): `streamlit run` imports this file as a module, finds `app` (an
`st.App`) and serves it; its lifespan starts importing torch and encoding the default run in the
background the moment the server is up (`explorer/startup.py`). Each session then runs this file
as `__main__`: the navigation and the pages. The script imports only Streamlit and the page table;
the Home page draws its text, the sidebar and its picture (from disk) before torch is imported.
"""
import logging

import streamlit as st


if __name__ == "__main__":  # a session's script run
    from explorer.navigation import HOME, PAGES
    from explorer.startup import page_run

    # The favicon, set before the navigation: without it Streamlit makes the page's Material icon the
    # favicon, fetched from fonts.gstatic.com (nothing on an offline server may come from outside). An
    # emoji is drawn by the browser itself (a data: URL), and every page inherits it.
    st.set_page_config(page_title="VAE Latent Explorer", page_icon="🧭", layout="wide")
    from streamlit.runtime.scriptrunner import RerunException

    from explorer import state

    cut_short = False
    try:
        with page_run():  # the server's warm-up waits for it (explorer/startup.py)
            st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=p is HOME)
                           for p in PAGES]).run()
    except RerunException:  # a rerun cut this run short: what it drew may not have been sent
        cut_short = True
        raise
    except Exception as e:  # the app's edge: one sentence, never a traceback; the session state is kept
        logging.getLogger("explorer").exception("page failed")
        from explorer.messages import for_user
        from vae_core.errors import sentence

        st.error(f"This page could not be drawn: {for_user(sentence(e))} Pick another model or data in the sidebar, "
                 "or reload the page.", icon=":material/error:")
    finally:
        if not cut_short:  # ended, stopped (st.stop) or failed: the browser has all it drew (state._live)
            state.page_run_ended()
else:  # imported by `streamlit run` to find the server: warm it while the first visitor connects
    import sys

    from explorer import stale_reruns
    from explorer.startup import settings_error, warm

    stale_reruns.install()  # a page switch is never undone by a late rerun asked for on the page left
    if settings_error():  # a bad VAE_EXPLORER_* setting: one sentence, and no server (as the CLI exits)
        sys.exit(f"error: {settings_error()}")
    app = st.App(__file__, lifespan=warm)
