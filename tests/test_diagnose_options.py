"""Each diagnose option is declared once (vae_core.metrics.pipeline.options) and reaches the CLI, the
checks of `diagnose` and the app's controls (issue 21, item 3).

Every field of DiagnoseOptions must be a `diagnose` CLI option with the field's default and help, a
keyword of `diagnose()`, refused alike by the CLI and the library, and (where it is a control) drawn
from its declaration on the Diagnose and Compare pages. A new option added to the declaration alone
appears in the CLI and as a control without another edit.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import pytest
from streamlit.testing.v1 import AppTest

from vae_core import cli
from vae_core.metrics import diagnose
from vae_core.metrics.pipeline import options
from vae_core.metrics.pipeline.options import AUTO, DiagnoseOptions, dopt, option_fields

# The option names users have typed (docs/contracts.md, docs/guide.md, scripts): they must not change.
CLI_NAMES = {"n_points": ("--n-points", "--points"), "iwae_k": ("--iwae-k",), "budget_s": ("--budget",),
             "seed": ("--seed",), "split_seed": ("--split-seed",)}
# defaults written out here, not read from the code: points and k chosen by a 60 s budget, seed 0, the run's split
DEFAULTS = {"n_points": "auto", "iwae_k": "auto", "budget_s": 60.0, "seed": 0, "split_seed": None}
OTHER = {"n_points": ("250", 250), "iwae_k": ("7", 7), "budget_s": ("12.5", 12.5), "seed": ("3", 3),
         "split_seed": ("4", 4)}  # a value as typed, and as parsed
BAD = [("n_points", "0", ">= 1"), ("n_points", "many", "whole number or 'auto'"), ("iwae_k", "0", ">= 1"),
       ("iwae_k", "2.5", "whole number"), ("budget_s", "0", "> 0"), ("budget_s", "-1", "> 0"),
       ("budget_s", "nan", "finite"), ("budget_s", "auto", "cannot be 'auto'"), ("seed", "-1", ">= 0"),
       ("split_seed", "-2", ">= 0"), ("iwae_k", "20000", "VAE_EXPLORER_MAX_IWAE_K")]


def _parse(*args: str):
    return cli.build_parser().parse_args(["diagnose", "runs/default", "--data", "digits", *args])


def test_the_declared_options_are_the_ones_users_know():
    assert {f.name: f.metadata["cli"] for f in option_fields()} == CLI_NAMES
    assert {f.name: f.default for f in option_fields()} == DEFAULTS
    assert DiagnoseOptions() == DiagnoseOptions(**DEFAULTS)


def test_every_option_is_a_diagnose_cli_option_with_its_default_and_help(capsys):
    ns = _parse()
    for f in option_fields():
        assert getattr(ns, f.name) == DEFAULTS[f.name], f.name
    with pytest.raises(SystemExit):
        _parse("--help")
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words
    for f in option_fields():
        assert " ".join(f.metadata["help"].split()) in help_text, f.name
        for flag in CLI_NAMES[f.name]:
            typed, parsed = OTHER[f.name]
            assert getattr(_parse(flag, typed), f.name) == parsed, flag
            assert f"{flag} " in help_text, flag
    assert _parse("--iwae-k", "auto", "--points", "auto").iwae_k == AUTO


def test_every_option_is_a_keyword_of_diagnose_and_the_cli_passes_them_all():
    params = inspect.signature(diagnose).parameters
    assert {f.name for f in option_fields()} <= set(params)
    # what the CLI hands to diagnose: every declared option, by its field name
    ns = _parse(*[a for f in option_fields() for a in (CLI_NAMES[f.name][0], OTHER[f.name][0])])
    opts = DiagnoseOptions(**{f.name: getattr(ns, f.name) for f in option_fields()})
    assert opts.kwargs(run_split_seed=9) == {name: parsed for name, (_, parsed) in OTHER.items()}
    assert DiagnoseOptions().kwargs(run_split_seed=9)["split_seed"] == 9, "None: the run's own split"


@pytest.mark.parametrize("name, typed, words", BAD, ids=[f"{n}={t}" for n, t, _ in BAD])
def test_the_cli_and_the_library_refuse_alike(name, typed, words, capsys):
    flag = CLI_NAMES[name][0]
    with pytest.raises(ValueError) as lib:
        DiagnoseOptions(**{name: typed})
    assert words in str(lib.value) and flag in str(lib.value) and name in str(lib.value)
    # refused before the model is loaded: one line on stderr, exit status 2
    assert cli.main(["diagnose", "no/such/run", "--data", "digits", flag, typed]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == f"error: {lib.value}"


@pytest.mark.parametrize("name, value", [("n_points", 0), ("iwae_k", 0), ("budget_s", -3.0), ("n_points", "many")])
def test_diagnose_itself_runs_the_declared_checks(name, value):
    with pytest.raises(ValueError, match=name):
        diagnose(object(), object(), **{name: value})  # refused before the model or data are looked at


# ------------------------------------------------------------------------------------- the app's controls

def _controls_app():
    import streamlit as st

    from explorer import compare_ui, diagnose_ui

    left, mid = st.columns(2)
    st.session_state["diagnose_opts"] = diagnose_ui.options_ui(left, mid)
    st.session_state["compare_opts"] = compare_ui.settings_ui()


def _by_key(at: AppTest) -> dict:
    return {w.key: w for kind in ("selectbox", "number_input") for w in at.get(kind)}


def test_the_pages_controls_are_drawn_from_the_declaration():
    at = AppTest.from_function(_controls_app, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    w = _by_key(at)
    meta = {f.name: f.metadata for f in option_fields()}
    # Diagnose: k (a choice, auto first) and the budget
    k, budget = w["diag_iwae_k"], w["diag_budget"]
    assert (k.label, k.help, k.value) == (meta["iwae_k"]["label"], meta["iwae_k"]["ui_help"], "auto")
    assert k.options == ["auto (fit the budget)", "10", "100", "1000"]
    assert (budget.label, budget.help, budget.value) == (meta["budget_s"]["label"], meta["budget_s"]["ui_help"], 60)
    assert at.session_state["diagnose_opts"] == DiagnoseOptions()
    # Compare: the same declared points, k and seed, at its own defaults (the same 1000 points and k = 100)
    for key, name in (("cmp_n", "n_points"), ("cmp_k", "iwae_k"), ("cmp_seed", "seed")):
        assert (w[key].label, w[key].help) == (meta[name]["label"], meta[name]["ui_help"]), key
    assert at.session_state["compare_opts"] == DiagnoseOptions(n_points=1000, iwae_k=100, budget_s=None)
    # the values set are the values returned (the page passes them on: nothing reads them back)
    at.selectbox(key="diag_iwae_k").set_value(100)
    at.number_input(key="diag_budget").set_value(5)
    at.number_input(key="cmp_k").set_value(7)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["diagnose_opts"] == DiagnoseOptions(iwae_k=100, budget_s=5.0)
    assert at.session_state["compare_opts"] == DiagnoseOptions(n_points=1000, iwae_k=7, budget_s=None)


# ------------------------------------------------------------------------------- a new option: one edit

@dataclass(frozen=True)
class _WithNewOption(DiagnoseOptions):
    mi_batch: int | str = dopt(AUTO, kind=int, lo=2, auto=True, cli=("--mi-batch",), label="MI batch", step=1,
                               help="points per batch of the mutual information estimator")


def _new_option_app():
    import streamlit as st

    from explorer import diagnose_ui

    st.session_state["got"] = diagnose_ui.option_ui("mi_batch", "new_mi_batch", default=64)


def test_a_new_option_needs_only_its_declaration(monkeypatch, capsys):
    monkeypatch.setattr(options, "DiagnoseOptions", _WithNewOption)
    assert _parse().mi_batch == AUTO and _parse("--mi-batch", "32").mi_batch == 32
    assert cli.main(["diagnose", "no/such/run", "--data", "digits", "--mi-batch", "1"]) == 2
    assert capsys.readouterr().err.strip() == "error: mi_batch (--mi-batch) must be >= 2, got 1"
    at = AppTest.from_function(_new_option_app, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    control = at.number_input(key="new_mi_batch")
    assert (control.label, control.help, control.value) == ("MI batch", _WithNewOption.__dataclass_fields__[
        "mi_batch"].metadata["help"], 64) and at.session_state["got"] == 64
