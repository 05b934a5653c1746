"""How long `diagnose` takes and how much memory it holds: wall time per part, peak RSS, progress gaps.

Cases (each run in a fresh subprocess, so its peak memory is its own):
- mlp: the shipped run (`runs/default`, 784-400-16 MLP, in-process) on 1,000 MNIST points with the old fixed
  settings (k = 100; target <= 5 s), and with the default time budget.
- conv64: a VanillaVAE-like TorchScript model (PyTorch-VAE's VanillaVAE: five stride-2 conv layers 32..512
  channels with batch norm, latent 10, 64x64 one channel; random weights; likelihood "gaussian" with no declared
  scale; exported with torch.jit.script) loaded through `vae_core.runs.run_load.load_model`, so it runs in the
  model worker as a user's model would, on the 64x64 `sprites` data. "after": the default budget
  (n_points and iwae_k chosen by it). "before": the old fixed settings (1,000 points, k = 100), too long to
  run here (about 10 minutes), so measured on --before-n points with k = 100 and extrapolated per part
  (encode, iwae, blur x 1000/n; mutual information x its pairwise terms; collapse and mig, fixed costs,
  unchanged), and labelled so.
Peak memory: VmHWM of the process that ran diagnose (the data loaded in it included) and of the model's worker
(/proc/<pid>/status, read before the worker stops). `max progress gap`: the longest wait between two calls of
the progress callback (what the Diagnose page's bar sees). The 1-minute load average is printed before and
after each case: other processes share the 2 cores, so figures move with it.
Run from the repo root: python -m benchmarks.diagnose_speed [--case all|mlp|conv64] [--budget 60]
[--before-n 100] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Tuple

import torch
from torch import nn

from benchmarks.common import REPO as ROOT

RUN = ROOT / "runs" / "default"
OLD_N, OLD_K = 1000, 100  # the fixed settings diagnose used before the time budget


class VanillaVAE64(nn.Module):
    """PyTorch-VAE's VanillaVAE layout (Subramanian 2020) for 64x64 one-channel images, sigmoid output."""

    def __init__(self, latent: int = 10, channels: tuple[int, ...] = (32, 64, 128, 256, 512), in_ch: int = 1):
        super().__init__()
        self.likelihood = "gaussian"  # MSE-trained: no `scale` declared, so diagnose calibrates it
        layers: list[nn.Module] = []
        c = in_ch
        for h in channels:
            layers += [nn.Conv2d(c, h, 3, stride=2, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()]
            c = h
        self.encoder = nn.Sequential(*layers)
        self.fc_mu = nn.Linear(channels[-1] * 4, latent)
        self.fc_var = nn.Linear(channels[-1] * 4, latent)
        self.decoder_input = nn.Linear(latent, channels[-1] * 4)
        rev = list(reversed(channels))
        layers = []
        for a, b in zip(rev[:-1], rev[1:]):
            layers += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(b),
                       nn.LeakyReLU()]
        self.decoder = nn.Sequential(*layers)
        self.final = nn.Sequential(
            nn.ConvTranspose2d(rev[-1], rev[-1], 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(rev[-1]),
            nn.LeakyReLU(), nn.Conv2d(rev[-1], in_ch, 3, padding=1), nn.Sigmoid())
        self.top = channels[-1]

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = torch.flatten(self.encoder(x), 1)
        return self.fc_mu(h), self.fc_var(h)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.final(self.decoder(self.decoder_input(z).view(-1, self.top, 2, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def export_conv64(path: Path, seed: int = 0) -> Path:
    """The VanillaVAE-like model, random weights (batch-norm statistics too), scripted and saved."""
    torch.manual_seed(seed)
    m = VanillaVAE64()
    for mod in m.modules():  # non-trivial batch-norm statistics, as a trained model has
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0.0, 0.1)
            mod.running_var.uniform_(0.5, 2.0)
    torch.jit.save(torch.jit.script(m.eval()), str(path))
    return path


def _hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident set (VmHWM) of a process in MB, None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (5 min {five:.2f}) on {os.cpu_count()} cores"


def _one(case: str, budget: float, before_n: int) -> dict[str, Any]:
    """Run one case in this process; returns its figures."""
    from vae_core.runs.run_load import load_model
    from vae_core.data import load_dataset
    from vae_core.metrics.pipeline.report import AUTO, diagnose
    from vae_core.progress import Progress

    gaps, last = [0.0], [None]

    def progress(_event: Progress) -> None:  # the longest wait between two events (the page's bar)
        now = time.perf_counter()
        if last[0] is not None:
            gaps[0] = max(gaps[0], now - last[0])
        last[0] = now

    worker_pid = None
    with tempfile.TemporaryDirectory() as tmp:
        if case.startswith("mlp"):
            data = load_dataset("mnist")
            model = load_model(RUN)
            model.eval()
        else:
            data = load_dataset("sprites")
            model = load_model(export_conv64(Path(tmp) / "vanilla_vae64.ts"), data.shape)
            worker_pid = model._worker.proc.pid
        kw: dict[str, Any]
        if case.endswith("budget"):
            kw = dict(n_points=AUTO, iwae_k=AUTO, budget_s=budget)
        elif case == "conv64-before":
            kw = dict(n_points=before_n, iwae_k=OLD_K)
        else:
            kw = dict(n_points=OLD_N, iwae_k=OLD_K)
        rss_before = _hwm_mb()
        load_before = _load()
        t = time.perf_counter()
        rep = diagnose(model, data, progress=progress, **kw)
        wall = time.perf_counter() - t
        worker_hwm = _hwm_mb(worker_pid) if worker_pid is not None else None
        if worker_pid is not None:
            model.close()
            if worker_hwm is None:
                worker_hwm = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    d = rep.to_dict()
    return {"case": case, "wall": wall, "n_points": d["n_points"], "iwae_k": d["iwae_k"], "chosen_by": d["chosen_by"],
            "budget_s": d["budget_s"], "predicted_s": d["predicted_seconds"], "over_budget": d["over_budget"],
            "choice": d["choice"], "timings": rep.timings, "parent_hwm_mb": _hwm_mb(),
            "parent_hwm_before_mb": rss_before, "worker_hwm_mb": worker_hwm, "max_progress_gap_s": gaps[0],
            "elbo": d["elbo"], "elbo_se": d["elbo_se"], "iwae": d["iwae"], "iwae_se": d["iwae_se"],
            "rows_per_call": d["rows_per_call"], "load_before": load_before, "load_after": _load(),
            "threads": torch.get_num_threads(), "points": d.get("points"), "budget_cut": d.get("budget_cut"),
            "mutual_info": d["mutual_info"], "mutual_info_max": d["mutual_info_max"]}


def _run(case: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.diagnose_speed", "--_one", case, "--budget", str(args.budget),
           "--before-n", str(args.before_n)] + (["--threads", str(args.threads)] if args.threads else [])
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{case} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _extrapolate(r: dict[str, Any], n_to: int) -> dict[str, float]:
    """Per-part seconds of a run on r['n_points'] points scaled to n_to points (same k)."""
    n = r["n_points"]
    b_from, b_to = min(500, n), min(500, n_to)
    scale = {"encode": n_to / n, "iwae": n_to / n, "blur": n_to / n, "aggregate": n_to / n, "mig": 1.0,
             "mutual_info": (n_to // b_to) * b_to * b_to / ((n // b_from) * b_from * b_from), "collapse": 1.0}
    return {p: s * scale.get(p, 1.0) for p, s in r["timings"].items() if p != "total"}


def _print(r: dict[str, Any], label: str) -> None:
    mb = (lambda v: "n/a" if v is None else f"{v:,.0f} MB")
    print(f"{label}: {r['n_points']} points, k = {r['iwae_k']} ({r['chosen_by']}"
          + (f", budget {r['budget_s']:g} s, predicted {r['predicted_s']:.1f} s" if r["budget_s"] else "") + ")")
    print(f"  wall {r['wall']:.1f} s; peak RSS: diagnosing process {mb(r['parent_hwm_mb'])} (before diagnose "
          f"{mb(r['parent_hwm_before_mb'])}), model worker {mb(r['worker_hwm_mb'])}; longest progress gap "
          f"{r['max_progress_gap_s']:.2f} s; {r['rows_per_call']} images per model call")
    print("  parts: " + ", ".join(f"{p} {s:.2f}" for p, s in r["timings"].items()))
    print(f"  elbo {r['elbo']:.2f} ± {r['elbo_se']:.2f}, iwae {r['iwae']:.2f} ± {r['iwae_se']:.2f}")
    if r.get("points"):
        print("  points per figure: " + ", ".join(f"{p} {v}" for p, v in r["points"].items())
              + f"; MI {r['mutual_info']:.2f} of its ceiling {r['mutual_info_max']:.2f}")
    for part, cut in (r.get("budget_cut") or {}).items():
        print(f"  the budget stopped {part} on {cut['used']} of {cut['planned']} points")
    if r["chosen_by"] == "budget":
        print(f"  why: {r['choice']}")
    print(f"  load average before {r['load_before']}, after {r['load_after']}; torch threads {r['threads']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("all", "mlp", "conv64"), default="all")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds (diagnose's default budget)")
    ap.add_argument("--before-n", type=int, default=100, help="conv64 'before': points measured, then extrapolated")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--_one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._one:
        print(json.dumps(_one(args._one, args.budget, args.before_n)))
        return
    print(f"machine: {os.cpu_count()} cores, load average now {_load()}")
    if args.case in ("all", "mlp"):
        print("\nmlp: runs/default (784-400-16, in-process) on mnist")
        r = _run("mlp-fixed", args)
        _print(r, "  old fixed settings (target <= 5 s)")
        _print(_run("mlp-budget", args), "  default budget")
    if args.case in ("all", "conv64"):
        print("\nconv64: VanillaVAE-like TorchScript (5 conv layers 32..512 + batch norm, latent 10, 1x64x64, "
              "gaussian), in the model worker, on sprites")
        before = _run("conv64-before", args)
        _print(before, f"  before, MEASURED on {before['n_points']} points (old k = {OLD_K})")
        parts = _extrapolate(before, OLD_N)
        print(f"  before, EXTRAPOLATED to the old fixed settings ({OLD_N} points, k = {OLD_K}): about "
              f"{sum(parts.values()):.0f} s (" + ", ".join(f"{p} {s:.0f}" for p, s in parts.items()) + ")")
        _print(_run("conv64-budget", args), "  after, default budget")
    print(f"\nload average at the end {_load()}")


if __name__ == "__main__":
    main()
