"""What the benchmarks share: the repository root, the machine's load, a timing loop, percentiles,
a random .npy of images, and the two ways a benchmark prints its rows of (figure, value).

Every figure moves with the load (the machine's cores are shared), so each benchmark prints the
1-minute load average beside its figures. Benchmarks print; they never assert.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load(digits: int = 2) -> str:
    """The 1-minute load average, formatted with `digits` decimals."""
    return f"{os.getloadavg()[0]:.{digits}f}"


def load_line(digits: int = 1) -> str:
    """'load average before: 1.3 on 2 cores'."""
    return f"load average before: {load(digits)} on {os.cpu_count()} cores"


def timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    """(wall seconds, result) of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def time_each(fn: Callable, items: Iterable) -> float:
    """Wall seconds to call `fn(item)` for every item: the timing loop of a read or step benchmark."""
    t0 = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - t0


def percentile(xs, q: float) -> float:
    """q-th percentile (0-100) with linear interpolation (numpy's default); nan for no values."""
    xs = np.asarray(list(xs), dtype=float)
    return float(np.percentile(xs, q)) if xs.size else float("nan")


def random_npy(path: Path, shape: tuple[int, ...], seed: int = 0, chunk: int = 50_000) -> float:
    """Write random uint8 images of `shape` to a .npy at `path` a chunk of rows at a time (the file may
    be larger than memory); returns its size in MB."""
    rng = np.random.default_rng(seed)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    for s in range(0, shape[0], chunk):
        mm[s:s + chunk] = rng.integers(0, 256, size=mm[s:s + chunk].shape, dtype=np.uint8)
    mm.flush()
    del mm
    return Path(path).stat().st_size / 2**20


def print_table(rows: list[tuple[str, str]]) -> None:
    """Rows as a Markdown table: | measure | value |."""
    w = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(w)} | value |")
    print(f"|{'-' * (w + 2)}|-------|")
    for name, val in rows:
        print(f"| {name.ljust(w)} | {val} |")


def print_figures(rows: Iterable[tuple[str, str]], width: int | None = None, indent: str = "") -> None:
    """Rows as plain lines: `indent`, the figure padded to `width` (default: the longest), two spaces,
    the value."""
    rows = list(rows)
    width = width if width is not None else max((len(name) for name, _ in rows), default=0)
    for name, value in rows:
        print(f"{indent}{name:{width}}  {value}")


def run_part(run: Callable[[bool], list[tuple[str, str]]], argv: list[str], width: int = 72) -> None:
    """The command line of a `scale_*`-style part with `run(quick)`: `[--quick]`, the load before and
    after, and its rows."""
    quick = "--quick" in argv
    print(f"# load {load()}, quick={quick}")
    print_figures(run(quick), width)
    print(f"# load after {load()}")
