"""The ONNX loader (`components/assets/onnx_runtime.js`) run in Node with a stand-in session store: a
loader element drawn anew while its decoder's session loads (a run that stopped before the loader, then
one that reached it) reports the session's end to Python itself. Before, only the first element
reported, and when that element was gone before its session was ready, Python kept "loading" and the
server path for good (a module's warm-up waited 240 s for "browser" in a full run). Without node the
test skips, and under CI=true it fails (the `node` fixture of tests/conftest.py)."""
from __future__ import annotations

import json
import subprocess

from benchmarks.browser import REPO

# Stand-ins for what decoder.js and scaffold.js put in front of the loader: the page's session store,
# a session whose end the script decides, and the element helper.
PRELUDE = r"""
const ONNX = { sessions: new Map(), loads: 0 };
const settle = {};
function createOnnxSession(id) {
  const entry = { id, session: null, promise: null };
  entry.promise = new Promise((resolve, reject) => {
    settle[id] = (ok) => { if (ok) { entry.session = {}; resolve(entry); } else reject(new Error("no wasm\nstack")); };
  });
  entry.promise.catch(() => {});
  ONNX.sessions.set(id, entry);
  return entry.promise;
}
function el() { return { dataset: {} }; }
function mount() {}
"""

SCRIPT = r"""
function element(log) {
  const s = setupLoader({});
  s.setStateValue = (key, value) => log.push([key, value.id, value.state, value.reason || null]);
  return s;
}
const out = {};
for (const [id, ok] of [["good", true], ["bad", false]]) {
  const first = [], second = [];
  updateLoader(element(first), { id, onnx: "AAAA", ort_base: "/", latent_dim: 2 });
  // the page is drawn anew while the session loads: a new element, and Python sends no bytes again
  const again = element(second);
  updateLoader(again, { id, ort_base: "/", latent_dim: 2 });
  const before = second.slice();
  settle[id](ok);
  await new Promise((r) => setTimeout(r, 20));
  out[id] = { first, before, second, shown: again.host.dataset.state, loads: ONNX.loads };
}
console.log(JSON.stringify(out));
"""


def test_a_loader_drawn_anew_while_its_session_loads_reports_the_end(tmp_path, node):
    js = PRELUDE + (REPO / "explorer" / "components" / "assets" / "onnx_runtime.js").read_text(encoding="utf-8") + SCRIPT
    path = tmp_path / "loader.mjs"
    path.write_text(js, encoding="utf-8")
    run = subprocess.run([node, str(path)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    good, bad = out["good"], out["bad"]
    assert good["first"][0] == ["status", "good", "loading", None] and good["first"][-1][:3] == ["status", "good", "ready"]
    assert good["before"] == []  # nothing to say until the session ends
    assert good["second"] == [["status", "good", "ready", None]]  # the new element says it, too
    assert good["loads"] == 1  # one session for both elements
    assert bad["second"] == [["status", "bad", "error", "no wasm"]]  # an error: its first line
