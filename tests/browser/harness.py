"""The browser tests' own helpers. Starting servers and Chromium and waiting for a page live in
benchmarks/browser.py, shared with the benchmarks (which never import from tests/); import them from
there. The names below are also importable from here, so that a browser test written against the
earlier harness (`from harness import REPO, wait_app_ready`) still runs."""
from __future__ import annotations

from benchmarks import browser
from benchmarks.browser import (CHROMIUM_ARGS, REPO, StreamlitServer, find_chromium, free_port,  # noqa: F401
                                launch_chromium, streamlit_server, wait_app_ready)


def wait_until(fn, timeout: float, what: str, every: float = 0.05):
    """Call `fn` until it returns something truthy and return that; the test fails after `timeout` s."""
    try:
        return browser.wait_until(fn, timeout, what, every)
    except TimeoutError as e:
        raise AssertionError(str(e)) from None


# what the page showed when a browser test failed: printed with the failure, so a CI log says more than
# "Timeout exceeded" (the script's state, each expander open or shut, the alerts and exceptions shown,
# the captions, and the decoders' state: the ONNX loader's and each slider panel's mode)
_PAGE_STATE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const text = (sel) => [...document.querySelectorAll(sel)].map((e) => e.innerText.trim().slice(0, 300));
  // the components draw inside shadow roots, which querySelectorAll does not enter
  const deep = (sel, root = document) => [...root.querySelectorAll(sel), ...[...root.querySelectorAll('*')]
      .filter((e) => e.shadowRoot).flatMap((e) => deep(sel, e.shadowRoot))];
  return {script: app ? app.getAttribute('data-test-script-state') : 'no app',
          expanders: [...document.querySelectorAll('details')].map(
              (d) => (d.querySelector('summary') || d).innerText.trim().slice(0, 60) + (d.open ? ' (open)' : ' (shut)')),
          alerts: text('[data-testid="stAlert"]'), exceptions: text('[data-testid="stException"]'),
          status: text('[data-testid="stStatusWidget"]'), progress: text('[data-testid="stProgress"]'),
          captions: text('[data-testid="stCaptionContainer"]').slice(0, 20),
          onnx_loaders: deep('[data-testid="onnx-runtime"]').map((e) => JSON.stringify(e.dataset)),
          slider_panels: deep('[data-testid="latent-sliders"]').map(
              (e) => e.getAttribute('data-mode')),
          focus: document.activeElement ? document.activeElement.tagName + ' ' +
                 (document.activeElement.getAttribute('aria-label') || document.activeElement.id || '') : 'none',
          multiselects: [...document.querySelectorAll('[data-testid="stMultiSelect"]')].map(
              (e) => e.innerText.trim().replace(/\\s+/g, ' ').slice(0, 80) + ' | typed: ' +
                     JSON.stringify((e.querySelector('input') || {}).value)),
          options_listed: text('[role="option"]')};
}"""


def collect_console(page) -> None:
    """Keep `page`'s console errors and warnings (the last ones are printed by `describe_page`)."""
    page._console_errors = []
    page.on("console", lambda m: m.type in ("error", "warning") and page._console_errors.append(f"{m.type}: {m.text}"[:500]))
    page.on("pageerror", lambda e: page._console_errors.append(f"pageerror: {e}"[:500]))


def describe_page(page) -> str:
    """What `page` shows now, a line per part (`_PAGE_STATE_JS`), and its last console errors and warnings
    (kept by `collect_console`, as the `page` fixture does)."""
    try:
        state = page.evaluate(_PAGE_STATE_JS)
        lines = [f"url: {page.url}"] + [f"{k}: {v}" for k, v in state.items()]
        lines += ["console (last 15 errors and warnings):", *getattr(page, "_console_errors", [])[-15:]]
    except Exception as e:  # the page itself may be gone (a crashed tab): say so
        lines = [f"the page could not be read: {e!r}"]
    return "\n".join(lines)
