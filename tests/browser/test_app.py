"""The real app (`streamlit_app.py`, Explore page) in headless Chromium: the latent slider panel and the
drag pad on both decoding paths, a click on the map, and the in-browser decoders against torch.

One server for the module. Each test opens a fresh browser context (its own session). The
Python-decoding path of the pad is reached the way a user reaches it, with no app hook:
- t-SNE map: upload a small data file (400 MNIST digits) in the sidebar, so the background
  t-SNE takes seconds instead of the ~90 s it takes on the full 5,000 digits on 2 loaded cores;
- TorchScript model: upload `runs/default` exported with `torch.jit.save` (PCA map, Python decodes).
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.browser import REPO, wait_app_ready
from harness import wait_until

pytestmark = pytest.mark.browser

APP = REPO / "streamlit_app.py"
RUN = REPO / "runs" / "default"
SMALL_N = 400  # digits in the uploaded data file: t-SNE on it takes a few seconds

# JS: how many data points the map (the latent map element's plotly figure) draws.
MAP_POINTS = """(() => { const gd = document.querySelector('[data-testid="latent-map"] .js-plotly-plot');
    return gd && gd._fullData ? gd._fullData.filter(t => t.customdata).reduce((n, t) => n + t.x.length, 0) : -1; })()"""

# JS on the pad canvas: a cheap digest of its pixels.
CANVAS_DIGEST = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0; for (let k = 0; k < d.length; k++) h = (h * 31 + d[k]) | 0; return c.width + 'x' + c.height + ':' + h; }"""


@pytest.fixture(scope="module")
def app_url(streamlit_server, tmp_path_factory) -> str:
    # Uploads go to a temporary directory, not the user's cache.
    uploads = tmp_path_factory.mktemp("uploads")
    return streamlit_server(APP, env={"VAE_EXPLORER_UPLOADS": str(uploads)}).url


@pytest.fixture(scope="module")
def reference():
    """The shipped model and the PCA map the app builds (explorer/cache.py: encoded + _pca_job)."""
    from vae_core import data as vdata
    from vae_core.runs import run_load
    from vae_core.maps.projection import Projection

    model = run_load.load_run(RUN).model.eval()
    data = vdata.load_dataset("mnist", n=None, seed=0)
    with torch.inference_mode():
        mu = torch.cat([model.encode(data.x[i:i + 1000])[0] for i in range(0, len(data), 1000)]).float().numpy()
    return model, data, Projection("pca", 2).fit(mu)


@pytest.fixture(scope="module")
def small_data_file(reference, tmp_path_factory) -> Path:
    """An .npz of SMALL_N MNIST digits (uint8 pixels, 40 per label) for the sidebar's data upload."""
    _, data, _ = reference
    y = np.asarray(data.y)
    idx = np.concatenate([np.flatnonzero(y == k)[: SMALL_N // 10] for k in range(10)])
    path = tmp_path_factory.mktemp("data") / "small_mnist.npz"
    x = (data.x[idx, 0].numpy() * 255).round().astype(np.uint8)
    np.savez(path, x=x, y=y[idx])
    return path


@pytest.fixture(scope="module")
def torchscript_file(reference, tmp_path_factory) -> Path:
    from vae_core.runs.model_files import export_torchscript

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script/save deprecation notices
        return export_torchscript(reference[0], tmp_path_factory.mktemp("model") / "default_vae.ts")


# --- helpers --------------------------------------------------------------------------------------

def open_explore(page, url: str, query: str = ""):
    """Load /Explore and wait for the script's run, the slider panel and the pad; returns the pad plane."""
    page.goto(f"{url}/Explore{query}")
    panel = page.get_by_test_id("latent-sliders")
    panel.wait_for(timeout=120_000)
    wait_app_ready(page, 120_000)
    wait_until(lambda: panel.get_attribute("data-mode"), 30, "the slider panel to draw")
    plane = page.get_by_test_id("latent-pad")
    plane.wait_for(timeout=30_000)
    wait_until(lambda: plane.get_attribute("data-mode"), 30, "the pad to draw")
    return plane


def pad_mode(plane, mode: str, timeout: float = 30.0) -> None:
    wait_until(lambda: plane.get_attribute("data-mode") == mode, timeout, f"pad mode {mode!r}")


def slider_z(page) -> np.ndarray:
    """The slider panel's z, read from its range inputs (index = data-dim)."""
    pairs = page.get_by_test_id("latent-sliders").locator("input[type=range]").evaluate_all(
        "xs => xs.map(x => [Number(x.dataset.dim), Number(x.value)])")
    z = np.zeros(len(pairs))
    for j, v in pairs:
        z[j] = v
    return z


def upload(page, label: str, path: Path) -> None:
    """Upload a file through the sidebar's uploader whose label contains `label`."""
    page.locator('[data-testid="stSidebar"]').get_by_text("Upload a model or data").click()
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    box.locator('input[type="file"]').set_input_files(str(path))


def drag(page, plane, frac_from, frac_to, steps: int = 20, pause_ms: int = 50, each=None, until=None,
         hold_s: float = 60.0) -> list:
    """Press, move in `steps` (calling `each()` after every move), release; returns what each() gave.

    With `until`, the button stays down after the last step, the pointer moving on between the last two
    positions, until until() holds or `hold_s` passes: a loaded machine answers later, and a drag that
    is still going is what the test is about, not how fast the first answer comes."""
    plane.scroll_into_view_if_needed()  # mouse coordinates are the viewport's
    box = plane.bounding_box()
    at = lambda f: (box["x"] + f[0] * box["width"], box["y"] + f[1] * box["height"])  # noqa: E731
    page.mouse.move(*at(frac_from))
    page.mouse.down()
    seen = []
    path = [(frac_from[0] + i / steps * (frac_to[0] - frac_from[0]), frac_from[1] + i / steps * (frac_to[1] - frac_from[1]))
            for i in range(1, steps + 1)]
    for f in path:
        page.mouse.move(*at(f))
        page.wait_for_timeout(pause_ms)
        if each is not None:
            seen.append(each())
    deadline = time.monotonic() + hold_s
    k = 0
    while until is not None and not until() and time.monotonic() < deadline:
        page.mouse.move(*at(path[-1 - (k % 2)]))  # still dragging: back and forth over the last step
        k += 1
        page.wait_for_timeout(pause_ms)
        if each is not None:
            seen.append(each())
    page.mouse.up()
    return seen


# --- tests ----------------------------------------------------------------------------------------

def test_slider_step_changes_image(page, app_url):
    """Browser path (MLP): a step repaints the canvas at once, and Python hears the vector on release."""
    open_explore(page, app_url)
    panel = page.get_by_test_id("latent-sliders")
    assert panel.get_attribute("data-mode") == "browser"
    labels = panel.locator(".vsl-name").all_inner_texts()
    assert len(labels) == 16 and all(t.startswith("z") for t in labels)
    canvas = page.get_by_test_id("latent-sliders-canvas")
    before = canvas.evaluate(CANVAS_DIGEST)
    sends0 = int(panel.get_attribute("data-sends") or 0)
    thumb = panel.locator("input[type=range]").first
    thumb.focus()
    page.keyboard.press("ArrowRight")
    wait_until(lambda: canvas.evaluate(CANVAS_DIGEST) != before, 5, "the slider canvas to change")
    wait_until(lambda: int(panel.get_attribute("data-sends") or 0) == sends0 + 1, 10, "the vector to be sent")


def test_slider_buttons_set_values(page, app_url):
    open_explore(page, app_url)
    panel = page.get_by_test_id("latent-sliders")
    version = panel.get_attribute("data-version")
    page.get_by_role("button", name="Random from the prior").click()
    wait_until(lambda: panel.get_attribute("data-version") != version, 20, "the panel to adopt new values")
    assert np.abs(slider_z(page)).max() > 0
    page.get_by_role("button", name="Reset to 0").click()
    wait_until(lambda: not np.abs(slider_z(page)).any(), 20, "the sliders to return to 0")


def test_slider_browser_decoder_matches_torch(page, app_url, reference):
    model = reference[0]
    open_explore(page, app_url)
    panel = page.get_by_test_id("latent-sliders")
    version = panel.get_attribute("data-version")
    page.get_by_role("button", name="Reset to 0").click()
    # A new session's sliders are at 0 already, so "all zero" says nothing about the reset: wait for the
    # panel to adopt the reset's new version. Pressed before that, the keys edit the old values and the
    # reset, arriving later, replaces them (Python's values win over edits based on older ones).
    wait_until(lambda: panel.get_attribute("data-version") != version, 30, "the panel to adopt the reset")
    version = panel.get_attribute("data-version")
    assert not np.abs(slider_z(page)).any(), slider_z(page).tolist()
    ranges = panel.locator("input[type=range]")
    want_z = {}
    for k, presses, key in [(0, 17, "ArrowRight"), (1, 9, "ArrowLeft"), (2, 23, "ArrowRight")]:  # a known z
        ranges.nth(k).focus()
        for _ in range(presses):
            page.keyboard.press(key)
        want_z[int(ranges.nth(k).get_attribute("data-dim"))] = presses * 0.05 * (1 if key == "ArrowRight" else -1)
    assert panel.get_attribute("data-version") == version, "Python replaced the values while keys were pressed"
    z = slider_z(page)
    assert {j: round(float(v), 6) for j, v in enumerate(z) if v} == {j: round(v, 6) for j, v in want_z.items()}, \
        f"every key press moves its slider one step: got z={z.tolist()}, want {want_z}"
    canvas = page.get_by_test_id("latent-sliders-canvas")
    w, h, rgba = canvas.evaluate(
        "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]")
    got = np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)
    with torch.inference_mode():
        want = model.decode(torch.as_tensor(z[None], dtype=torch.float32))[0, 0].double().numpy()
    assert (h, w) == want.shape
    for ch in range(3):
        err = np.abs(got[..., ch] / 255.0 - want).max()
        assert err <= 1 / 255 + 1e-9, f"channel {ch}: max abs diff {err * 255:.3f}/255 at z={z.tolist()}"


def test_slider_python_path_step_changes_image(page, app_url, torchscript_file):
    """TorchScript upload: no in-browser decoder, so each step goes to Python and a PNG comes back."""
    open_explore(page, app_url)
    upload(page, "TorchScript", torchscript_file)
    panel = page.get_by_test_id("latent-sliders")
    wait_until(lambda: panel.get_attribute("data-mode") == "python", 60, "the sliders' Python path")
    wait_app_ready(page, 60_000)
    img = page.get_by_test_id("latent-sliders-image")
    img.wait_for(state="visible")
    before = img.get_attribute("src")
    assert before and before.startswith("data:image/png")
    panel.locator("input[type=range]").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("([i, old]) => i.getAttribute('src') !== old", arg=[img.element_handle(), before],
                           timeout=20_000)


def test_browser_decoder_matches_torch(page, app_url, reference):
    model, _, proj = reference
    plane = open_explore(page, app_url)
    pad_mode(plane, "browser")
    canvas = page.get_by_test_id("latent-pad-canvas")
    plane.scroll_into_view_if_needed()
    box = plane.bounding_box()
    page.mouse.click(box["x"] + 0.31 * box["width"], box["y"] + 0.67 * box["height"])
    x, y = float(plane.get_attribute("data-x")), float(plane.get_attribute("data-y"))
    w, h, rgba = canvas.evaluate(
        "c => [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]")
    got = np.asarray(rgba, dtype=np.float64).reshape(h, w, 4)
    z, _ = proj.inverse(np.array([[x, y]]))  # the exact PCA inverse, as the app's pad uses
    with torch.inference_mode():
        want = model.decode(torch.as_tensor(z))[0, 0].double().numpy()
    assert (h, w) == want.shape
    assert np.all(got[..., 3] == 255)
    for ch in range(3):
        err = np.abs(got[..., ch] / 255.0 - want).max()
        assert err <= 1 / 255 + 1e-9, f"channel {ch}: max abs diff {err * 255:.3f}/255 at pad ({x}, {y})"


def test_map_click_selects_point(page, app_url):
    open_explore(page, app_url)
    chart = page.get_by_test_id("latent-map")
    chart.locator(".js-plotly-plot").wait_for()
    # The screen position of an isolated marker (nearest other marker >= 10 px away), from plotly's
    # own axis transforms on the decoded trace data.
    target = chart.locator(".js-plotly-plot").evaluate("""gd => {
        const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis, r = gd.getBoundingClientRect();
        const pts = [];
        for (const t of gd._fullData) {
          if (!t.customdata || !t.x || t.visible !== true) continue;
          for (let i = 0; i < t.x.length; i++) {
            const px = xa._offset + xa.l2p(t.x[i]), py = ya._offset + ya.l2p(t.y[i]);
            if (px > xa._offset + 15 && px < xa._offset + xa._length - 15 &&
                py > ya._offset + 40 && py < ya._offset + ya._length - 15)
              pts.push([px, py, Number(t.customdata[i])]);
          }
        }
        let best = null, bestD = 0;
        for (const a of pts) {
          let d = Infinity;
          for (const b of pts) if (b !== a) d = Math.min(d, Math.hypot(a[0] - b[0], a[1] - b[1]));
          if (d > bestD) { bestD = d; best = a; }
        }
        return {x: r.left + best[0], y: r.top + best[1], idx: best[2], gap: bestD, n: pts.length};
    }""")
    assert target["n"] > 1000 and target["gap"] >= 10, target
    n = int(target["idx"])
    page.mouse.move(target["x"], target["y"])
    # A click selects the point plotly hovers: wait until its hover has found this one.
    page.wait_for_function(
        "([gd, n]) => (gd._hoverdata || []).some(p => Number([].concat(p.customdata)[0]) === n)",
        arg=[chart.locator(".js-plotly-plot").element_handle(), n], timeout=20_000)
    page.mouse.click(target["x"], target["y"])
    caption = page.locator('[data-testid="stImage"]').filter(has_text=f"original #{n}")
    caption.first.wait_for(timeout=30_000)
    assert f"original #{n} " in caption.first.inner_text() + " "
    pick = page.get_by_label("Point", exact=True)
    wait_until(lambda: pick.input_value() == str(n), 10, f"the number input to hold {n}")


def test_pad_drag_browser_path_changes_canvas_before_release(page, app_url):
    plane = open_explore(page, app_url)
    pad_mode(plane, "browser")
    canvas = page.get_by_test_id("latent-pad-canvas")
    start = canvas.evaluate(CANVAS_DIGEST)
    sends0 = int(plane.get_attribute("data-sends") or 0)
    seen = drag(page, plane, (0.2, 0.8), (0.8, 0.2), steps=12, pause_ms=30,
                each=lambda: (canvas.evaluate(CANVAS_DIGEST), int(plane.get_attribute("data-sends") or 0)))
    digests = [d for d, _ in seen]
    assert len(set(digests) - {start}) >= 5, f"canvas changed only {len(set(digests) - {start})} times while dragging"
    # Python hears nothing while the pointer moves, only the release.
    assert all(s == sends0 for _, s in seen), f"positions sent mid-drag: {[s for _, s in seen]}"
    wait_until(lambda: int(plane.get_attribute("data-sends") or 0) == sends0 + 1, 10, "the release to be sent")


@pytest.mark.parametrize("how", ["tsne", "torchscript"])
def test_pad_drag_python_path_updates_image_during_drag(page, app_url, how, small_data_file, torchscript_file):
    # A TorchScript model's decoder is exported to ONNX by its worker and then decodes in the browser:
    # its session starts with the server decoding (?decode=server), which stays the user's choice.
    plane = open_explore(page, app_url, "?decode=server" if how == "torchscript" else "")
    if how == "tsne":
        upload(page, "Data (", small_data_file)
        page.wait_for_function(MAP_POINTS + f" === {SMALL_N}", timeout=60_000)  # the map shows the upload
        page.get_by_role("radio", name="t-SNE").click()
        # The background t-SNE (progress bar meanwhile), then a full rerun with the t-SNE pad.
        page.get_by_text("local inverse", exact=False).first.wait_for(timeout=180_000)
    else:
        upload(page, "TorchScript", torchscript_file)  # PCA map, decoded by the server (the session's choice)
        # Its worker exports the decoder to ONNX in the background (a fresh process importing torch): wait
        # until that is over (the toggle becomes usable), so the drag does not share the cores with it.
        model_box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"] input[role="combobox"]').first
        wait_until(lambda: "(upload)" in model_box.input_value(), 120, "the uploaded model to become active")
        toggle = page.locator('[data-testid="stCheckbox"]').filter(has_text="Decode in the browser").locator("input")
        wait_until(lambda: toggle.count() == 1 and toggle.is_enabled(), 180, "the decoder's export to end")
    pad_mode(plane, "python", timeout=60)
    wait_app_ready(page, 60_000)
    img = page.get_by_test_id("latent-pad-image")
    img.wait_for(state="visible")
    img.evaluate("""i => { window.__srcChanges = 0; window.__acks = [];
        new MutationObserver(() => { window.__srcChanges++; window.__acks.push(Number(i.dataset.ack)); })
          .observe(i, {attributes: true, attributeFilter: ['src']}); }""")
    seen = drag(page, plane, (0.2, 0.8), (0.8, 0.2), steps=20, pause_ms=60,
                each=lambda: page.evaluate("window.__srcChanges"),
                until=lambda: page.evaluate("window.__srcChanges") >= 2)
    assert seen[-1] >= 2, f"only {seen[-1]} pad image updates before release ({how})"
    # Two positions may be in flight: an older answer must never replace a newer one.
    acks = page.evaluate("window.__acks")
    assert acks == sorted(acks), f"pad images drawn out of order: {acks}"
