"""The app's custom components (Streamlit components v2): the latent pad (`pad`), the latent slider
panel (`sliders`), the export of an MLP decoder for in-browser decoding (`browser_decoder`), and
their JS/CSS in `assets/`.

Nothing is imported here: importing a component module registers it with Streamlit, so each
caller imports the module it uses.
"""
