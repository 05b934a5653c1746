"""AppTest for the Explore page's code tools: the neighbours panel and attribute vectors, checked
against numpy recomputations from the shipped run's own encoder (not the app's caches)."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core.runs.run_load import load_run
from vae_core.data import load_dataset
from paths import ROOT  # the repository root (tests/paths.py)
from sidebar import point_box, selectbox

EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")


@pytest.fixture(scope="module")
def reference():
    """mu of every mnist point under runs/default, and the labels: computed here with torch."""
    model = load_run(ROOT / "runs" / "default").model.eval()
    data = load_dataset("mnist")
    with torch.inference_mode():
        mu = torch.cat([model.encode(data.x[i:i + 1000])[0] for i in range(0, len(data), 1000)])
    return mu.double().numpy(), data.y


@pytest.fixture
def explore() -> AppTest:
    at = AppTest.from_file(EXPLORE, default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _captions(at: AppTest, prefix: str = "#") -> list[str]:
    return [cap for el in at.get("image") for cap in el.captions if cap.startswith(prefix)]


def test_neighbours_are_the_nearest_codes_and_select(explore: AppTest, reference):
    mu, y = reference
    point_box(explore).set_value(7).run()
    explore.number_input(key="neighbours_k").set_value(5).run()
    assert not explore.exception, [e.value for e in explore.exception]
    dist = np.linalg.norm(mu - mu[7], axis=1)
    dist[7] = np.inf
    want = np.argsort(dist, kind="stable")[:5]
    caps = _captions(explore)
    got = [int(c.split(",")[0][1:]) for c in caps]
    assert got == want.tolist()
    for c, i in zip(caps, want):  # the distance shown is the Euclidean distance between means
        assert f"d = {dist[i]:.2f}" in c and f"label {y[i]}" in c
    same = int((y[want] == y[7]).sum())
    assert any(f"**{same} of 5** share its label" in m.value for m in explore.markdown)
    explore.button(key="nb_select_2").click().run()
    assert explore.session_state["selected_point"] == int(want[2]), "a click on a neighbour selects it"


def test_attribute_vector_moves_the_selected_code(explore: AppTest, reference):
    mu, y = reference
    point_box(explore).set_value(3).run()
    selectbox(explore, "From group A").set_value("label 1").run()
    selectbox(explore, "To group B").set_value("label 7").run()
    # the strength panel (a components-v2 slider) reports its value as the latent sliders do
    explore.session_state["attr_strength_slider"] = {"z": {"values": [0.5], "version": 0, "seq": 1, "final": True}}
    explore.run()
    explore.button(key="vec_to_sliders").click().run()
    assert not explore.exception, [e.value for e in explore.exception]
    want = mu[3] + 0.5 * (mu[y == 7].mean(0) - mu[y == 1].mean(0))
    np.testing.assert_allclose(explore.session_state["z"], want, rtol=1e-4, atol=1e-4)


def test_decoded_manifold_tab_draws_the_chosen_grid(explore: AppTest):
    """The tab draws an n x n grid over the PCA map (the codes themselves are checked against a numpy
    SVD inverse in tests/test_latent_tools.py)."""
    explore.slider(key="manifold_n").set_value(4).run()
    assert not explore.exception, [e.value for e in explore.exception]
    caps = [c for el in explore.get("image") for c in el.captions if "codes decoded over the" in c]
    assert caps == ["4 x 4 codes decoded over the PCA map"]
