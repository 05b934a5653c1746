"""AppTest (headless) for the Diagnose and Blurriness pages: they open on the default run and mnist,
IWAE k changes the shown bound, the verdict table flags planted collapse (checked against a
closed-form KL computed here from the encoder), the blur numbers are the report's, and the JSON
download parses."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from settle import settle
from streamlit.testing.v1 import app_test as app_test_module
from paths import ROOT  # the repository root (tests/paths.py)
from sidebar import data_picker  # tests/sidebar.py

TIMEOUT = 300  # the first report on the default run takes ~10 s alone, more on a shared machine
DIAGNOSE = str(ROOT / "app_pages" / "3_Diagnose.py")
BLUR = str(ROOT / "app_pages" / "4_Blurriness.py")
CONTRACT_KEYS = {"elbo", "recon_nll", "kl", "kl_per_dim", "active_units", "collapsed_dims", "mutual_info",
                 "mutual_info_max", "iwae", "iwae_k", "variance_law", "blur", "mig"}


class _RecordingStorage(MemoryMediaFileStorage):
    """AppTest's in-memory media storage, remembered so a test can read what a download button serves."""

    made: list["_RecordingStorage"] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _RecordingStorage.made.append(self)


@pytest.fixture(scope="module", autouse=True)
def _record_media():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app_test_module, "MemoryMediaFileStorage", _RecordingStorage)
        yield


def _download_bytes(at: AppTest, key: str) -> bytes:
    """The bytes behind download button `key` of the last run."""
    name = at.download_button(key=key).proto.url.rsplit("/", 1)[-1]
    for storage in reversed(_RecordingStorage.made):
        try:
            return storage.get_file(name).content
        except MediaFileStorageError:
            continue
    raise AssertionError(f"no media file {name} for download button {key}")


def _metric(at: AppTest, label_start: str) -> tuple[str, str]:
    hits = [(m.label, m.value) for m in at.metric if m.label.startswith(label_start)]
    assert len(hits) == 1, (label_start, [m.label for m in at.metric])
    return hits[0]


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def diagnose() -> tuple[AppTest, dict]:
    """The Diagnose page on its defaults and its report, shared: no test changes this page (one that
    sets widgets opens its own)."""
    at = _ok(settle(AppTest.from_file(DIAGNOSE, default_timeout=TIMEOUT).run()))
    return at, json.loads(_download_bytes(at, "diag_json"))


def test_diagnose_opens_on_default_run_and_mnist(diagnose):
    at, rep = diagnose
    assert data_picker(at).value == "mnist"
    assert CONTRACT_KEYS <= set(rep) and rep["dataset"] == "mnist" and 10 <= rep["iwae_k"] <= 100
    assert rep["iwae_k_chosen_by"] == "budget", "the page's k is auto by default"
    assert rep["summary"] in [i.value for i in at.info], "the plain-language summary is shown"
    table = at.dataframe[0].value
    assert list(table.columns) == ["dim", "KL (nats)", "Var mu", "E sigma^2", "sensitivity", "verdict"]
    assert len(table) == rep["latent_dim"]
    np.testing.assert_allclose(table["KL (nats)"], rep["kl_per_dim"])
    captions = " ".join(c.value for c in at.caption)
    notes = " ".join(m.value for e in at.expander for m in e.markdown)
    assert "not a normalised likelihood" in notes, "the Bernoulli-on-grey-pixels note is shown (folded)"
    assert "nats per data point" in captions
    assert "MIG" in captions and "ground-truth factors" in captions, "mnist has no factors: a one-line note"
    assert _metric(at, f"IWAE bound (k = {rep['iwae_k']})")[1] == f"{rep['iwae']:.2f}"
    assert _metric(at, "ELBO (k = 1)")[1] == f"{rep['elbo']:.2f}"
    assert at.selectbox(key="diag_iwae_k").options == ["auto (fit the budget)", "10", "100", "1000"]
    strips = [c for el in at.get("image") for c in el.captions if c.endswith("): -3 to 3")]
    assert len(strips) == rep["latent_dim"], "one traversal strip per dimension"


def test_iwae_k_changes_shown_bound():
    at = _ok(settle(AppTest.from_file(DIAGNOSE, default_timeout=TIMEOUT).run()))  # its own page: it sets k
    _ok(settle(at.selectbox(key="diag_iwae_k").set_value(100).run()))
    before = _metric(at, "IWAE bound")
    rep = json.loads(_download_bytes(at, "diag_json"))
    assert before[0] == "IWAE bound (k = 100)" and rep["iwae_k"] == 100 and rep["iwae_k_chosen_by"] == "given"
    _ok(settle(at.selectbox(key="diag_iwae_k").set_value(10).run()))
    after = _metric(at, "IWAE bound")
    assert after[0] == "IWAE bound (k = 10)" and after[1] != before[1]
    rep10 = json.loads(_download_bytes(at, "diag_json"))
    assert rep10["iwae_k"] == 10 and after[1] == f"{rep10['iwae']:.2f}"
    # k=10 is a looser bound than k=100, up to noise: 4 standard errors of the difference
    tol = 4 * (rep10["iwae_se"] ** 2 + rep["iwae_se"] ** 2) ** 0.5
    assert rep10["elbo"] <= rep10["iwae"] <= rep["iwae"] + tol


def test_blur_page_shows_the_reports_numbers(diagnose):
    _, rep = diagnose
    at = _ok(settle(AppTest.from_file(BLUR, default_timeout=TIMEOUT).run()))
    for part in ("reconstructions", "samples"):
        label, value = _metric(at, f"Laplacian ratio ({part})")
        assert float(value) == pytest.approx(rep["blur"][part]["laplacian_ratio"], abs=5e-4)
        assert float(_metric(at, f"Spectrum ratio ({part})")[1]) == pytest.approx(
            rep["blur"][part]["spectrum_ratio"], abs=5e-4)
    caps = [c for el in at.get("image") for c in el.captions]
    for name in ("Originals", "Reconstructions", "Prior samples", "Sharpest", "Blurriest"):
        assert any(c.startswith(name) for c in caps), (name, caps)
    png = [b for b in at.download_button if b.label == "Download PNG"]
    assert len(png) == 5
    assert _download_bytes(at, png[0].key)[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- planted collapse
PLANTED = (1, 4, 6)  # dims whose encoder output is zeroed: mu_j = 0, logvar_j = 0, so KL_j = 0 exactly


@pytest.fixture(scope="module")
def collapsed_run(tmp_path_factory) -> Path:
    """A tiny digits VAE (8 dims) trained briefly with beta = 1, then dims PLANTED collapsed by hand."""
    from vae_core import VAE, ModelConfig, TrainConfig
    from vae_core.runs.checkpoints import save_run
    from vae_core.data import load_dataset
    from vae_core.train import fit

    data = load_dataset("digits")
    train, ev = data.split(0.2, 0)
    torch.manual_seed(0)
    model = VAE(ModelConfig(input_shape=(1, 8, 8), latent_dim=8, hidden=(64,)))
    cfg = TrainConfig(epochs=10, beta=1.0, seed=0)
    hist = fit(model, train, ev, cfg)
    d = model.latent_dim
    with torch.no_grad():
        for j in PLANTED:
            for row in (j, d + j):  # enc_out gives (mu, logvar) = chunk(2): row j is mu_j, row d+j logvar_j
                model.enc_out.weight[row] = 0.0
                model.enc_out.bias[row] = 0.0
    return save_run(tmp_path_factory.mktemp("runs") / "x", model, cfg, hist.rows, dataset="digits")


def test_verdict_table_flags_planted_collapse(collapsed_run: Path):
    from vae_core.runs.run_load import load_run
    from vae_core.data import load_dataset

    at = AppTest.from_file(DIAGNOSE, default_timeout=TIMEOUT)
    at.session_state["model_src"] = str(collapsed_run)
    at.session_state["data_src"] = "digits"
    _ok(settle(at.run()))
    assert not at.error, [e.value for e in at.error]
    rep = json.loads(_download_bytes(at, "diag_json"))
    assert rep["dataset"] == "digits" and rep["latent_dim"] == 8

    table = at.dataframe[0].value
    flagged = sorted(int(r.dim) for r in table.itertuples() if r.verdict.startswith("collapsed"))
    assert flagged == sorted(rep["collapsed_dims"])
    assert set(PLANTED) <= set(flagged), "the hand-planted dims are found"
    assert len(flagged) < 8, "the trained dims are not all called collapsed"
    assert all(v == "collapsed: copies the prior" for v in table.verdict[list(PLANTED)])

    # independent check: closed-form KL per dim from the saved model's encoder on the eval split
    model = load_run(collapsed_run).model.eval()
    ev = load_dataset("digits").split(0.2, 0)[1]  # 359 points: all of them are the report's points
    assert rep["n_points"] == len(ev)
    with torch.inference_mode():
        mu, logvar = model.encode(ev.x)
    kl = (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)).mean(0).numpy()  # (D,) nats
    assert sorted(np.flatnonzero(kl < 0.01).tolist()) == flagged
    np.testing.assert_allclose(kl, rep["kl_per_dim"], rtol=1e-4, atol=1e-6)


def test_diagnose_notes_fold_below_the_pictures(diagnose):
    """Issue 20, item 7: five grey "Note:" paragraphs opened the page before any picture; pictures and
    verdicts come first, the notes fold at the bottom, and the summary says they are there."""
    at, rep = diagnose
    assert rep["notes"], "the default run's report has notes"
    assert not any(c.value.startswith("Note:") for c in at.caption), "no note before the pictures"
    top = list(at.main.children.values())
    last = top[-1]
    assert last.type == "expander" and last.label == f"Notes on this report ({len(rep['notes'])})"
    assert [m.value for m in last.markdown] == [f"- {n}" for n in rep["notes"]]
    assert any("folded at the bottom of the page" in c.value for c in at.caption)
