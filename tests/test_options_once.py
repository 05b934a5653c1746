"""Each training option is declared once (vae_core.config) and reaches the CLI and the Train form.

Every ModelConfig/TrainConfig field but input_shape must be a `train` option and a control of the
Train form (shown when the form's choices make it apply: conv channels for a conv model...), each
with the field's default and a help text; a config sent through the form, or
through `TrainSpec.argv()` and the CLI's parser, must come back equal to itself.
"""
from __future__ import annotations

import sys
from dataclasses import Field, fields

import pytest
from streamlit.testing.v1 import AppTest

from explorer import state, train_ui, training
from vae_core import cli
from vae_core.config import ModelConfig, TrainConfig
from paths import ROOT  # the repository root (tests/paths.py)

TRAIN = str(ROOT / "app_pages" / "2_Train.py")
SHAPE = (1, 8, 8)  # the digits' shape: the form takes the model's input shape from its data
# The CLI's option names as users have typed them (docs/contracts.md, docs/guide.md, scripts): they must not change.
CLI_NAMES = {"latent_dim": "--latent-dim", "arch": "--arch", "hidden": "--hidden", "conv_channels": "--conv-channels",
             "likelihood": "--likelihood", "gaussian_scale": "--gaussian-scale", "learn_scale": "--learn-scale",
             "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "beta": "--beta",
             "kl_schedule": "--kl-schedule", "warmup_fraction": "--warmup", "beta_start": "--beta-start",
             "cycles": "--cycles", "ramp_fraction": "--ramp", "free_bits": "--free-bits",
             "eval_fraction": "--eval-fraction", "seed": "--seed", "bf16": "--bf16"}


def _options() -> list[Field]:
    return [f for cls in (ModelConfig, TrainConfig) for f in fields(cls) if f.name != "input_shape"]


def _other(f: Field):
    """A valid value of field f that is not its default (one more layer, one more unit, another choice...)."""
    d, m = f.default, f.metadata
    if isinstance(d, bool):
        return not d
    if m.get("choices"):
        return next(c for c in reversed(m["choices"]) if c != d)
    if isinstance(d, tuple):
        return d + d[-1:]  # conv_channels (32, 64, 64): 8x8 halves three times, to 1x1
    if isinstance(d, int):
        return d + 1
    return (d + m["hi"]) / 2 if m.get("hi") is not None else 2 * d + 0.5


def _other_configs() -> tuple[ModelConfig, TrainConfig]:
    """Configs where every option differs from its default."""
    model = {f.name: _other(f) for f in fields(ModelConfig) if f.name != "input_shape"}
    return ModelConfig(input_shape=SHAPE, **model), TrainConfig(**{f.name: _other(f) for f in fields(TrainConfig)})


def _cli_text(value) -> str:
    """How a person types the value: 512,256 for a tuple; a float's repr reads back exactly."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------- CLI

def test_every_option_is_a_train_option_with_the_fields_default_and_help(capsys):
    assert set(CLI_NAMES) <= {f.name for f in _options()}, "a field the CLI had is gone"
    defaults = cli.build_parser().parse_args(["train", "--out", "r"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare words
    for f in _options():
        flag = CLI_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
        assert getattr(defaults, f.name) == f.default, f.name
        args = ["train", "--out", "r"] + ([flag] if isinstance(f.default, bool) else [flag, _cli_text(_other(f))])
        assert getattr(cli.build_parser().parse_args(args), f.name) == _other(f), f"{flag} does not set {f.name}"
        assert f.metadata["help"] and " ".join(f.metadata["help"].split()) in help_text, f.name
        assert f"{flag} " in help_text, flag


@pytest.mark.parametrize("configs", [(ModelConfig(input_shape=SHAPE), TrainConfig()), _other_configs()],
                         ids=["defaults", "every-option-changed"])
def test_spec_argv_parses_back_to_the_same_configs(tmp_path, configs):
    model, train = configs
    spec = training.TrainSpec(data="digits", name="r", model=model, train=train, n=50)
    argv = spec.argv(tmp_path / "r", tmp_path / "p.jsonl")
    assert argv[:4] == [sys.executable, "-m", "vae_core", "train"]
    ns = cli.build_parser().parse_args(argv[3:])
    assert cli._configs(ns, SHAPE) == (model, train)
    assert (ns.data, ns.n, ns.out, ns.progress_jsonl, ns.quiet) == ("digits", 50, str(tmp_path / "r"),
                                                                    str(tmp_path / "p.jsonl"), True)


def test_other_configs_change_every_option():
    model, train = _other_configs()  # the round trip above covers a field only if it is changed
    for f in _options():
        assert getattr(model if f.name in ModelConfig.__dataclass_fields__ else train, f.name) != f.default, f.name


# -------------------------------------------------------------------------------------------- form

@pytest.fixture
def train_page(tmp_path, monkeypatch) -> AppTest:
    """The Train page on an empty runs dir (explorer.state read the variable at import: patched too)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(runs))
    monkeypatch.setattr(state, "RUNS_DIR", runs)
    at = AppTest.from_file(TRAIN, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _controls(at: AppTest) -> dict:
    """The form's widgets by key."""
    kinds = ("number_input", "text_input", "selectbox", "checkbox", "toggle", "radio", "slider")
    return {w.key: w for kind in kinds for w in at.get(kind)}


def _as_field(f: Field, shown):
    """A control's value as the field holds it: '32,64' in a text box is (32, 64)."""
    return tuple(int(v) for v in shown.split(",")) if isinstance(f.default, tuple) else shown


def _applying(at: AppTest, name: str) -> dict:
    """The form's widgets once the choices make field `name` apply (conv channels need arch conv...)."""
    if name in train_ui.APPLIES:
        chooser, value = train_ui.APPLIES[name]
        at.selectbox(key="tr_" + chooser).set_value(value).run()
        assert not at.exception, [e.value for e in at.exception]
    return _controls(at)


def test_every_option_is_a_form_control_with_the_fields_default_and_help(train_page):
    laid_out = {n for row in train_ui.ROWS for n in row}
    assert laid_out <= {f.name for f in _options()}, "the form's layout names a field that does not exist"
    for f in _options():
        controls = _applying(train_page, f.name)
        w = controls.get("tr_" + f.name)
        assert w is not None, f"no control for {f.name}"
        assert _as_field(f, w.value) == f.default, f.name
        assert w.label and w.help, f.name
    # the labels a person (and the browser test) finds the controls by
    labels = {w.key: w.label for w in controls.values()}
    assert (labels["tr_hidden"], labels["tr_latent_dim"], labels["tr_epochs"]) == ("Hidden sizes", "Latent size D",
                                                                                   "Epochs")


def test_the_form_sends_the_config_itself(train_page, monkeypatch):
    sent = []

    def capture(self, spec, runs_dir):  # in place of starting a subprocess
        sent.append(spec)
        raise ValueError("captured by the test")

    monkeypatch.setattr(training.Registry, "start", capture)
    at = train_page
    at.selectbox(key="tr_data").set_value("digits")
    for name in train_ui.CHOOSERS:  # the choices first: they decide which fields the form shows
        at.selectbox(key="tr_" + name).set_value(_other(next(f for f in _options() if f.name == name))).run()
    controls = _controls(at)
    shown = {f.name for f in _options() if "tr_" + f.name in controls}
    for f in _options():
        if f.name in shown:
            value = _other(f)
            controls["tr_" + f.name].set_value(_cli_text(value) if isinstance(value, tuple) else value)
    at = next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "captured by the test" in " ".join(e.value for e in at.error)
    assert len(sent) == 1 and sent[0].data == "digits"
    # every field shown is sent as set; a field that does not apply with these choices, at its default
    import dataclasses

    model, train = _other_configs()
    hidden = {f.name: f.default for f in _options() if f.name not in shown}
    assert hidden and set(hidden) <= set(train_ui.APPLIES), hidden
    model = dataclasses.replace(model, **{k: v for k, v in hidden.items() if k in ModelConfig.__dataclass_fields__})
    train = dataclasses.replace(train, **{k: v for k, v in hidden.items() if k in TrainConfig.__dataclass_fields__})
    assert (sent[0].model, sent[0].train) == (model, train)
