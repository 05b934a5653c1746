"""A .npy larger than the memory budget (issue 11, item 3): load + encode every image with the shipped
model, read in batches with os.pread (the default over VAE_EXPLORER_MMAP_OVER_MB) against the same file loaded whole.

Each case runs in a fresh process; memory from /proc/self/status (VmRSS now, VmHWM peak, RssAnon:
memory the process allocated, RssFile: file pages mapped in) and getrusage. Run from the repo root:
python -m benchmarks.scale_data [--quick]. Prints figures with the load; asserts nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import REPO, load, random_npy, run_part

CHILD = r"""
import json, os, sys, time
def mem():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) / 1024
    return out
base = mem()
import torch
from vae_core.runs.run_load import load_model
from vae_core.data import load_dataset
from vae_core.metrics._common import encode_all
model = load_model("runs/default").eval()
before = mem()
t0 = time.perf_counter()
data = load_dataset(sys.argv[1])
t1 = time.perf_counter()
mu, _ = encode_all(model, data.x, 1000)
t2 = time.perf_counter()
after = mem()
print(json.dumps({"mapped": type(data.x).__name__ == "Images", "n": len(data), "load_s": t1 - t0,
                  "encode_s": t2 - t1, "before": before, "after": after, "mu_sum": float(mu.double().sum())}))
"""


def _case(path: Path, env: dict[str, str]) -> dict:
    e = {**os.environ, "PYTHONPATH": str(REPO), **env}
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=REPO, env=e, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[tuple[str, str]]:
    n = 20_000 if quick else 400_000  # 28x28 uint8: 15.7 MB / 314 MB on disk, x4 as float32
    rows = []
    with tempfile.TemporaryDirectory(prefix="vae-bigdata-") as tmp:
        p = Path(tmp) / "big.npy"
        mb = random_npy(p, (n, 28, 28))
        big = str(10**6)
        cases = {"read in batches (pread)": {"VAE_EXPLORER_MMAP_OVER_MB": "1" if quick else "512"},
                 "loaded whole (before)": {"VAE_EXPLORER_MMAP_OVER_MB": big, "VAE_EXPLORER_MAX_FILE_MB": big,
                                           "VAE_EXPLORER_MAX_DATA_MB": big}}
        res = {}
        for name, env in cases.items():
            before = load()
            r = res[name] = _case(p, env)
            b, a = r["before"], r["after"]
            rows.append((f"{n:,} images ({mb:.0f} MB .npy), {name}: load / encode all",
                         f"{r['load_s']:.2f} s / {r['encode_s']:.2f} s (load {before})"))
            rows.append((f"  {name}: peak RSS / RSS growth / anonymous memory growth",
                         f"{a['VmHWM']:.0f} MB / {a['VmRSS'] - b['VmRSS']:+.0f} MB / "
                         f"{a['RssAnon'] - b['RssAnon']:+.0f} MB (file pages held {a['RssFile']:.0f} MB)"))
        same = abs(res["read in batches (pread)"]["mu_sum"] - res["loaded whole (before)"]["mu_sum"]) < 1e-6
        rows.append(("same encodings (sum of mu) both ways", str(same)))
    return rows


if __name__ == "__main__":
    run_part(run, sys.argv[1:])
