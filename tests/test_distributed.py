"""Training beyond one process: torchrun + DistributedDataParallel (gloo on the CPU), against a single process.

- `torchrun --nproc-per-node 2 -m vae_core train` writes ONE run with the contract's files, one history
  row per epoch, and a held-out ELBO within a nat of a single-process run of the same config;
  only rank 0 writes (one 'start' and one 'saved' line in --progress-jsonl, no other file).
- Each rank takes a disjoint half of every epoch's permutation, and together the ranks' batches of a
  step are the batch a single process takes at that step (recorded by a model that notes the ids
  of the items it sees, under torch.multiprocessing spawn with the same entry points as the CLI).
- A refusal on rank 0 (an existing --out) or on every rank (missing data) ends both ranks with one sentence.
"""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from vae_core import ModelConfig, TrainConfig, VAE
from vae_core.data import Dataset
from vae_core.train import fit
from paths import ROOT as REPO  # the repository root (tests/paths.py)

SMALL = ["--data", "digits", "--latent-dim", "4", "--hidden", "64", "--batch-size", "64", "--epochs", "6",
         "--seed", "3", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*args: str | Path) -> subprocess.Popen:
    """`torchrun --nproc-per-node 2 -m vae_core train ARGS`, started (wait with _done)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's default too; set here to keep its banner out
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-port", str(_free_port()), "-m", "vae_core", "train", *map(str, args)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _done(p: subprocess.Popen, timeout: float = 180) -> subprocess.CompletedProcess:
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _history(run: Path) -> list[dict[str, float]]:
    with open(run / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """The same config trained by one process and by torchrun with 2 processes."""
    from vae_core.cli import main

    root = tmp_path_factory.mktemp("ddp")
    job = _torchrun(*SMALL, "--out", root / "ddp" / "run", "--progress-jsonl", root / "ddp" / "progress.jsonl")
    # the reference meanwhile, in this process: the CLI's own entry point, one process
    assert main(["train", *SMALL, "--out", str(root / "single" / "run")]) == 0
    r = _done(job)
    assert r.returncode == 0, r.stderr
    return root / "single" / "run", root / "ddp" / "run", r


def test_torchrun_trains_one_run_with_the_contract(runs):
    single, ddp, r = runs
    assert sorted(p.name for p in ddp.parent.iterdir()) == ["progress.jsonl", "run"]  # no second run, no temp dir
    assert {"config.json", "model.safetensors", "history.csv"} <= {p.name for p in ddp.iterdir()}
    rows = _history(ddp)
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert list(_history(single)[0]) == list(rows[0])  # the same columns
    cfg_s, cfg_d = (json.loads((p / "config.json").read_text()) for p in (single, ddp))
    for key in ("model", "train", "dataset", "n_train", "n_eval"):
        assert cfg_d[key] == cfg_s[key], key
    # the epoch's training means cover both ranks' halves: every item of the split but the odd one out
    assert rows[0]["samples_per_s"] * rows[0]["seconds"] == pytest.approx(cfg_s["n_train"] // 2 * 2, rel=1e-6)
    lines = [json.loads(line) for line in (ddp.parent / "progress.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines].count("start") == 1  # the second rank never writes
    assert [e["event"] for e in lines].count("saved") == 1
    assert [e["epoch"] for e in lines if e["event"] == "epoch"] == [1, 2, 3, 4, 5, 6]
    assert r.stderr.count("saved ") == 1  # one rank prints


def test_torchrun_matches_a_single_process_held_out_elbo(runs):
    single, ddp, _ = runs
    h_s, h_d = _history(single), _history(ddp)
    # a meaningful comparison: training moved the bound by far more than the tolerance
    assert h_s[-1]["eval_elbo"] - h_s[0]["eval_elbo"] > 3.0
    assert abs(h_d[-1]["eval_elbo"] - h_s[-1]["eval_elbo"]) < 1.0, (h_d[-1]["eval_elbo"], h_s[-1]["eval_elbo"])


def test_the_distributed_run_saved_the_weights_rank_zero_evaluated(runs):
    from vae_core.runs.run_load import load_model
    from vae_core.data import load_dataset

    _, ddp, _ = runs
    model = load_model(ddp)
    assert all(p.device.type == "cpu" for p in model.parameters())
    _, ev = load_dataset("digits", seed=3).split(TrainConfig.eval_fraction, 3)  # the CLI's split for --seed 3
    with torch.inference_mode():
        mu, logvar = model.encode(ev.x)
    kl = (0.5 * (mu.double() ** 2 + logvar.double().exp() - logvar.double() - 1)).sum(1).mean()  # closed form
    assert float(kl) == pytest.approx(_history(ddp)[-1]["eval_kl"], rel=1e-4, abs=1e-4)


def test_a_refusal_on_one_rank_or_every_rank_ends_both_with_one_sentence(runs, tmp_path):
    _, ddp, _ = runs
    before = (ddp / "model.safetensors").read_bytes()
    jobs = [_torchrun(*SMALL, "--out", ddp),  # rank 0 alone checks --out: the other rank must end too
            _torchrun("--data", tmp_path / "missing.npy", "--epochs", "1", "--quiet", "--out", tmp_path / "run")]
    for r, needle in zip(map(_done, jobs), ("already exists", "missing.npy")):
        assert r.returncode != 0
        ours = [line for line in r.stderr.splitlines() if line.startswith("error:")]  # torchrun adds its summary
        assert len(ours) == 1 and needle in ours[0], r.stderr
    assert (ddp / "model.safetensors").read_bytes() == before
    assert not (tmp_path / "run").exists()


# --- the shards themselves, seen from inside the model ------------------------------------------------

N, BATCH, EPOCHS = 40, 8, 2


class _Recorder(VAE):
    """A VAE that notes the id (pixel 0, see _ids_data) of every item its forward sees, per call."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.seen: list[list[int]] = []

    def forward(self, x: torch.Tensor):
        self.seen.append([round(float(v) * 100) for v in x[:, 0, 0, 0]])
        return super().forward(x)


def _ids_data() -> Dataset:
    x = torch.rand(N, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    x[:, 0, 0, 0] = torch.arange(N) / 100  # item i carries its id
    return Dataset(x, "ids")


def _recorded_fit(group=None) -> list[list[int]]:
    torch.manual_seed(0)
    model = _Recorder(ModelConfig(input_shape=(1, 2, 2), hidden=(8,), latent_dim=2))
    fit(model, _ids_data(), None, TrainConfig(epochs=EPOCHS, batch_size=BATCH, seed=5), group=group)
    return model.seen


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    from vae_core import distributed

    group = distributed.from_env().start()  # as the CLI joins a torchrun job
    try:
        Path(out, f"rank{rank}.json").write_text(json.dumps(_recorded_fit(group)))
    finally:
        group.close()


def test_ranks_take_disjoint_halves_that_make_up_the_single_process_batches(tmp_path):
    torch.set_num_threads(1)
    mp.start_processes(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    single = _recorded_fit()  # the reference: one process, same seed
    steps = N // BATCH
    assert len(single) == EPOCHS * steps and [len(s) for s in seen] == [EPOCHS * steps] * 2  # same step count
    for e in range(EPOCHS):
        part = slice(e * steps, (e + 1) * steps)
        halves = [{i for b in s[part] for i in b} for s in seen]
        assert len(halves[0]) == len(halves[1]) == N // 2  # half of the items each ...
        assert not halves[0] & halves[1]  # ... and no item on both ranks
        for b_single, b0, b1 in zip(single[part], seen[0][part], seen[1][part]):
            assert len(b0) == len(b1) == BATCH // 2
            assert sorted(b0 + b1) == sorted(b_single)  # together: the single process's batch of that step


def test_torchrun_is_found_in_the_environment():
    from vae_core import distributed

    assert type(distributed.from_env({})) is distributed.Single
    assert type(distributed.from_env({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"})) is distributed.Single
    g = distributed.from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (type(g), g.rank, g.world_size, g.local_rank, g.is_main) == (distributed.Torchrun, 3, 4, 1, False)
    for bad in ({"WORLD_SIZE": "2"}, {"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"},
                {"WORLD_SIZE": "two", "RANK": "0", "LOCAL_RANK": "0"}):
        with pytest.raises(ValueError) as e:
            distributed.from_env(bad)
        assert "torchrun" in str(e.value) and "\n" not in str(e.value)
    assert distributed.job_rank({}) is None and distributed.job_rank({"WORLD_SIZE": "2", "RANK": "1"}) == 1
