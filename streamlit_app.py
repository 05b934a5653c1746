"""Entry script: the navigation, and the Home page (what a VAE is, the active model and data, where to go).

Start-up (issue 11, item 5): `streamlit run` imports this file as a module, finds `app` (an
`st.App`) and serves it; its lifespan starts importing torch and encoding the default run in the
background the moment the server is up (`explorer/startup.py`). Each session then runs this file
as `__main__`: the navigation and the pages. The script itself imports only Streamlit at the top;
the Home page imports the rest after drawing its title and text.
"""
import logging
from pathlib import Path

import streamlit as st


def home() -> None:
    """What a VAE is, in plain words and a picture of the active model at work."""
    st.title("VAE Latent Explorer")
    st.markdown(
        "A **Variational Autoencoder** squeezes each image into a short code and learns to rebuild the "
        "image from it. The *encoder* does not give one code but a small cloud: a mean **mu** and a "
        "spread **sigma** per dimension, q(z|x). Training asks two things at once: rebuild the image "
        "well from a code drawn from that cloud, and keep the clouds close to a standard normal "
        "N(0, I), the *prior* (that closeness is the **KL** term). Because the codes stay near N(0, I), "
        "any point drawn from it decodes to something image-like: the model can *generate*.")
    import numpy as np  # after the first paint: the imports below bring torch (seconds on a cold start)

    from explorer import cache, figures, images, selection, sidebar
    from vae_core.maps import export

    m, d, mdl, data = sidebar.open_page("Home")
    enc = sidebar.encoded_ui(m, d, note=" The picture draws when every image has its code.")

    idx = int(np.argmin(enc.recon_err[: min(len(data), 200)]))  # a well reconstructed example
    c1, c2, c3, c4, c5 = st.columns([2, 1, 4, 1, 2])
    c1.image(images.upscale(images.to_uint8(data.x[idx:idx + 1])[0], 6), caption="image x")
    c2.markdown("### →\nencoder")
    c3.plotly_chart(figures.code_figure(enc.mu[idx], np.exp(0.5 * enc.logvar[idx])), key="home_code")
    c3.caption(f"its code: {enc.mu.shape[1]} numbers (bars: mu, whiskers: sigma)")
    c4.markdown("### →\ndecoder")
    c5.image(cache.decode(mdl, enc.mu[idx][None], scale=6)[0], caption="rebuilt image")

    st.subheader("Active model and data")
    cfg = getattr(mdl, "cfg", None)
    arch = f"{cfg.arch.upper()} {cfg.input_shape} -> {cfg.hidden} -> {cfg.latent_dim}" if cfg else "TorchScript model"
    st.markdown(f"- Model: **{selection.label(m.src)}** ({arch}, {mdl.likelihood} decoder)\n"
                f"- Data: **{data.name}**, {len(data):,} images of {'x'.join(map(str, data.shape))}\n"
                f"- Mean KL {enc.kl.mean():.1f} nats, mean reconstruction error {enc.recon_err.mean():.1f} nats "
                f"(-log p(x | z = mu), decoding the mean code{'; ' + enc.scale_words() if enc.scale_source else ''})")

    if Path(m.src).is_dir():
        st.download_button("Download this run (zip)", on_click="ignore", mime="application/zip",
                           file_name=f"{Path(m.src).name}.zip", data=lambda: export.run_zip(m.src),
                           help="config.json, model.safetensors and history.csv; upload it in the sidebar elsewhere")

    st.subheader("Where to go")
    for page, text in PAGES[1:]:
        st.page_link(page, label=f"{page.title}: {text}")


if __name__ == "__main__":  # a session's script run
    PAGES = [
        (st.Page(home, title="Home", icon=":material/home:", default=True), ""),
        (st.Page("app_pages/1_Explore.py", title="Explore", icon=":material/explore:"),
         "drag through the latent space and watch the decoder answer"),
        (st.Page("app_pages/2_Train.py", title="Train", icon=":material/model_training:"),
         "train a VAE in the background and watch KL per dimension (and collapse) live"),
        (st.Page("app_pages/3_Diagnose.py", title="Diagnose", icon=":material/troubleshoot:"),
         "KL per dimension, posterior collapse, likelihood bounds and the aggregate posterior, as pictures"),
        (st.Page("app_pages/4_Blurriness.py", title="Blurriness", icon=":material/blur_on:"),
         "how much fine detail reconstructions and prior samples keep, against the data"),
        (st.Page("app_pages/5_Compare.py", title="Compare", icon=":material/compare:"),
         "two or more runs side by side: a beta sweep's bounds, collapse, curves and samples"),
    ]
    # The favicon, set before the navigation: without it Streamlit makes the page's Material icon the
    # favicon, fetched from fonts.gstatic.com (nothing on an offline server may come from outside). An
    # emoji is drawn by the browser itself (a data: URL), and every page inherits it.
    st.set_page_config(page_title="VAE Latent Explorer", page_icon="🧭", layout="wide")
    try:
        st.navigation([p for p, _ in PAGES]).run()
    except Exception as e:  # the app's edge: one sentence, never a traceback; the session state is kept
        logging.getLogger("explorer").exception("page failed")
        from explorer.messages import for_user
        from vae_core.errors import sentence

        st.error(f"This page could not be drawn: {for_user(sentence(e))} Pick another model or data in the sidebar, "
                 "or reload the page.", icon=":material/error:")
else:  # imported by `streamlit run` to find the server: warm it while the first visitor connects
    import sys

    from explorer.startup import settings_error, warm

    if settings_error():  # a bad VAE_EXPLORER_* setting: one sentence, and no server (as the CLI exits)
        sys.exit(f"error: {settings_error()}")
    app = st.App(__file__, lifespan=warm)
