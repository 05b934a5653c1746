"""Reading a large .npy in batches: os.pread into our own buffers (what vae_core.data.lazy does, so a
file truncated under the reader is an error, not a SIGBUS) against numpy's memory map (what it did).

Both read the same file, in the same process, alternating, three rounds each: every row in order in
batches of 1,000 (encoding a data set) and 128 random rows at a time (a training batch). Run from
the repo root: python -m benchmarks.data_reads [--quick]. Prints figures with the load; asserts nothing.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import random_npy, run_part, time_each
from vae_core.data.lazy import Images, NpyFile


def _sequential(read, n: int, step: int = 1000) -> float:
    return time_each(read, (slice(s, s + step) for s in range(0, n, step)))


def _random(read, n: int, batches: int, rng: np.random.Generator, bs: int = 128) -> float:
    return time_each(read, [rng.choice(n, bs, replace=False) for _ in range(batches)])


def run(quick: bool) -> list[tuple[str, str]]:
    n = 50_000 if quick else 400_000  # 28x28 uint8 rows: 39 MB / 314 MB
    batches = 500 if quick else 2000
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="vae-reads-") as tmp:
        p = Path(tmp) / "big.npy"
        mb = random_npy(p, (n, 1, 28, 28))
        with open(p, "rb") as f:
            np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f)
            offset = f.tell()
        pread = Images(NpyFile(os.open(p, os.O_RDONLY), p.name, offset, (n, 1, 28, 28), np.dtype(np.uint8))
                       .as_images((1, 28, 28), None), scale=True)
        mapped = np.load(p, mmap_mode="r", allow_pickle=False)

        def via_map(key):  # what Images did with the memory map: copy the rows out as float32 / 255
            return torch.from_numpy(np.array(mapped[key], dtype=np.float32)).div_(255.0)

        readers = {"pread": pread.__getitem__, "memory map": via_map}
        seq: dict[str, list[float]] = {k: [] for k in readers}
        rnd: dict[str, list[float]] = {k: [] for k in readers}
        for r in range(3):
            for name, read in readers.items():
                seq[name].append(_sequential(read, n))
                rnd[name].append(_random(read, n, batches, np.random.default_rng(r)))
        for name in readers:
            best_seq, best_rnd = min(seq[name]), min(rnd[name])
            rows.append((f"{n:,} rows ({mb:.0f} MB), {name}: all rows in order, batches of 1,000",
                         f"{best_seq:.3f} s best of 3 ({mb / best_seq:,.0f} MB/s)"))
            rows.append((f"  {name}: {batches:,} random batches of 128 rows",
                         f"{best_rnd:.3f} s best of 3 ({best_rnd / batches * 1e6:,.0f} us a batch)"))
        rows.append(("same first 7 rows both ways", str(torch.equal(pread[slice(0, 7)], via_map(slice(0, 7))))))
        del mapped
    return rows


if __name__ == "__main__":
    run_part(run, sys.argv[1:])
