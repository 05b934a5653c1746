"""One collapse vocabulary (issue #9, item 5) and a truthful decode toggle (item 6).

A planted partial collapse, with per-dimension statistics known by construction, is classified
exactly (active / partly collapsed / collapsed), and the report's summary, the Diagnose page's
metrics and verdict table and the Compare table all give the same counts. Log axes label every tick
with its full value. The Explore page's "Decode in the browser" toggle is off and disabled, with
the reason, for a TorchScript model, and on and enabled for runs/default.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from settle import settle
from torch import nn

from explorer import figures
from vae_core.metrics import collapse as vocab
from vae_core.metrics.collapse import collapse_stats
from paths import ROOT  # the repository root (tests/paths.py)
from sidebar import decode_toggle, model_picker  # tests/sidebar.py

DIAGNOSE = str(ROOT / "app_pages" / "3_Diagnose.py")
COMPARE = str(ROOT / "app_pages" / "5_Compare.py")
EXPLORE = str(ROOT / "app_pages" / "1_Explore.py")
HOME = str(ROOT / "streamlit_app.py")
TIMEOUT = 300

# The planted code: mu_j = C_j + B_j * s(x) with s = +-1, sigma_j^2 = S2_j for every x. So, whatever
# the balance of s over the points, KL_j = 0.5 * (C_j^2 + B_j^2 + S2_j - log S2_j - 1) exactly (s^2 = 1)
# and Var(mu_j) = B_j^2 * (1 - mean(s)^2).
B = [1.0, 0.3, 0.0, 0.0, 0.0, 0.12]
C = [0.0, 0.0, 0.5, 0.2, 0.0, 0.0]
S2 = [0.25, 1.0, 0.5, 1.0, 1.0, 1.0]
# dim 0: active (KL 0.82, Var 1, sigma^2 0.25)
# dim 1: partly collapsed: carries KL (0.045) and its means move, but its spread is the prior's (1.0)
# dim 2: partly collapsed: carries KL (0.22), but its means do not move (Var 0)
# dim 3: partly collapsed: KL 0.02, means fixed and spread prior-wide
# dim 4: collapsed, copies the prior (KL 0, Var 0, sigma^2 1)
# dim 5: collapsed (KL 0.0072 < 0.01) though its means move (Var 0.0144 > 0.01: one of Burda's active units)
CLASSES = ["active", "partly collapsed", "partly collapsed", "partly collapsed", "collapsed", "collapsed"]
COUNTS = {"active": 1, "partly collapsed": 3, "collapsed": 2}
PHRASE = "1 active, 3 partly collapsed, 2 collapsed"


def _kl(j: int) -> float:
    return 0.5 * (C[j] ** 2 + B[j] ** 2 + S2[j] - math.log(S2[j]) - 1.0)


def _planted_arrays(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    s = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[:, None]  # balanced: Var(mu_j) = B_j^2 exactly
    mu = np.array(C)[None] + np.array(B)[None] * s
    logvar = np.log(np.array(S2))[None].repeat(n, 0)
    return mu, logvar


# ----------------------------------------------------------------------------- the classes
def test_planted_partial_collapse_exact_classes_and_counts():
    mu, logvar = _planted_arrays()
    s = collapse_stats(mu, logvar)
    np.testing.assert_allclose(s.kl_per_dim, [_kl(j) for j in range(6)], atol=1e-12)
    np.testing.assert_allclose(s.activity, np.square(B), atol=1e-12)
    np.testing.assert_allclose(s.mean_sigma2, S2, atol=1e-12)
    assert s.classes == CLASSES
    assert s.class_counts == COUNTS
    assert sum(s.class_counts.values()) == 6
    # the contract keys keep their meaning: collapsed_dims = KL < 0.01; active_units = Var(mu) > 0.01
    assert s.collapsed_dims == [4, 5]
    assert s.active_units == 3  # dims 0, 1, 5: not the "active" class count, and the headline says so
    assert s.partly_collapsed_dims == [1, 2, 3]
    assert vocab.counts_phrase(s.classes) == PHRASE
    head = " ".join(s.headline())
    assert f"Of 6 latent dimensions: {PHRASE}." in head
    assert "dims 1, 2, 3" in head and "dims 4, 5" in head and "is 3" in head  # Burda's count, named
    v = vocab.verdicts(s.classes, s.active, s.prior_like)
    assert [x.split(":")[0] for x in v] == CLASSES, "every verdict starts with its class"
    assert v[0] == "active" and v[4] == "collapsed: copies the prior"
    assert v[5] == "collapsed: no information, though its means still move"
    assert v[1] == "partly collapsed: carries information, but its spread is as wide as the prior"
    assert v[2] == "partly collapsed: carries information, but its means barely move"
    assert v[3] == ("partly collapsed: carries information, but its means barely move and its spread is as "
                    "wide as the prior")


def test_classify_functions_agree_and_cover_every_combination():
    rows = [(lo, a, p) for lo in (False, True) for a in (False, True) for p in (False, True)]
    low_kl, active, prior = (np.array(c) for c in zip(*rows))
    cls = vocab.classify_dims(low_kl, active, prior)
    assert cls == ["partly collapsed", "partly collapsed", "active", "partly collapsed",
                   "collapsed", "collapsed", "collapsed", "collapsed"]
    idx = vocab.classify_index_lists(8, np.flatnonzero(low_kl), np.flatnonzero(active), np.flatnonzero(prior))
    assert idx == cls
    # values right at the thresholds: KL < 0.01 is collapsed, Var > 0.01 is active, sigma^2 > 0.8 prior-wide
    assert vocab.classify_values([0.01, 0.0099, 0.5], [0.0101, 0.5, 0.01], [0.8, 0.1, 0.5]) == [
        "active", "collapsed", "partly collapsed"]
    assert vocab.verdicts(["active"], [True], [False], decoder_ignored=[0]) == ["active: the decoder ignores it"]
    with pytest.raises(ValueError, match="one flag per dimension"):
        vocab.classify_dims([True], [True, False], [False])


# ----------------------------------------------------------------------------- a model with that code
class _PartialCollapse(nn.Module):
    """1x8x8 in, 6 dims: mu = C + B * s(x), s = +1 when the image's mean pixel exceeds `cut`, else -1;
    logvar = log S2 for every image. A random linear decoder listens to every dim."""

    def __init__(self, cut: float) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.cut = cut
        self.register_buffer("b", torch.tensor(B))
        self.register_buffer("c", torch.tensor(C))
        self.register_buffer("lv", torch.tensor(S2).log())
        self.register_buffer("w", torch.randn(64, 6, generator=g))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = (x.flatten(1).mean(1, keepdim=True) > self.cut).float() * 2.0 - 1.0  # (B, 1)
        mu = self.c + self.b * s  # (B, 6)
        return mu, self.lv.expand_as(mu).contiguous()

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z @ self.w.t()).view(-1, 1, 8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def _digits_cut() -> float:
    from vae_core.data import load_dataset

    return float(load_dataset("digits").x.flatten(1).mean(1).median())  # about half the images each side


@pytest.fixture(scope="module")
def planted_ts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ts") / "partial.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(_PartialCollapse(_digits_cut())), str(path))
    return path


@pytest.fixture(scope="module")
def planted_report():
    """The typed Report of the planted model (the pages' panels take it; its JSON dict for the keys)."""
    from vae_core import ScriptedVAE
    from vae_core.data import load_dataset
    from vae_core.metrics import diagnose

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model = ScriptedVAE(torch.jit.script(_PartialCollapse(_digits_cut())))
    return diagnose(model, load_dataset("digits"), n_points=None, iwae_k=5)


def test_report_summary_and_keys_use_the_classes(planted_report):
    rep = planted_report.to_dict()
    np.testing.assert_allclose(rep["kl_per_dim"], [_kl(j) for j in range(6)], rtol=1e-5, atol=1e-7)
    assert rep["collapse"]["classes"] == CLASSES
    assert rep["collapse"]["class_counts"] == COUNTS
    assert rep["collapsed_dims"] == [4, 5] and rep["partly_collapsed_dims"] == [1, 2, 3]
    assert [v.split(":")[0] for v in rep["collapse"]["verdicts"]] == CLASSES
    assert f"Of 6 latent dimensions: {PHRASE}." in rep["summary"]
    assert "0 collapsed" not in rep["summary"]
    # active_units stays Burda's count (Var(mu) > 0.01), whatever the balance of s on these points
    assert rep["active_units"] == int((np.array(rep["collapse"]["activity"]) > 0.01).sum())


def test_diagnose_and_compare_functions_count_alike(planted_report):
    from explorer import compare_ui, diagnose_ui

    rep = planted_report
    assert diagnose_ui.dim_classes(rep) == CLASSES
    table = diagnose_ui.verdict_table(rep)
    assert [v.split(":")[0] for v in table["verdict"]] == CLASSES
    assert list(table["verdict"]) == rep.to_dict()["collapse"]["verdicts"]
    assert compare_ui.dim_class_counts(rep) == COUNTS


def _metric(at: AppTest, label: str) -> str:
    hits = [m.value for m in at.metric if m.label == label]
    assert len(hits) == 1, [m.label for m in at.metric]
    return hits[0]


@pytest.fixture(scope="module")
def diagnose_page(planted_ts) -> AppTest:
    at = AppTest.from_file(DIAGNOSE, default_timeout=TIMEOUT)
    at.session_state["model_src"] = str(planted_ts)
    at.session_state["data_src"] = "digits"
    at.session_state["diag_iwae_k"] = 10
    settle(at.run())
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_diagnose_page_headline_metrics_and_verdicts_agree(diagnose_page):
    at = diagnose_page
    summary = " ".join(i.value for i in at.info)
    assert f"Of 6 latent dimensions: {PHRASE}." in summary
    assert _metric(at, "Active dims") == "1 / 6"
    assert _metric(at, "Partly collapsed") == "3 / 6"
    assert _metric(at, "Collapsed dims") == "2 / 6"
    table = at.dataframe[0].value
    assert [v.split(":")[0] for v in table["verdict"]] == CLASSES
    assert any(PHRASE in m.value for m in at.markdown), "the verdict table's heading gives the counts"
    explained = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "**partly collapsed**: KL_j >= 0.01 nats" in explained, "the page says what partly collapsed means"
    strips = [c for el in at.get("image") for c in el.captions if c.endswith("): -3 to 3")]
    assert sorted(re.search(r"nats, ([a-z ]+)\)", c).group(1) for c in strips) == sorted(CLASSES)


def _check_full_ticks(vals, text, *, log10_vals: bool = False) -> None:
    assert vals and len(vals) == len(text)
    for v, t in zip(vals, text):
        v = 10 ** v if log10_vals else v
        assert float(t) == pytest.approx(v, rel=1e-9), (v, t)  # "0.02" for 0.02, never a bare "2"


def test_diagnose_kl_chart_log_axis_labels_every_tick_in_full(diagnose_page):
    fig = next(json.loads(el.proto.spec) for el in diagnose_page.get("plotly_chart")
               if json.loads(el.proto.spec)["layout"].get("yaxis", {}).get("title", {}).get("text") == "KL_j (nats)")
    y = fig["layout"]["yaxis"]
    assert y["type"] == "log" and y["tickmode"] == "array"
    _check_full_ticks(y["tickvals"], y["ticktext"])
    assert "0.01" in y["ticktext"] and "0.03" in y["ticktext"]
    bar = fig["data"][0]
    assert [float(t) for t in bar["text"] if not t.startswith("<")] == pytest.approx(
        [round(_kl(j), 2 - int(math.floor(math.log10(_kl(j)))) - 1) for j in range(6) if _kl(j) >= 0.001])


def test_compare_table_rows_use_the_same_counts(planted_ts, tmp_path, monkeypatch):
    from explorer import state

    monkeypatch.setattr(state, "RUNS_DIR", tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    at = AppTest.from_file(COMPARE, default_timeout=TIMEOUT)
    at.session_state["model_src"] = str(planted_ts)
    at.session_state["data_src"] = "digits"
    at.session_state["cmp_runs"] = [str(planted_ts)]
    settle(at.run())
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert len(df) == 1
    row = df.iloc[0]
    assert {k: int(row[k]) for k in COUNTS} == COUNTS
    assert "active units" not in df.columns and "collapsed dims" not in df.columns


# ----------------------------------------------------------------------------- log axes, figure dicts
def test_threshold_bar_log_axis_labels_every_tick_in_full():
    kl = np.array([0.0, 0.005, 0.03, 2.0])
    fig = figures.threshold_bar_figure(kl, 0.01, y_title="KL", log_y=True, value_text=True).to_dict()
    y = fig["layout"]["yaxis"]
    assert y["type"] == "log" and y["tickmode"] == "array"
    _check_full_ticks(list(y["tickvals"]), list(y["ticktext"]))
    assert list(y["ticktext"])[:4] == ["0.001", "0.003", "0.01", "0.03"]
    assert list(fig["data"][0]["text"]) == ["<0.001", "0.005", "0.03", "2"]
    # the 0.03-nat bar reaches well up the axis next to the 2-nat one (a linear axis: 1.5% of it)
    lo, hi = y["range"]
    frac = (math.log10(0.03) - lo) / (hi - lo)
    assert frac > 0.3, frac


def test_log_ticks_are_full_values_at_every_span():
    for lo, hi in [(0.01, 0.1), (0.005, 0.5), (0.001, 3.0), (1e-7, 1e3), (0.3, 0.6), (2.0, 2000.0)]:
        vals, text = figures.log_ticks(lo, hi)
        assert len(vals) >= 2 and all(lo * 0.999 <= v <= hi * 1.001 for v in vals)
        _check_full_ticks(vals, text)
    assert figures.log_ticks(0.01, 0.1)[1] == ["0.01", "0.02", "0.05", "0.1"]


def test_compare_heatmap_and_spectrum_log_scales_label_ticks_in_full():
    hm = figures.compare_kl_figure(["a", "b"], [[0.0, 0.03, 2.0], [0.5, 0.0004]]).to_dict()
    bar = hm["data"][0]["colorbar"]
    _check_full_ticks(list(bar["tickvals"]), list(bar["ticktext"]), log10_vals=True)
    assert [list(r) for r in hm["data"][0]["text"]] == [["<0.001", "0.03", "2"], ["0.5", "<0.001", ""]]
    sp = figures.spectrum_figure(np.array([0.1, 0.25, 0.5]), {"data": np.array([2e-4, 0.03, 5.0])}).to_dict()
    y = sp["layout"]["yaxis"]
    assert y["type"] == "log"
    _check_full_ticks(list(y["tickvals"]), list(y["ticktext"]))


# ----------------------------------------------------------------------------- the decode toggle
def test_decode_toggle_enabled_for_the_default_mlp_run():
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    t = decode_toggle(at)
    assert t.value is True and not t.disabled


def _upload_torchscript(tmp_path, monkeypatch) -> AppTest:
    from vae_core.runs.model_files import export_torchscript
    from vae_core.runs.run_load import load_run

    monkeypatch.setenv("VAE_EXPLORER_UPLOADS", str(tmp_path / "uploads"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ts = export_torchscript(load_run(ROOT / "runs" / "default").model, tmp_path / "mine.ts")
    at = AppTest.from_file(EXPLORE, default_timeout=TIMEOUT).run()
    assert decode_toggle(at).value is True
    at.file_uploader(key="upload_model").set_value(("mine.ts", ts.read_bytes(), "application/octet-stream"))
    at.run()  # waits for the jobs: the encoding, and the decoder's export in the model's worker
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["model_src"].endswith(".ts")
    return at


def test_decode_toggle_on_for_torchscript_exported_by_its_worker(tmp_path, monkeypatch):
    at = _upload_torchscript(tmp_path, monkeypatch)
    t = decode_toggle(at)
    assert t.value is True and not t.disabled, "its worker exported the decoder to ONNX: the browser decodes it"
    assert not any("Decoding on the server" in c.value for c in at.caption)


def test_decode_toggle_off_and_disabled_when_the_worker_cannot_export(tmp_path, monkeypatch):
    from vae_core.errors import CheckpointError
    from vae_core.sandbox.proxy import RemoteModel

    def refuse(self):
        raise CheckpointError("the exporter does not know the operation aten::weird")

    monkeypatch.setattr(RemoteModel, "decoder_onnx", refuse)
    at = _upload_torchscript(tmp_path, monkeypatch)
    t = decode_toggle(at)
    assert t.value is False and t.disabled
    assert "could not be exported to ONNX" in t.help and "aten::weird" in t.help
    assert any("Decoding on the server" in c.value and "aten::weird" in c.value for c in at.caption), \
        "the reason is shown"
    # back to runs/default: the user's choice (on) comes back, and the toggle can be used again
    model_picker(at).set_value(str(ROOT / "runs" / "default")).run()
    assert not at.exception, [e.value for e in at.exception]
    t = decode_toggle(at)
    assert t.value is True and not t.disabled
