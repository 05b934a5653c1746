"""β sweeps (vae_core/sweep.py, `python -m vae_core sweep`; docs/science.md "β sweeps"): the sweep
command writes one normal run per β and sweep.json; the cascade's bookkeeping matches hand-made
arrays; and a linear VAE swept over β on the planted data collapses its dimensions in the spectrum's
order, smallest eigenvalue first, at the βs the linear theory predicts (λ_i / σ²)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from linear_vae import fit_linear_vae

from vae_core import sweep
from vae_core.data.planted import OFFSET, PLANTED_SPECTRUM, SCALE, make_planted
from vae_core.metrics.collapse import KL_THRESHOLD
from vae_core.metrics.theory import data_spectrum


def test_parse_betas_and_dirnames():
    assert sweep.parse_betas("8, 0.25,1,2") == (0.25, 1.0, 2.0, 8.0)
    assert [sweep.beta_dirname(b) for b in (0.25, 1.0, 8, 1e-5)] == ["beta-0.25", "beta-1", "beta-8", "beta-1e-05"]
    for bad in ("1", "1,x", "0,1", "-1,2", "1,1.0", "nan,1", "1,inf"):
        with pytest.raises(ValueError):
            sweep.parse_betas(bad)


def test_collapse_betas_on_hand_made_kls():
    betas = [0.5, 1, 2, 4]
    kl = np.array([[1.0, 0.5, 0.02, 0.0],
                   [0.9, 0.005, 0.02, 0.0],
                   [0.8, 0.02, 0.005, 0.0],   # dim 1 comes back: it collapses only from 4 on
                   [0.7, 0.001, 0.001, 0.0]])
    assert sweep.collapse_betas(betas, kl) == [None, 4.0, 2.0, 0.5]
    assert sweep.collapse_betas(betas, kl, threshold=0.9) == [2.0, 0.5, 0.5, 0.5]  # 0.9 is not below 0.9


def test_cascade_order_on_hand_made_runs():
    spec = np.array([4.0, 2.0, 1.0, 0.1])
    kl = {1.0: [0.5, 0.3, 0.2], 1.5: [0.4, 0.0, 0.2], 3.0: [0.3, 0.0, 0.0]}
    # latent 2 takes up direction 1 at beta 1.5 when latent 1 (which had it) collapses; a collapsed
    # latent's direction is noise and does not count
    dirs = {1.0: [0, 1, 2], 1.5: [0, 3, 1], 3.0: [0, 3, 3]}
    runs = [{"beta": b, "kl_per_dim": kl[b], "direction": dirs[b], "spectrum": spec, "sigma2": 1.0} for b in kl]
    c = sweep.cascade(runs[::-1])
    assert c["betas"] == [1.0, 1.5, 3.0] and c["collapse_beta"] == [None, 1.5, 3.0]
    np.testing.assert_allclose(c["direction_kl"], [[0.5, 0.3, 0.2, 0], [0.4, 0.2, 0, 0], [0.3, 0, 0, 0]])
    assert [(o["direction"], o["collapse_beta"], o["eigenvalue"], o["predicted_beta"]) for o in c["order"]] == \
        [(2, 1.5, 1.0, 1.0), (1, 3.0, 2.0, 2.0), (0, None, 4.0, 4.0)]
    assert c["spectrum_order"] is True
    assert c["active_measured"] == [3, 2, 1] and c["active_predicted"] == [2, 2, 1]  # lambda > beta sigma^2
    dirs[1.5] = [0, 3, 2]  # direction 1 goes first (at 1.5), direction 2 (smaller eigenvalue) at 3
    runs = [{"beta": b, "kl_per_dim": kl[b], "direction": dirs[b], "spectrum": spec, "sigma2": None} for b in kl]
    c = sweep.cascade(runs)
    assert [(o["direction"], o["collapse_beta"]) for o in c["order"]] == [(1, 1.5), (2, 3.0), (0, None)]
    assert c["spectrum_order"] is False and c["active_predicted"] is None


# ------------------------------------------------------------- a linear VAE swept over beta on planted data
SIGMA2 = 0.75  # in the standardised coordinates (x - OFFSET) / SCALE: eigenvalues 9, 6, 4, 2.5 and 0.2
LATENT, STEPS, LR = 6, 600, 3e-2


def _fit_linear_vae(x: torch.Tensor, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of a linear VAE (tests/linear_vae.py), the same seed at every beta."""
    return fit_linear_vae(x, SIGMA2, beta, LATENT, STEPS, LR)


def test_linear_vae_beta_sweep_collapses_in_the_spectrum_order():
    d = make_planted(n=800, seed=1)
    x = (d.x.reshape(len(d), -1).double() - OFFSET) / SCALE
    xs = x.numpy()
    # lambda_i / sigma^2 = 12, 8, 5.3, 3.3: one direction goes between consecutive betas
    betas = [1.0, 4.5, 6.5, 10.0, 14.0]
    runs = []
    for b in betas:
        mu, lv = _fit_linear_vae(x, b)
        kl = (0.5 * (mu ** 2 + np.exp(lv) - lv - 1)).mean(0)  # independent of vae_core: numpy, by hand
        direction, corr = sweep.match_directions(mu, xs)
        runs.append({"beta": b, "kl_per_dim": kl, "direction": direction, "direction_corr": corr,
                     "sigma2": SIGMA2, "spectrum": data_spectrum(xs)})
    c = sweep.cascade(runs)
    assert c["active_predicted"] == [4, 3, 2, 1, 0]
    assert c["active_measured"] == c["active_predicted"], c["kl"]
    # measured: the latents go one per beta, following directions 3, 2, 1, 0 (smallest eigenvalue first)
    # measured: the directions go one per beta, smallest eigenvalue first
    assert [o["direction"] for o in c["order"]] == [3, 2, 1, 0], c["order"]
    assert [o["collapse_beta"] for o in c["order"]] == betas[1:]
    assert c["spectrum_order"] is True
    # the theory's collapse beta (lambda_i / sigma^2, the sample's eigenvalue) lies inside the measured bracket
    for o in c["order"]:
        before = betas[betas.index(o["collapse_beta"]) - 1]
        assert before < o["predicted_beta"] <= o["collapse_beta"]
        assert abs(o["eigenvalue"] - PLANTED_SPECTRUM[o["direction"]]) < 0.15 * PLANTED_SPECTRUM[o["direction"]]
    # every latent has collapsed at the largest beta
    assert all(cb is not None for cb in c["collapse_beta"])
    # the active latents follow their direction clearly (|corr| with the principal component's projection;
    # measured 0.64 to 0.9 after these few steps), the collapsed ones none
    active = c["kl"][0] >= KL_THRESHOLD
    assert np.all(runs[0]["direction_corr"][active] > 0.5) and np.all(runs[0]["direction_corr"][~active] < 0.2)


# ------------------------------------------------------------------------------------------- the CLI
def test_sweep_cli_writes_one_run_per_beta(tmp_path):
    from vae_core.cli import main

    out = tmp_path / "sweep-a"
    rc = main(["sweep", "--beta", "2,0.5", "--data", "planted", "--n", "200", "--hidden", "8", "--latent-dim", "2",
               "--epochs", "1", "--batch-size", "64", "--record-codes", "0", "--seed", "3", "--quiet",
               "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["kind"] == "beta_sweep" and doc["betas"] == [0.5, 2.0] and doc["dataset"] == "planted"
    assert [(r["beta"], r["dir"], r["status"]) for r in doc["runs"]] == [(0.5, "beta-0.5", "done"), (2.0, "beta-2", "done")]
    cfgs = [json.loads((out / r["dir"] / "config.json").read_text()) for r in doc["runs"]]
    assert [c["train"]["beta"] for c in cfgs] == [0.5, 2.0]
    for c in cfgs:  # identical but for beta
        c["train"].pop("beta"), c.pop("started", None), c.pop("finished", None), c.pop("saved", None)
    assert cfgs[0]["train"] == cfgs[1]["train"] and cfgs[0]["model"] == cfgs[1]["model"]
    assert cfgs[0]["train"]["seed"] == 3
    assert [b for b, _ in sweep.finished_runs(out)] == [0.5, 2.0]
    assert sweep.list_sweeps(tmp_path) == [out]
    # the runs exist now: a second sweep into the same directory is refused before any training
    assert main(["sweep", "--beta", "0.5,1", "--data", "planted", "--out", str(out), "--quiet"]) == 2
    assert main(["sweep", "--beta", "1", "--data", "planted", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    m = sweep.measure_run(out / "beta-2")
    assert m["beta"] == 2.0 and m["kl_per_dim"].shape == (2,) and m["sigma2"] is None  # bernoulli
