"""The map's find-and-filter at scale (issue 22, item 4): the filter mask (numpy, no Python loop) and the
filtered map figure's JSON, at 100,000 and 1,000,000 points. `python -m benchmarks.filter_speed`"""
from __future__ import annotations

import time

import numpy as np

from explorer.figures import map_base_figure
from explorer.map_filter import MapFilter, filter_mask


def best(fn, reps: int = 3) -> float:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    rng = np.random.default_rng(0)
    for n in (100_000, 1_000_000):
        y, kl, recon = rng.integers(0, 10, n), rng.gamma(2, 3, n), rng.normal(80, 10, n)
        factors = rng.integers(0, 4, (n, 2))
        f = MapFilter(index=(1000, n - 1000), labels=(3, 7), factor=(0, (1,)), kl=(2, 9), recon=(70, 90))
        t_mask = best(lambda: filter_mask(f, n, y=y, factors=factors, kl=kl, recon=recon))
        mask = filter_mask(f, n, y=y, factors=factors, kl=kl, recon=recon)
        coords = rng.normal(size=(n, 2)).astype(np.float32)
        t_fig = best(lambda: map_base_figure(coords, y, categorical=True, color_name="label", shown=mask).to_json(), 1)
        print(f"{n:>9,} points: mask of 5 filters {t_mask * 1e3:.1f} ms ({int(mask.sum()):,} kept); "
              f"filtered map figure to JSON {t_fig:.2f} s")


if __name__ == "__main__":
    main()
