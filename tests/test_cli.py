"""The CLI contract: `python -m vae_core train|diagnose`, run as a user would, in a subprocess.

The contract: docs/contracts.md, "Command line" and "Diagnose report keys".

Errors must be one line on stderr, a non-zero exit and no traceback; `diagnose --json` prints
exactly one JSON object on stdout.
"""
from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from paths import ROOT as REPO  # the repository root (tests/paths.py)

REPORT_KEYS = ["elbo", "recon_nll", "kl", "kl_per_dim", "active_units", "collapsed_dims", "mutual_info",
               "mutual_info_max", "iwae", "iwae_k", "variance_law", "blur", "mig"]
TRAIN_OPTIONS = ["--data", "--arch", "--hidden", "--latent-dim", "--likelihood", "--beta", "--kl-schedule",
                 "--free-bits", "--epochs", "--batch-size", "--lr", "--seed", "--out", "--warmup", "--beta-start",
                 "--cycles", "--ramp", "--gaussian-scale", "--learn-scale", "--conv-channels", "--bf16"]
DIAGNOSE_OPTIONS = ["--data", "--json", "--seed", "--iwae-k", "--n-points"]


def cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    assert r.returncode != 0, r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    assert r.stdout == ""
    return lines[0]


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("cli") / "tmp" / "run"
    r = cli("train", "--data", "digits", "--epochs", "2", "--latent-dim", "2", "--hidden", "32", "--out", out)
    return out, r


@pytest.fixture(scope="module")
def digits_ts(digits_run) -> Path:
    from vae_core.runs.model_files import export_torchscript
    from vae_core.runs.run_load import load_run

    run, _ = digits_run
    return export_torchscript(load_run(run).model, run.parent / "digits.ts")


# ------------------------------------------------------------------------------------------- train

def test_train_end_to_end(digits_run):
    from vae_core.runs.run_load import is_run_dir, load_run

    out, r = digits_run
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "100%" in r.stderr and "step" in r.stderr  # the tqdm progress bar
    assert "saved" in r.stderr and r.stdout == ""
    assert is_run_dir(out)
    run = load_run(out)
    assert run.model.latent_dim == 2 and run.model.input_shape == (1, 8, 8)
    assert len(run.history) == 2 and run.dataset == "digits"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["hidden"] == [32] and cfg["train"]["epochs"] == 2
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dir left


@pytest.mark.parametrize("sub,options", [("train", TRAIN_OPTIONS), ("diagnose", DIAGNOSE_OPTIONS)])
def test_help_lists_every_option(sub, options):
    r = cli(sub, "--help")
    assert r.returncode == 0
    for opt in options:
        assert opt in r.stdout, opt


def test_top_level_help():
    r = cli("--help")
    assert r.returncode == 0 and "train" in r.stdout and "diagnose" in r.stdout


def test_train_unknown_dataset(tmp_path):
    assert_one_line_error(cli("train", "--data", "cifar", "--out", tmp_path / "r"), "unknown dataset", "cifar")
    assert not (tmp_path / "r").exists()


def test_train_missing_data_file(tmp_path):
    assert_one_line_error(cli("train", "--data", tmp_path / "missing.npy", "--out", tmp_path / "r"), "missing.npy")


def test_train_nan_npy(tmp_path):
    x = np.random.default_rng(0).random((20, 8, 8)).astype(np.float32)
    x[3, 4, 4] = np.nan
    np.save(tmp_path / "bad.npy", x)
    assert_one_line_error(cli("train", "--data", tmp_path / "bad.npy", "--out", tmp_path / "r"), "nan")
    assert not (tmp_path / "r").exists()


def test_train_out_exists(tmp_path):
    (tmp_path / "r").mkdir()
    assert_one_line_error(cli("train", "--data", "digits", "--out", tmp_path / "r"), "exists", "--overwrite")


def test_train_bad_arch(tmp_path):
    assert_one_line_error(cli("train", "--data", "digits", "--arch", "resnet", "--out", tmp_path / "r"), "--arch")


def test_train_conv_too_deep_for_8x8(tmp_path):
    r = cli("train", "--data", "digits", "--arch", "conv", "--conv-channels", "8,16,32,64", "--epochs", "1",
            "--out", tmp_path / "r")
    assert_one_line_error(r, "divisible", "8x8")
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------------- diagnose

def _check_report(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    rep = json.loads(r.stdout)  # the whole of stdout is one JSON object
    assert isinstance(rep, dict)
    for k in REPORT_KEYS:
        assert k in rep, k
    for k in ("laplacian_ratio", "variance_loss", "spectrum_ratio"):
        assert k in rep["blur"], k
    assert rep["iwae"] >= rep["elbo"]
    assert sum(rep["kl_per_dim"]) == pytest.approx(rep["kl"], rel=1e-6)
    assert len(rep["kl_per_dim"]) == len(rep["variance_law"])
    # the estimator can dip below 0 by sampling noise (He et al. issue #8), never to -1
    assert -1 < rep["mutual_info"] <= rep["mutual_info_max"] + 1e-9
    assert rep["mutual_info"] >= -4 * rep["mutual_info_se"], (rep["mutual_info"], rep["mutual_info_se"])
    return rep


def test_diagnose_json(digits_run):
    run, _ = digits_run
    rep = _check_report(cli("diagnose", run, "--data", "digits", "--json", "--iwae-k", "10"))
    assert len(rep["kl_per_dim"]) == 2 and rep["iwae_k"] == 10 and rep["mig"] is None


def test_diagnose_scores_the_runs_own_held_out_points(tmp_path):
    """A run trained with --seed 3 is diagnosed on split seed 3 whatever the Monte Carlo --seed;
    its held-out points are exactly those Dataset.split(0.2, 3) holds out."""
    from vae_core.data import load_dataset
    from vae_core.metrics.pipeline.report import eval_points

    out = tmp_path / "run3"
    assert cli("train", "--data", "digits", "--epochs", "1", "--latent-dim", "2", "--hidden", "16",
               "--seed", "3", "--out", out).returncode == 0
    reps = [json.loads(cli("diagnose", out, "--data", "digits", "--json", "--iwae-k", "5", "--seed", str(s),
                           "--n-points", "100000").stdout) for s in (0, 1)]
    assert [r["split_seed"] for r in reps] == [3, 3] and [r["seed"] for r in reps] == [0, 1]
    held_out = load_dataset("digits").split(0.2, 3)[1]
    assert reps[0]["n_points"] == len(held_out) == len(eval_points(load_dataset("digits"), None, 3))
    # same points, so the closed-form KL (no Monte Carlo in it) is identical across the two seeds
    assert reps[0]["kl"] == pytest.approx(reps[1]["kl"], rel=1e-12)
    override = json.loads(cli("diagnose", out, "--data", "digits", "--json", "--iwae-k", "5",
                              "--split-seed", "0").stdout)
    assert override["split_seed"] == 0 and override["kl"] != pytest.approx(reps[0]["kl"], rel=1e-9)


def test_diagnose_table(digits_run):
    run, _ = digits_run
    r = cli("diagnose", run, "--data", "digits", "--iwae-k", "10")
    assert r.returncode == 0, r.stderr
    assert "ELBO" in r.stdout and "KL" in r.stdout and "IWAE" in r.stdout
    assert len(r.stdout.splitlines()) > 10
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.stdout)


def test_diagnose_torchscript(digits_run, digits_ts):
    run, _ = digits_run
    rep = _check_report(cli("diagnose", digits_ts, "--data", "digits", "--json", "--iwae-k", "10"))
    ref = _check_report(cli("diagnose", run, "--data", "digits", "--json", "--iwae-k", "10"))
    # same weights, same seed: the TorchScript path gives the same closed-form KL
    assert rep["kl"] == pytest.approx(ref["kl"], rel=1e-5)
    assert rep["elbo"] == pytest.approx(ref["elbo"], rel=1e-3)


def test_diagnose_refuses_pickle(tmp_path):
    marker = tmp_path / "PWNED"
    torch.save({"evil": _Payload(marker)}, tmp_path / "model.pt")
    line = assert_one_line_error(cli("diagnose", tmp_path / "model.pt", "--data", "digits"), "pickle")
    assert "safetensors" in line or "torch.jit" in line
    with open(tmp_path / "raw.pkl", "wb") as f:
        pickle.dump({"evil": _Payload(marker)}, f)
    assert_one_line_error(cli("diagnose", tmp_path / "raw.pkl", "--data", "digits"), "pickle")
    assert not marker.exists()


def test_diagnose_shape_mismatch(digits_run):
    run, _ = digits_run
    assert_one_line_error(cli("diagnose", run, "--data", "mnist"), "1x8x8", "1x28x28")


def test_diagnose_bad_data_file(digits_run, tmp_path):
    run, _ = digits_run
    (tmp_path / "junk.npy").write_text("this is not a numpy file")
    assert_one_line_error(cli("diagnose", run, "--data", tmp_path / "junk.npy"), "junk.npy")
    x = np.full((10, 8, 8), np.inf, dtype=np.float32)
    np.save(tmp_path / "inf.npy", x)
    assert_one_line_error(cli("diagnose", run, "--data", tmp_path / "inf.npy"), "inf")


def test_diagnose_missing_model(tmp_path):
    assert_one_line_error(cli("diagnose", tmp_path / "nothing", "--data", "digits"), "nothing")


def test_sprites_gives_numeric_mig(tmp_path):
    out = tmp_path / "sprites"
    r = cli("train", "--data", "sprites", "--n", "400", "--epochs", "2", "--latent-dim", "4", "--hidden", "32",
            "--batch-size", "64", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    rep = _check_report(cli("diagnose", out, "--data", "sprites", "--json", "--n-points", "300", "--iwae-k", "5"))
    assert isinstance(rep["mig"], float) and 0.0 <= rep["mig"] <= 1.0


# ------------------------------------------------------------------------------------ shipped run

def _reference_per_point(model, x: torch.Tensor, k: int, seed: int) -> dict[str, np.ndarray]:
    """Per-point ELBO (mean of k log-weights), closed-form KL and IWAE L_k, written out independently."""
    from torch.distributions import Normal

    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        mu, logvar = model.encode(x)
        q = Normal(mu, torch.exp(0.5 * logvar))
        kl = torch.distributions.kl_divergence(q, Normal(0.0, 1.0)).sum(1).double()
        log_w = []
        for _ in range(k):
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
            log_px = -F.binary_cross_entropy_with_logits(model.decode_logits(z), x, reduction="none").sum((1, 2, 3))
            log_w.append((log_px + Normal(0.0, 1.0).log_prob(z).sum(1) - q.log_prob(z).sum(1)).double())
        log_w = torch.stack(log_w)  # (k, N)
    return {"elbo": log_w.mean(0).numpy(), "kl": kl.numpy(),
            "iwae": (torch.logsumexp(log_w, 0) - math.log(k)).numpy()}


@pytest.mark.slow
def test_shipped_default_run_on_mnist():
    """runs/default on mnist: held-out ELBO >= -118 and two seeds agree within their standard error.

    `diagnose --seed s` draws its evaluation split with s, so only seed 0 (the run's training seed)
    is held out from training; another seed would mostly score training digits (measured: ELBO
    -104.2 at seed 1 vs -111.9 at seed 0). To compare seeds on held-out data only, both seeds
    diagnose the run's own 1,000 held-out digits, each on its seeded 200-point subset. The two
    means differ by subsample and Monte Carlo noise; the tolerance is 4 standard errors of the
    difference, SE = sqrt(2 * sd^2 / 200) from the per-point spread sd computed below (treating
    the subsets as independent, which overstates SE a little since they overlap).
    """
    from vae_core.runs.run_load import load_run
    from vae_core.data import load_dataset
    from vae_core.metrics.pipeline.report import diagnose

    # the points and k given: under the default time budget a loaded machine may choose fewer (999 was seen)
    r = cli("diagnose", REPO / "runs" / "default", "--data", "mnist", "--n-points", "1000", "--iwae-k", "100",
            "--json", timeout=600)
    rep = _check_report(r)
    assert rep["n_points"] == 1000 and rep["iwae_k"] == 100
    assert rep["elbo"] >= -118.0, rep["elbo"]

    run = load_run(REPO / "runs" / "default")
    held_out = load_dataset("mnist").split(run.config["train"]["eval_fraction"], run.config["seed"])[1]
    ref = _reference_per_point(run.model, held_out.x, k=100, seed=123)
    # the CLI's seed-0 numbers are on exactly these 1,000 points: check them against the reference
    se_full = {key: float(v.std(ddof=1)) / math.sqrt(len(v)) for key, v in ref.items()}
    assert rep["kl"] == pytest.approx(float(ref["kl"].mean()), abs=1e-3)
    # same points, independent MC draws: only MC noise, far below the subsample SE
    assert abs(rep["elbo"] - float(ref["elbo"].mean())) < se_full["elbo"]
    assert abs(rep["iwae"] - float(ref["iwae"].mean())) < se_full["iwae"]

    reports = [diagnose(run.model, held_out, n_points=None, iwae_k=100, seed=s) for s in (0, 1)]
    n_sub = reports[0].n_points
    assert n_sub == reports[1].n_points == 200
    for key in ("elbo", "kl", "iwae"):
        sd = float(ref[key].std(ddof=1))
        tol = 4 * math.sqrt(2 * sd ** 2 / n_sub)
        a, b = (getattr(rp, key) for rp in reports)
        assert abs(a - b) < tol, (key, a, b, tol)
    assert min(rp.elbo for rp in reports) >= -118.0
