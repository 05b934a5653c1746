"""A run's history.csv with a cell that is not a number is refused naming the file, the row and the
column (issue 19, item 11); empty cells, nan and inf load, as a diverged training writes them.

Before: "could not convert string to float: 'n/a'", with no file, row or column.
"""
from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pytest

from vae_core import cli
from vae_core.errors import CheckpointError
from vae_core.runs.run_load import load_run, read_history


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "r"
    assert cli.main(["train", "--data", "digits", "--epochs", "3", "--hidden", "16", "--latent-dim", "2",
                     "--record-codes", "0", "--quiet", "--out", str(out)]) == 0
    return out


def _with_cell(run: Path, tmp_path: Path, row: int, col: str, value: str) -> Path:
    """A copy of `run` whose history.csv has `value` in data row `row` (1 = first after the header), column `col`."""
    out = tmp_path / "edited"
    shutil.copytree(run, out)
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.reader(f))
    rows[row][rows[0].index(col)] = value
    with open(out / "history.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return out


@pytest.mark.parametrize("value", ["n/a", "abc", "--", "1,5", "0x10"])
def test_text_in_a_number_column_names_file_row_and_column(run, tmp_path, value):
    bad = _with_cell(run, tmp_path, 3, "kl", value)
    with pytest.raises(CheckpointError) as e:
        load_run(bad)
    msg = str(e.value)
    assert msg.startswith(f"history.csv row 3 (line 4), column kl: {value!r} is not a number; "), msg
    assert "\n" not in msg and "could not convert" not in msg


def test_the_cli_says_it_in_one_line(run, tmp_path, capsys):
    bad = _with_cell(run, tmp_path, 2, "loss", "n/a")
    assert cli.main(["diagnose", str(bad), "--data", "digits", "--n-points", "50", "--json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and "history.csv row 2 (line 3), column loss: 'n/a' is not a number" in err[0], err


@pytest.mark.parametrize("value,want", [("", math.nan), ("nan", math.nan), ("NaN", math.nan), ("inf", math.inf),
                                        ("-inf", -math.inf), ("1e-3", 0.001)])
def test_empty_nan_and_inf_cells_load(run, tmp_path, value, want):
    got = read_history(_with_cell(run, tmp_path, 2, "eval_elbo", value))[1]["eval_elbo"]
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_a_row_longer_than_the_header_is_named(run, tmp_path):
    out = tmp_path / "long"
    shutil.copytree(run, out)
    lines = (out / "history.csv").read_text().splitlines()
    lines[1] += ",7,8"
    (out / "history.csv").write_text("\n".join(lines) + "\n")
    n = len(lines[0].split(","))
    with pytest.raises(CheckpointError, match=rf"history.csv row 1 \(line 2\) has {n + 2} cells but the header names {n}"):
        read_history(out)


def test_a_diverged_run_as_training_writes_it_loads(tmp_path):
    out = tmp_path / "nan"
    assert cli.main(["train", "--data", "digits", "--epochs", "10", "--lr", "1e6", "--batch-size", "2000",
                     "--hidden", "16", "--latent-dim", "2", "--record-codes", "0", "--quiet", "--out", str(out)]) == 0
    cells = (out / "history.csv").read_text().lower()
    assert "nan" in cells or "inf" in cells  # the stopped run's history holds non-finite figures
    hist = load_run(out).history
    assert hist and any(not math.isfinite(v) for row in hist for v in row.values())
