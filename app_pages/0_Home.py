"""Home: what a VAE is, the active model and data at work (explorer/home_ui.py), and where to go."""
import streamlit as st

st.title("VAE Latent Explorer")
st.markdown(
    "A **Variational Autoencoder** squeezes each image into a short code and learns to rebuild the "
    "image from it. The *encoder* does not give one code but a small cloud: a mean **mu** and a "
    "spread **sigma** per dimension, q(z|x). Training asks two things at once: rebuild the image "
    "well from a code drawn from that cloud, and keep the clouds close to a standard normal "
    "N(0, I), the *prior* (that closeness is the **KL** term). Because the codes stay near N(0, I), "
    "any point drawn from it decodes to something image-like: the model can *generate*.")

from explorer import home_ui, sidebar  # noqa: E402  (after the first paint; neither imports torch)

m, d, _, _ = sidebar.open_page("Home", need_model=False)
home_ui.picture_ui(m, d)
home_ui.where_to_go_ui()
