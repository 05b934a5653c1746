"""The shared flow control of the pad and the slider panel (`components/assets/sender.js`'s
Sender), run in Node: at most N values unanswered, the newest waiting value goes next, a lost
answer does not freeze it. Without node the test skips, and under CI=true it fails (the `node`
fixture of tests/conftest.py)."""
from __future__ import annotations

import json
import subprocess

import pytest

from benchmarks.browser import REPO

SCRIPT = r"""
const sent = [];
const s = new Sender((msg, seq) => sent.push([seq, msg.v]), { maxInFlight: 2, timeoutMs: 50 });
for (let v = 1; v <= 5; v++) s.send({ v });   // 1 and 2 go, 5 waits (3 and 4 are superseded)
const a = sent.slice();
s.settle(1);                                    // one answered: the newest waiting value goes
const b = sent.slice();
s.settle(3);                                    // Python handled everything up to 3
const c = { inFlight: s.inFlight.slice(), busy: s.busy };
s.send({ v: 6 });
s.send({ v: 7 });
s.send({ v: 8 });                               // 4, 5 in flight; 8 waits
setTimeout(() => {                              // answers lost: the timeout frees the sender
  const d = sent.slice();
  s.dispose();
  console.log(JSON.stringify({ a, b, c, d }));
}, 120);
"""


def test_sender_flow_control(tmp_path, node):
    js = (REPO / "explorer" / "components" / "assets" / "sender.js").read_text(encoding="utf-8") + SCRIPT
    path = tmp_path / "sender.mjs"
    path.write_text(js, encoding="utf-8")
    out = json.loads(subprocess.run([node, str(path)], capture_output=True, text=True, check=True,
                                    timeout=30).stdout)
    assert out["a"] == [[1, 1], [2, 2]]
    assert out["b"] == [[1, 1], [2, 2], [3, 5]]
    assert out["c"] == {"inFlight": [], "busy": False}
    assert out["d"] == [[1, 1], [2, 2], [3, 5], [4, 6], [5, 7], [6, 8]]
