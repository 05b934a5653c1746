"""A researcher's own model in each upload format, end to end in the real app (issue 18's figures), in one run,
in headless Chromium. Prints a table with the machine's load; asserts nothing.

Run from the repo root: `python -m benchmarks.upload_formats [--formats ts,export,onnx] [--steps 30] [--diagnose]`.

The model: a 64x64 one-channel conv VAE of the PyTorch-VAE VanillaVAE shape *with batch norm* (five stride-2
Conv2d 32..512, each with BatchNorm2d and LeakyReLU; latent 10; a Gaussian decoder with no declared scale: a
Linear to 512x2x2, four ConvTranspose2d + BatchNorm2d + LeakyReLU, a fifth ConvTranspose2d + BatchNorm2d +
LeakyReLU and a Conv2d to one channel, sigmoid). Random weights, batch-norm running statistics away from
(0, 1) so eval mode matters, and the decoder's weights scaled 4x so nearby codes give different pictures (a
step that changes no pixel sends no new PNG on the server path). Written, in eval mode, as a user would
(`benchmarks/model_formats.write_model`, the guide's recipes): TorchScript (`torch.jit.script` + `save`,
attributes `likelihood`, `latent_dim`), a zip of `torch.export` programs and a zip of ONNX graphs (each with
`meta.json`: gaussian, input_shape, latent_dim).

One `streamlit run streamlit_app.py` on 127.0.0.1 with temporary VAE_EXPLORER_CACHE / _UPLOADS / _ONNX_CACHE /
_JOB_LOG (the repo's runs/: a new session starts on runs/default and mnist). For each format, in a fresh
browser context (a new session):
- upload -> interactive Home: `sprites` picked in the sidebar's data picker, then the model set on the model
  uploader's input; timed from `set_input_files` to the Home page's script ended with the model's images shown
  (its name on the page, "rebuilt image", sprites); the encoding job's own run time from the job log;
- Explore (sidebar link, same session): until the sliders decode in the browser (the worker's ONNX export and
  onnxruntime-web's session); the latent slider step, key press -> new picture, browser path (ONNX) then server
  path (the page's "Decode in the browser" toggle off: a rerun and a PNG per step), p50 / p90; the drag pad's
  repaints per pointer move (browser) and pictures per second (server); the browser's picture against the
  eager torch module's decode of the same z, max |difference| in 1/255;
then the server restarts on the same cache folders and each format is uploaded again on Explore: the time to
the sliders drawn, and whether an encoding job ran (the job log; the encoding should come from disk).
With `--diagnose`: Diagnose on the TorchScript upload at the default 60 s budget (k auto), time until the
report shows; after 20 s the test leaves for Explore and comes back, reading the progress bar before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.browser import REPO, StreamlitServer, launch_chromium, wait_app_ready
from benchmarks.common import load, percentile as pct, print_table as print_rows
from benchmarks.latency import pad_browser, pad_python, panel_steps
from benchmarks.model_formats import write_model
from benchmarks.onnx_browser import wait_attr

APP = REPO / "streamlit_app.py"
FORMATS = {"ts": "torchscript", "export": "export", "onnx": "onnx"}
NAMES = {"ts": "TorchScript", "export": "torch.export zip", "onnx": "ONNX zip"}
LATENT = 10
CANVAS_PIXELS = "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]"


class VanillaVAE(nn.Module):
    """PyTorch-VAE's VanillaVAE for 64x64 one-channel images, latent 10, sigmoid mean (see the module docstring)."""

    shape, latent = (1, 64, 64), LATENT  # what benchmarks/model_formats.write_model reads

    def __init__(self):
        super().__init__()
        self.likelihood = "gaussian"  # TorchScript's optional attributes (docs/contracts.md); no scale
        self.latent_dim = LATENT
        hs, layers, c = [32, 64, 128, 256, 512], [], 1
        for h in hs:
            layers += [nn.Conv2d(c, h, 3, 2, 1), nn.BatchNorm2d(h), nn.LeakyReLU()]
            c = h
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.fc_mu, self.fc_var = nn.Linear(512 * 4, LATENT), nn.Linear(512 * 4, LATENT)
        self.decoder_input = nn.Linear(LATENT, 512 * 4)
        rev, dec = hs[::-1], []
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1), nn.BatchNorm2d(b), nn.LeakyReLU()]
        self.decoder = nn.Sequential(*dec)
        self.final_layer = nn.Sequential(nn.ConvTranspose2d(32, 32, 3, 2, 1, output_padding=1),
                                         nn.BatchNorm2d(32), nn.LeakyReLU(), nn.Conv2d(32, 1, 3, padding=1))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_var(h)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder_input(z).view(-1, 512, 2, 2)
        return torch.sigmoid(self.final_layer(self.decoder(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


def vanilla_vae() -> VanillaVAE:
    """The benchmark's eager model, seeded, in eval mode: batch-norm statistics away from (0, 1), decoder x4."""
    torch.manual_seed(0)
    m = VanillaVAE()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2)
        for mod in [m.decoder_input, *m.decoder, *m.final_layer]:
            if isinstance(mod, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                mod.weight.mul_(4)
    return m.eval()


def write_formats(vae, keys: list[str], folder: Path) -> dict[str, Path]:

    folder.mkdir(parents=True, exist_ok=True)
    meta = {"likelihood": "gaussian", "input_shape": [1, 64, 64], "latent_dim": LATENT}
    return {k: write_model(vae, FORMATS[k], folder, meta=None if k == "ts" else meta) for k in keys}


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def nav(page, title: str) -> None:
    """A sidebar page link (client-side: the session, and its uploads, stay)."""
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()


def pick_data(page, name: str) -> None:
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
    page.get_by_role("option").filter(has_text=name).first.click()
    wait_app_ready(page, 120_000)


def set_model_file(page, path: Path) -> float:
    """The model file on the sidebar's model uploader; returns perf_counter just before."""
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text="torch.export")
    for _ in range(3):  # the expander is folded while data is active; a click during a rerun may not take
        if box.is_visible():
            break
        page.locator('[data-testid="stSidebar"]').get_by_text("Upload a model or data").click()
        try:
            box.wait_for(timeout=10_000)
        except Exception:  # noqa: BLE001 - click again
            pass
    t0 = time.perf_counter()
    box.locator('input[type="file"]').set_input_files(str(path))
    return t0


def wait_js(page, js: str, arg, timeout: float, what: str) -> None:
    try:
        page.wait_for_function(js, arg=arg, timeout=timeout * 1000, polling=100)
    except Exception as e:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}") from e


HOME_DONE = """label => { const a = document.querySelector('[data-testid="stApp"]');
    const m = document.querySelector('[data-testid="stMain"]');
    if (!a || !m || a.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const t = m.innerText;
    return t.includes('Model: ' + label) && t.includes('rebuilt image') && t.includes('Data: sprites')
      && m.querySelectorAll('[data-testid="stImage"] img').length >= 2; }"""

def explore_session(browser, url: str):
    """A new browser context (a new Streamlit session) with Explore drawn on the active pair."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    page.goto(f"{url}/Explore")
    wait_app_ready(page, 300_000)
    page.get_by_test_id("latent-sliders").wait_for(timeout=300_000)
    return ctx, page


def wait_explore(page, n: int, timeout: float) -> None:
    """Until Explore's script ended with the slider panel drawn for a model of n dimensions (Playwright's
    locators: the panel is a component, which document.querySelector does not reach)."""
    panel, app = page.get_by_test_id("latent-sliders"), page.locator('[data-testid="stApp"]')
    deadline = time.monotonic() + timeout
    while True:
        if (app.get_attribute("data-test-script-state") == "notRunning" and panel.count()
                and panel.get_attribute("data-mode") and panel.locator("input[type=range]").count() == n):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for Explore with the uploaded model")
        time.sleep(0.1)


def job_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def encode_jobs(lines: list[dict]) -> list[float]:
    return [j["ran_s"] for j in lines if "encoding" in j["what"]]


def upload_to_home(page, url: str, path: Path, joblog: Path) -> tuple[float, list[float]]:
    """A new session on Home: sprites picked, then the model uploaded; seconds to Home interactive with it."""
    page.goto(url)
    wait_app_ready(page, 300_000)
    pick_data(page, "sprites")  # refused while no model takes 64x64 data: the upload switches to it
    n0 = len(job_log(joblog))
    t0 = set_model_file(page, path)
    wait_js(page, HOME_DONE, f"{path.name} (upload)", 600, "Home with the uploaded model")
    return time.perf_counter() - t0, encode_jobs(job_log(joblog)[n0:])


def panel_z(panel) -> np.ndarray:
    pairs = panel.locator("input[type=range]").evaluate_all(
        "xs => xs.map(x => [Number(x.dataset.dim), Number(x.value)])")
    z = np.zeros(len(pairs))
    for j, v in pairs:
        z[j] = v
    return z


def browser_vs_torch(page, vae) -> tuple[float, float]:
    """Max |canvas - torch decode| over the three colour channels, in 1/255, and the picture's range."""
    panel = page.get_by_test_id("latent-sliders")
    canvas = page.get_by_test_id("latent-sliders-canvas")
    page.wait_for_function("c => c.dataset.busy === '0'", arg=canvas.element_handle(), timeout=30_000)
    z = panel_z(panel)
    w, h, rgba = canvas.evaluate(CANVAS_PIXELS)
    got = np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)
    with torch.inference_mode():
        want = vae.decode(torch.as_tensor(z[None], dtype=torch.float32))[0, 0].double().numpy()
    if got.shape[:2] != want.shape:
        return float("nan"), float(np.ptp(want))
    return max(float(np.abs(got[..., c] - want * 255).max()) for c in range(3)), float(np.ptp(want))


def to_start(page) -> None:
    """The first slider to its minimum (Home key), so the steps that follow have room to move."""
    panel = page.get_by_test_id("latent-sliders")
    panel.scroll_into_view_if_needed()
    panel.locator("input[type=range]").first.focus()
    page.keyboard.press("Home")
    page.wait_for_timeout(300)
    wait_app_ready(page, 120_000)


def explore_paths(page, key: str, steps: int, vae, rows: list) -> None:
    """Explore, in the session that uploaded the model: browser path, then the server path (toggle off)."""
    t0 = time.perf_counter()
    nav(page, "Explore")
    panel = page.get_by_test_id("latent-sliders")
    panel.wait_for(timeout=600_000)
    wait_attr(panel, "data-mode", "browser", 600, "the sliders' browser path")
    wait_app_ready(page, 120_000)
    rows.append((f"{NAMES[key]}: Explore -> sliders decode in the browser (worker's ONNX export + session)",
                 f"{time.perf_counter() - t0:.1f} s"))
    to_start(page)
    s = panel_steps(page, steps)
    rows.append((f"{NAMES[key]}: slider step -> new picture, BROWSER path (ONNX), p50 / p90 ({len(s)} steps)",
                 f"{pct(s, 50):.0f} / {pct(s, 90):.0f} ms"))
    diff, ptp = browser_vs_torch(page, vae)
    rows.append((f"{NAMES[key]}: browser's picture vs torch's decode, max |diff| (picture range {ptp:.2f})",
                 f"{diff:.2f} / 255"))
    wait_attr(page.get_by_test_id("latent-pad"), "data-mode", "browser", 60, "the pad's browser path")
    per_move, _ = pad_browser(page)  # (its synchronous ms per move says nothing of ONNX's asynchronous run)
    rows.append((f"{NAMES[key]}: pad drag, browser path: canvas repaints per pointer move (60 moves)",
                 f"{per_move:.2f}"))

    page.locator('[data-testid="stCheckbox"]').filter(has_text="Decode in the browser").first.click()
    wait_attr(panel, "data-mode", "python", 120, "the sliders' server path")
    wait_app_ready(page, 120_000)
    to_start(page)
    s = panel_steps(page, steps)
    rows.append((f"{NAMES[key]}: slider step -> new picture, SERVER path (rerun + PNG), p50 / p90 ({len(s)} steps)",
                 f"{pct(s, 50):.0f} / {pct(s, 90):.0f} ms"))
    wait_attr(page.get_by_test_id("latent-pad"), "data-mode", "python", 60, "the pad's server path")
    one, rate, moves = pad_python(page, min(steps, 10))
    rows.append((f"{NAMES[key]}: pad drag, server path: pictures per second ({moves:.0f} moves/s)", f"{rate:.1f} /s"))


PROGRESS = """() => { const p = document.querySelector('[data-testid="stMain"] [data-testid="stProgress"]');
    if (!p) return null;
    const b = p.querySelector('[role="progressbar"]');
    return (b && b.getAttribute('aria-valuenow') !== null ? b.getAttribute('aria-valuenow') + '%: ' : '')
      + p.innerText.replace(/\\s+/g, ' ').slice(0, 160); }"""
REPORT = """() => (document.querySelector('[data-testid="stMain"]')?.innerText || '')
    .includes('Information per dimension')"""


def diagnose(page, rows: list, away_after: float = 20.0) -> None:
    """Diagnose at the default budget on the active upload: time to the report, leaving once midway."""
    t0 = time.perf_counter()
    nav(page, "Diagnose")
    while time.perf_counter() - t0 < away_after and not page.evaluate(REPORT):
        time.sleep(0.5)
    before = page.evaluate(PROGRESS)
    left = time.perf_counter() - t0
    nav(page, "Explore")
    page.get_by_test_id("latent-sliders").wait_for(timeout=300_000)
    wait_app_ready(page, 300_000)
    nav(page, "Diagnose")
    back = None
    deadline = time.monotonic() + 30
    while back is None and time.monotonic() < deadline and not page.evaluate(REPORT):
        back = page.evaluate(PROGRESS)
        time.sleep(0.2)
    back_at = time.perf_counter() - t0
    page.wait_for_function(REPORT, timeout=900_000, polling=250)
    took = time.perf_counter() - t0
    wait_app_ready(page, 300_000)
    text = " ".join(main_text(page).split())
    at = text.find("s time budget")  # the settings caption: points, k and the time taken
    budget_words = text[max(0, text.rfind(".", 0, at) + 1):text.find(".", at) + 1].strip() if at >= 0 else ""
    rows.append(("TorchScript: Diagnose, default 60 s budget: page opened -> report shown (left once for Explore)",
                 f"{took:.1f} s"))
    rows.append((f"Diagnose progress when leaving at {left:.0f} s -> on coming back at {back_at:.0f} s",
                 f"{before or 'report shown'} -> {back or 'report shown'}"))
    if budget_words:
        rows.append(("Diagnose's own words on its budget", budget_words[:300]))


class Rows(list):
    """The table's rows, each also printed to stderr as it comes (a long run shows where it is)."""

    def append(self, row: tuple[str, str]) -> None:
        print(f"  {row[0]}: {row[1]}", file=sys.stderr, flush=True)
        super().append(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default="ts,export,onnx", help="comma-separated: ts, export, onnx")
    ap.add_argument("--steps", type=int, default=30, help="slider steps per latency measurement")
    ap.add_argument("--diagnose", action="store_true", help="also time Diagnose on the TorchScript upload")
    args = ap.parse_args()
    keys = [k.strip() for k in args.formats.split(",") if k.strip()]
    if not set(keys) <= set(FORMATS):
        ap.error(f"--formats takes {', '.join(FORMATS)}")

    from playwright.sync_api import sync_playwright

    print(f"load average before: {' '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} cores)", flush=True)
    rows = Rows()
    rows.append(("machine", f"{os.cpu_count()} cores, load {load()} at the start"))
    tmp = Path(tempfile.mkdtemp(prefix="vae-upload-bench-"))
    joblog = tmp / "jobs.jsonl"
    env = {"VAE_EXPLORER_CACHE": str(tmp / "cache"), "VAE_EXPLORER_UPLOADS": str(tmp / "uploads"),
           "VAE_EXPLORER_ONNX_CACHE": str(tmp / "onnx"),
           "VAE_EXPLORER_JOB_LOG": str(joblog)}
    server = StreamlitServer(APP, env=env)
    try:
        vae = vanilla_vae()
        t0 = time.perf_counter()
        files = write_formats(vae, keys, tmp / "models")
        rows.append(("writing the model in the formats " + ", ".join(keys),
                     f"{time.perf_counter() - t0:.1f} s; " + ", ".join(
                         f"{p.name} {p.stat().st_size / 2**20:.1f} MB" for p in files.values())))
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            server.start()
            rows.append(("`streamlit run` -> health", f"{server.startup_s:.1f} s"))
            for key in keys:
                ctx = browser.new_context(viewport={"width": 1200, "height": 900})
                page = ctx.new_page()
                rows.append((f"{NAMES[key]}: load before", load()))
                took, enc = upload_to_home(page, server.url, files[key], joblog)
                ran = (f"the encoding job took {', '.join(f'{s:.1f}' for s in enc)} s" if enc
                       else "drawn from the first codes; the encoding goes on")
                rows.append((f"{NAMES[key]}: upload -> interactive Home (sprites, 5,000 images)", f"{took:.1f} s ({ran})"))
                explore_paths(page, key, args.steps, vae, rows)
                ctx.close()

            server.stop()
            t0 = time.perf_counter()
            server.start()
            rows.append(("server restarted on the same cache folders -> health", f"{time.perf_counter() - t0:.1f} s"))
            keep = None
            for key in keys:
                ctx, page = explore_session(browser, server.url)
                n0 = len(job_log(joblog))
                t1 = set_model_file(page, files[key])
                wait_explore(page, LATENT, 600)
                enc = encode_jobs(job_log(joblog)[n0:])
                rows.append((f"{NAMES[key]} after the restart: upload on Explore -> sliders drawn (encode jobs run)",
                             f"{time.perf_counter() - t1:.1f} s ({len(enc)})"))
                if key == "ts" and args.diagnose:
                    keep = (ctx, page)
                else:
                    ctx.close()
            if args.diagnose:
                if keep is None:
                    ctx, page = explore_session(browser, server.url)
                    path = files.get("ts") or write_formats(vae, ["ts"], tmp / "models")["ts"]
                    set_model_file(page, path)
                    wait_explore(page, LATENT, 600)
                    keep = (ctx, page)
                rows.append(("load before Diagnose", load()))
                diagnose(keep[1], rows)
                keep[0].close()
            browser.close()
    except Exception as e:  # what was measured so far still prints
        rows.append(("stopped by", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]))
        log = server.log()
        print(log[-3000:], file=sys.stderr)
    finally:
        server.stop()
        rows.append(("load at the end", load()))
        print_rows(rows)


if __name__ == "__main__":
    main()
