"""Issue 11's figures side by side in one run: training (single process vs torchrun), maps of 100k
points, large data memory-mapped, and the app's start.

Each part lives in its own module (`benchmarks/scale_<part>.py`, each runnable alone) with
`run(quick) -> [(figure, value), ...]`; this script runs them one after another in this process
order and prints one table, with the 1-minute load average before and after each part (the 2 cores
of this machine are shared, so every figure moves with the load).

Run from the repo root: python -m benchmarks.scale [--quick] [--part train maps data start]
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import time

from benchmarks.common import load

PARTS = ("train", "maps", "data", "start")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes: a check that every part runs")
    ap.add_argument("--part", nargs="*", choices=PARTS, default=list(PARTS))
    args = ap.parse_args(argv)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, quick={args.quick}")
    rows: list[tuple[str, str, str]] = []
    for part in args.part:
        try:
            mod = importlib.import_module(f"benchmarks.scale_{part}")
        except ModuleNotFoundError:
            rows.append((part, "(not present)", ""))
            continue
        before = load()
        t0 = time.perf_counter()
        for name, value in mod.run(args.quick):
            rows.append((part, name, value))
        rows.append((part, "part wall time", f"{time.perf_counter() - t0:.1f} s (load {before} -> {load()})"))
    width = max(len(r[1]) for r in rows) if rows else 10
    for part, name, value in rows:
        print(f"{part:6} {name:{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
