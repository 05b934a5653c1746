"""Compare's two linked maps at scale: what the server does per selection at `--n` points.

Times (best of `--repeat`) the orthogonal Procrustes fit of one map onto another
(`vae_core.maps.map_align.procrustes_align`), turning a plotly selection of half the points into a row
mask (`explorer.linked_maps_ui.rows_of_points`), building one map figure with that selection and
its legend counts (`linked_figure`), and its JSON; and prints the sizes of the figure sent and of a
selection event of that many points (the points' curve and index only: Streamlit's own event
carries x, y and customdata too, a few times more). Synthetic maps: normal points, 10 labels, the
second map the first turned by 90°, doubled and blurred.

    python -m benchmarks.linked_maps [--n 100000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from explorer import linked_maps_ui as lm
from vae_core.maps.map_align import procrustes_align


def best(f, repeat: int):
    out, t = None, float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        t = min(t, time.perf_counter() - t0)
    return t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, rng = args.n, np.random.default_rng(0)
    a = rng.normal(size=(n, 2))
    b = 2 * a @ np.array([[0.0, 1.0], [-1.0, 0.0]]) + rng.normal(scale=0.3, size=(n, 2))
    labels = rng.integers(0, 10, n)
    t_fit, fit = best(lambda: procrustes_align(a, b), args.repeat)
    groups = lm.trace_rows(labels, n)
    mask = a[:, 0] < 0
    points = [{"curve_number": c, "point_index": int(i)}
              for c, g in enumerate(groups) for i in np.flatnonzero(mask[g])]
    t_rows, got = best(lambda: lm.rows_of_points(points, groups, n), args.repeat)
    assert (got == mask).all()
    t_fig, fig = best(lambda: lm.linked_figure(a, labels, None, mask, 1), args.repeat)
    t_json, js = best(fig.to_json, args.repeat)
    print(f"{n:,} points, best of {args.repeat}: Procrustes fit {t_fit * 1e3:.0f} ms (disparity {fit.disparity:.3f}); "
          f"selection of {len(points):,} points to rows {t_rows * 1e3:.0f} ms; figure {t_fig * 1e3:.0f} ms, "
          f"its JSON {t_json * 1e3:.0f} ms, {len(js) / 1e6:.2f} MB; the selection event {len(json.dumps(points)) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
