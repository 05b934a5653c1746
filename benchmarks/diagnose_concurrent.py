"""N `python -m vae_core diagnose` processes of a conv model at once, against the same N one after another.

The model: benchmarks/diagnose_speed.py's VanillaVAE-like TorchScript (five stride-2 convs 32..512 with
batch norm, latent 10, 1x64x64, random weights), run in its sandboxed worker as a user's model would,
on `sprites`, each with `--budget B`. Before the machine-wide core slots (vae_core/cores.py), eight
at once with --budget 20 were all still running after 300 s while one alone took about 23 s: every
process and worker ran 2 torch threads on 2 cores. Prints each mode's wall time, the ratio
(at once / one after another; the aim is about 1.5 or less), the points each report used, and the
load average. Asserts nothing.

Run from the repo root: `python -m benchmarks.diagnose_concurrent [--n 8] [--budget 20]`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, load_line
from benchmarks.diagnose_speed import export_conv64



def _cmd(model: Path, budget: float) -> list[str]:
    return [sys.executable, "-m", "vae_core", "diagnose", str(model), "--data", "sprites", "--budget", str(budget),
            "--json", "--quiet"]


def _points(out: str) -> str:
    try:
        rep = json.loads(out)
    except ValueError:
        return "?"
    return f"{rep.get('n_points')} pts, k = {rep.get('iwae_k')}"


def run(n: int, model: Path, budget: float, at_once: bool, env: dict) -> tuple[float, list[str]]:
    """(wall seconds, each report's points) for n diagnoses, at once or one after another."""
    t0 = time.perf_counter()
    if at_once:
        procs = [subprocess.Popen(_cmd(model, budget), cwd=REPO, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for _ in range(n)]
        outs = [p.communicate()[0] for p in procs]
    else:
        outs = [subprocess.run(_cmd(model, budget), cwd=REPO, env=env, capture_output=True, text=True).stdout
                for _ in range(n)]
    return time.perf_counter() - t0, [_points(o) for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--budget", type=float, default=20.0)
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        model = export_conv64(Path(tmp) / "vanilla64.ts")
        print(f"{load_line()}; {a.n} diagnoses, "
              f"--budget {a.budget:g}")
        seq, seq_pts = run(a.n, model, a.budget, False, env)
        print(f"  one after another: {seq:.0f} s ({seq / a.n:.1f} s each); {sorted(set(seq_pts))}; "
              f"load {os.getloadavg()[0]:.1f}")
        par, par_pts = run(a.n, model, a.budget, True, env)
        print(f"  all at once:       {par:.0f} s; {sorted(set(par_pts))}; load {os.getloadavg()[0]:.1f}")
        print(f"  ratio at once / one after another: {par / seq:.2f}")


if __name__ == "__main__":
    main()
