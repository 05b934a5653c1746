"""The app's custom components (Streamlit components v2): the latent pad (`pad`), the latent slider
panel (`sliders`), the ONNX loader that makes an onnxruntime-web session of a decoder once per page
(`onnx_runtime`), a decoder in the forms the browser runs (`browser_decoder`: an MLP's weights, or an
ONNX graph), and their JS/CSS in `assets/`.

Nothing is imported here: importing a component module registers it with Streamlit, so each
caller imports the module it uses.
"""
