"""AppTest (headless) for the Home and Explore pages: they open, widgets change what is shown,
and the picker refuses a model/data mismatch while keeping the old pair."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from pathlib import Path

TIMEOUT = 120
ROOT = Path(__file__).resolve().parent.parent
EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")
HOME = str(ROOT / "streamlit_app.py")


def _images(at: AppTest, caption: str) -> list[str]:
    """URLs of the st.image elements whose caption contains `caption` (the URL hashes the content)."""
    return [url for el in at.get("image") for url, cap in zip(el.value, el.captions) if caption in cap]


@pytest.fixture(scope="module")
def explore() -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_home_opens_on_default_run_and_mnist():
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "Variational Autoencoder" in text
    assert "runs/default" in text and "mnist" in text
    assert at.selectbox(key="pick_data").value == "mnist"
    assert _images(at, "rebuilt image"), "Home shows the model rebuilding an image"


def test_explore_slider_changes_decoded_image(explore: AppTest):
    before = _images(explore, "decode(z)")
    assert len(before) == 1
    slider = explore.slider[0]
    assert slider.label.startswith("z")
    slider.set_value(2.5).run()
    assert not explore.exception
    after = _images(explore, "decode(z)")
    assert after != before, "moving a latent slider must change the decoded image"


def test_explore_sliders_sorted_by_kl_one_per_dim(explore: AppTest):
    from vae_core.checkpoints import load_run

    d = load_run(ROOT / "runs" / "default").model.latent_dim
    labels = [s.label for s in explore.slider if s.label.startswith("z") and s.key.startswith("z_")]
    assert len(labels) == d
    assert sorted(int(lbl[1:].split()[0]) for lbl in labels) == list(range(d))


def test_explore_selecting_a_point_shows_it(explore: AppTest):
    explore.number_input(key="point_pick").set_value(7).run()
    assert not explore.exception
    assert explore.session_state["selected_point"] == 7
    assert _images(explore, "original #7")
    assert _images(explore, "reconstruction")
    assert _images(explore, "reparameterisation")
    # the sliders now hold the point's code: z equals its encoded mean
    import numpy as np
    import torch

    from vae_core.checkpoints import load_run
    from vae_core.data import load_dataset

    model = load_run(ROOT / "runs" / "default").model
    with torch.inference_mode():
        mu, _ = model.encode(load_dataset("mnist").x[7:8])
    np.testing.assert_allclose(explore.session_state["z"], mu[0].numpy(), atol=1e-5)


def test_explore_reset_and_random_buttons(explore: AppTest):
    explore.button[[b.label for b in explore.button].index("Reset to 0")].click().run()
    assert all(v == 0.0 for v in explore.session_state["z"])
    explore.button[[b.label for b in explore.button].index("Random from the prior")].click().run()
    assert any(v != 0.0 for v in explore.session_state["z"])


def test_explore_interpolation_and_prior_tabs(explore: AppTest):
    explore.radio(key="interp_kind").set_value("spherical").run()
    assert not explore.exception
    caps = [c for el in explore.get("image") for c in el.captions]
    assert any("spherical path" in c for c in caps)
    before = _images(explore, "samples from the prior")
    explore.number_input(key="prior_seed").set_value(3).run()
    assert _images(explore, "samples from the prior") != before


def test_picker_refuses_mismatch_and_keeps_state():
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    at.number_input(key="point_pick").set_value(3).run()
    at.selectbox(key="pick_data").set_value("digits").run()  # 8x8 digits cannot feed a 28x28 model
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "1x28x28" in errors and "1x8x8" in errors, errors
    assert at.session_state["data_src"] == "mnist"
    assert at.selectbox(key="pick_data").value == "mnist"
    assert at.session_state["selected_point"] == 3, "the rest of the state is kept"
