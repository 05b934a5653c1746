"""A conv decoder in the browser (ONNX under onnxruntime-web) against the server path, in one run, in
headless Chromium on the real app's Explore page. Prints a table with the machine's load; asserts nothing.

Run from the repo root: `python -m benchmarks.onnx_browser [--steps 30] [--no-mlp]`.

The model: a 64x64 one-channel conv VAE of the PyTorch-VAE VanillaVAE shape as this project builds it
(`vae_core.models.VAE`, arch conv: five stride-2 convs 32..512 down to 512x2x2, latent 10; the decoder a
Linear to 512x2x2 and five stride-2 ConvTranspose2d 512..1, sigmoid), untrained (its decoder's
weights scaled 3x, so nearby codes give different pictures: a step that changes no pixel sends no new
PNG on the server path, and there would be nothing to time), saved as the `default`
run of a temporary runs folder, on the `sprites` data (64x64). Unlike VanillaVAE it has no batch norm
(the project's conv VAE has none; a batch-norm model comes as a user's upload, exported by its worker).

Measured, each from the key press (or pointer event) inside the page:
- slider step -> new picture: browser path (ONNX; the canvas repainted, next animation frame) and
  server path (`/Explore?decode=server`; the new PNG's `load`), p50 / p90;
- the drag pad: canvas repaints per pointer move (browser) and image updates per second (server);
- the one-off costs: the export in the server (export + check with onnxruntime), the graph's size, the
  browser's session creation;
- with `--mlp` (default on): the shipped MLP run (runs/default) on its plain-JS path, and the same
  decoder as ONNX run in the same page, to say which path an MLP should take.
"""
from __future__ import annotations

import argparse
import base64
import os
import tempfile
import time
from pathlib import Path

from benchmarks.browser import REPO, StreamlitServer, launch_chromium, wait_app_ready
from benchmarks.common import load, percentile, print_table
from benchmarks.latency import pad_browser, pad_python, panel_steps

APP = REPO / "streamlit_app.py"


def vanilla_shaped_run(runs: Path) -> Path:
    """The benchmark's model as the `default` run of `runs` (see the module docstring)."""
    import torch

    from vae_core.runs.checkpoints import save_run
    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.models import VAE

    torch.manual_seed(0)
    cfg = ModelConfig(input_shape=(1, 64, 64), arch="conv", conv_channels=(32, 64, 128, 256, 512), hidden=(),
                      latent_dim=10, likelihood="gaussian")
    model = VAE(cfg)
    with torch.no_grad():  # untrained; weights scaled up so pictures differ visibly between nearby z
        for layer in model.decoder:
            if hasattr(layer, "weight"):
                layer.weight.mul_(3)
    return save_run(runs / "default", model, TrainConfig(epochs=1), [{"epoch": 1}], dataset="sprites")


def wait_attr(locator, name: str, want, timeout: float, what: str) -> str:
    deadline = time.monotonic() + timeout
    while True:
        v = locator.get_attribute(name)
        if (v == want) if want is not None else v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last {name}={v!r})")
        time.sleep(0.05)


def open_explore(page, url: str, mode: str, data: str | None = None, timeout: float = 600) -> float:
    """/Explore (or /Explore?decode=server), then data `data` picked in the sidebar where given; seconds until
    the slider panel draws in `mode`."""
    t0 = time.perf_counter()
    page.goto(f"{url}/Explore" + ("?decode=server" if mode == "python" else ""))
    if data is not None:  # a new session starts on mnist: pick the model's data in the sidebar
        wait_app_ready(page, int(timeout * 1000))
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
        page.get_by_role("option").filter(has_text=data).first.click()
    panel = page.get_by_test_id("latent-sliders")
    panel.wait_for(timeout=timeout * 1000)
    wait_attr(panel, "data-mode", mode, timeout, f"the sliders' {mode} path")
    wait_app_ready(page, int(timeout * 1000))
    return time.perf_counter() - t0


# In the page: onnxruntime-web from the app's static files, a session from base64 bytes, n decodes of
# random z timed one by one (ms), after one warm-up run.
ONNX_IN_PAGE = """async ([base, b64, dim, n]) => {
  if (!window.ort) {
    await new Promise((ok, bad) => { const s = document.createElement('script');
      s.src = base + 'ort.wasm.min.js'; s.onload = ok; s.onerror = bad; document.head.appendChild(s); });
  }
  ort.env.wasm.numThreads = 1; ort.env.wasm.wasmPaths = new URL(base, location.href).href;
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(bytes, {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
  const created = performance.now() - t0;
  const feed = () => ({[s.inputNames[0]]: new ort.Tensor('float32', Float32Array.from({length: dim}, () => Math.random() * 4 - 2), [1, dim])});
  await s.run(feed());
  const ms = [];
  for (let k = 0; k < n; k++) { const t = performance.now(); await s.run(feed()); ms.push(performance.now() - t); }
  return [created, ms];
}"""


def bench_conv(args, rows: list[tuple[str, str]], tmp: Path, pw) -> None:
    from vae_core import onnx_export
    from vae_core.runs.run_load import load_run

    run = vanilla_shaped_run(tmp / "runs")
    model = load_run(run).model.eval()
    rows.append(("load before the export", load(1)))
    t0 = time.perf_counter()
    graph = onnx_export.export_decoder_onnx(model)
    rows.append(("conv decoder: ONNX export + check with onnxruntime, in the server (cold)",
                 f"{time.perf_counter() - t0:.1f} s"))
    rows.append(("conv decoder: ONNX graph size", f"{len(graph) / 2**20:.1f} MB"))

    env = {"VAE_EXPLORER_RUNS": str(tmp / "runs"), "VAE_EXPLORER_UPLOADS": str(tmp / "uploads"),
           onnx_export.CACHE_ENV: str(tmp / "onnx")}
    server = StreamlitServer(APP, env=env)
    try:
        browser = launch_chromium(pw)
        server.start()
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        first = open_explore(page, server.url, "browser", "sprites")
        rows.append(("conv run: first /Explore, sprites picked (encode 5,000, export, load) -> sliders on the browser path",
                     f"{first:.1f} s"))
        loader = page.get_by_test_id("onnx-runtime")
        rows.append(("browser: onnxruntime-web session created (14 MB .wasm + graph), in the page",
                     f"{int(loader.get_attribute('data-ms')) / 1000:.2f} s"))
        rows.append(("load before the browser path", load(1)))
        s = panel_steps(page, args.steps)
        rows.append((f"slider step -> new picture, BROWSER path (ONNX, WebAssembly), p50 / p90 ({len(s)} steps)",
                     f"{percentile(s, 50):.0f} / {percentile(s, 90):.0f} ms"))
        wait_attr(page.get_by_test_id("latent-pad"), "data-mode", "browser", 60, "the pad's browser path")
        per_move, _ = pad_browser(page)
        rows.append(("pad drag, browser path: canvas repaints per pointer move (60 moves, 16 ms apart)",
                     f"{per_move:.2f}"))
        page.close()

        page = browser.new_page(viewport={"width": 1200, "height": 900})
        open_explore(page, server.url, "python", "sprites")
        rows.append(("load before the server path", load(1)))
        s = panel_steps(page, args.steps)
        rows.append((f"slider step -> new picture, SERVER path (rerun + PNG), p50 / p90 ({len(s)} steps)",
                     f"{percentile(s, 50):.0f} / {percentile(s, 90):.0f} ms"))
        wait_attr(page.get_by_test_id("latent-pad"), "data-mode", "python", 60, "the pad's server path")
        one, rate, moves = pad_python(page, args.steps)
        rows.append((f"pad click -> new picture, server path, p50 / p90 ({len(one)})",
                     f"{percentile(one, 50):.0f} / {percentile(one, 90):.0f} ms"))
        rows.append((f"pad drag, server path: picture updates per second ({moves:.0f} moves/s)", f"{rate:.1f} /s"))
        page.close()
        browser.close()
    finally:
        server.stop()


def bench_mlp(args, rows: list[tuple[str, str]], tmp: Path, pw) -> None:
    """The shipped MLP on its plain-JS path, and the same decoder as ONNX in the same page."""
    from vae_core import onnx_export
    from vae_core.runs.run_load import load_run

    model = load_run(REPO / "runs" / "default").model.eval()
    graph = onnx_export.export_decoder_onnx(model)
    server = StreamlitServer(APP, env={"VAE_EXPLORER_UPLOADS": str(tmp / "uploads-mlp"),
                                       onnx_export.CACHE_ENV: str(tmp / "onnx")})
    try:
        browser = launch_chromium(pw)
        server.start()
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        open_explore(page, server.url, "browser")
        rows.append(("load before the MLP", load(1)))
        s = panel_steps(page, args.steps)
        rows.append((f"MLP (runs/default): slider step -> new picture, plain-JS path, p50 / p90 ({len(s)})",
                     f"{percentile(s, 50):.0f} / {percentile(s, 90):.0f} ms"))
        _, ms = page.evaluate(ONNX_IN_PAGE, ["/app/static/onnxruntime-web/", base64.b64encode(graph).decode(),
                                             model.latent_dim, 40])
        rows.append(("MLP (runs/default) as ONNX: one session.run alone (no drawing), p50 / p90 (40)",
                     f"{percentile(ms, 50):.1f} / {percentile(ms, 90):.1f} ms"))
        browser.close()
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="steps per latency measurement")
    ap.add_argument("--no-mlp", dest="mlp", action="store_false", help="skip the MLP comparison")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str]] = [("machine", f"{os.cpu_count()} cores, load {load(1)} at the start")]
    tmp = Path(tempfile.mkdtemp(prefix="vae-onnx-bench-"))
    try:
        with sync_playwright() as pw:
            bench_conv(args, rows, tmp, pw)
            if args.mlp:
                bench_mlp(args, rows, tmp, pw)
    finally:  # what was measured, even when a later step failed
        rows.append(("load at the end", load(1)))
        print_table(rows)


if __name__ == "__main__":
    main()
