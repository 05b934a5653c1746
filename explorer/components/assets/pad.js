// The latent pad: a 2-D plane whose marker follows the pointer at once, and the decoded image.
//
// Streamlit calls the default export on mount and again on every change of `data`, so the DOM,
// listeners and decoded weights are built once and kept on `parentElement` (docs/live-decoding.md).
//
// Two ways to get an image while dragging:
//   Python path  - each position is numbered and sent with setStateValue("pos"); at most
//                  PAD_MAX_IN_FLIGHT are unanswered: Python echoes the last number it handled as
//                  `data.ack`, and the newest pending position goes next. The image comes back
//                  as a data URI.
//   Browser path - with `data.decoder_id` set, an MLP decoder's weights (sent once), or an ONNX
//                  decoder's session (the page's loader holds it), decode every pointer move here; Python hears of the position only on release.

// Python puts decoder.js (loadDecoder, paintLatent), sender.js (Sender) and scaffold.js (mount,
// el, addView, makeSender, browserMode, takeDecoder, showOutput, reportHeld) in front of this
// module (`explorer/components/base.py`).

// Python path: two positions may be unanswered at once, so the server starts on the next one
// while the browser is still drawing the last answer. Answers come back in order (one websocket)
// and an answer older than the newest one drawn is never drawn.
const PAD_MAX_IN_FLIGHT = 2;

// ---------- one-time setup ----------

function setupPad(root) {
  const s = {
    pos: [0, 0], down: false, lastDataPos: null, data: null,
    scatterVersion: null, scatter: null, drawnKey: null,
    decoder: null, reported: null, moves: 0, drawnAck: -1,
    setStateValue: null,
  };
  const wrap = el("div", "vpad", root);
  s.plane = el("div", "vpad-plane", wrap);
  s.plane.tabIndex = 0;
  s.plane.dataset.testid = "latent-pad";
  s.host = s.plane;
  s.sender = makeSender(s, "pos", PAD_MAX_IN_FLIGHT);
  s.bg = el("canvas", "vpad-bg", s.plane);
  s.marker = el("div", "vpad-marker", s.plane);
  addView(s, el("div", "vpad-view", wrap), "vpad", "latent-pad", "decoded image");

  // Pointer events cover mouse, pen and touch; capture keeps the drag ours outside the plane.
  s.plane.addEventListener("pointerdown", (e) => {
    if (e.button !== undefined && e.button > 0) return;
    s.down = true;
    try {
      s.plane.setPointerCapture(e.pointerId);
    } catch (err) {
      // Synthetic events (benchmarks) have no active pointer to capture; dragging still works.
    }
    e.preventDefault();
    onPointer(s, e, true); // click-to-jump
  });
  s.plane.addEventListener("pointermove", (e) => { if (s.down) onPointer(s, e, true); });
  const release = (e) => {
    if (!s.down) return;
    s.down = false;
    onPointer(s, e, false);
  };
  s.plane.addEventListener("pointerup", release);
  s.plane.addEventListener("pointercancel", release);
  s.plane.addEventListener("keydown", (e) => onKey(s, e));
  return s;
}

// ---------- geometry ----------

function bounds(s) {
  return s.data.bounds || [-3, 3, -3, 3];
}

function pxToPos(s, e) {
  // Measure inside the border: the marker's percentages are of the padding box too.
  const r = s.plane.getBoundingClientRect(), p = s.plane;
  const fx = Math.min(1, Math.max(0, (e.clientX - r.left - p.clientLeft) / p.clientWidth));
  const fy = Math.min(1, Math.max(0, (e.clientY - r.top - p.clientTop) / p.clientHeight));
  const [x0, x1, y0, y1] = bounds(s);
  return [x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)]; // y grows upwards, as on a plot
}

function placeMarker(s) {
  const [x0, x1, y0, y1] = bounds(s);
  const fx = (s.pos[0] - x0) / (x1 - x0), fy = (y1 - s.pos[1]) / (y1 - y0);
  s.marker.style.left = `${(100 * fx).toFixed(3)}%`;
  s.marker.style.top = `${(100 * fy).toFixed(3)}%`;
  // Exact numbers for tests and for anyone reading the DOM.
  s.plane.dataset.x = String(s.pos[0]);
  s.plane.dataset.y = String(s.pos[1]);
}

// ---------- interaction ----------

function onPointer(s, e, down) {
  s.pos = pxToPos(s, e);
  s.moves++;
  s.plane.dataset.moves = String(s.moves);
  placeMarker(s);
  if (browserMode(s)) {
    drawDecoded(s);
    if (!down) sendPos(s, false); // Python hears only the final position
  } else {
    sendPos(s, down);
  }
}

function onKey(s, e) {
  const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
  if (!step) return;
  e.preventDefault();
  const [x0, x1, y0, y1] = bounds(s);
  s.pos = [
    Math.min(x1, Math.max(x0, s.pos[0] + step[0] * (x1 - x0) / 50)),
    Math.min(y1, Math.max(y0, s.pos[1] + step[1] * (y1 - y0) / 50)),
  ];
  placeMarker(s);
  if (browserMode(s)) drawDecoded(s);
  sendPos(s, false);
}

function sendPos(s, down) {
  s.sender.send({ x: s.pos[0], y: s.pos[1], down });
}

// ---------- drawing ----------

// The drawn sample of the map (`pad._scatter_fields`): x, y pairs as base64 float32, a uint8 index
// into `palette` per point (or none: grey). Typed arrays, so 20,000 points cost 240 kB, not a
// JSON list of numbers.
function scatterArrays(d) {
  const xy = b64ToFloat32(d.xy);
  const codes = d.codes ? Uint8Array.from(atob(d.codes), (ch) => ch.charCodeAt(0)) : null;
  return { xy, codes, palette: d.palette || [], n: xy.length / 2, total: d.n_total };
}

function drawScatter(s) {
  const d = s.data;
  const key = `${s.scatterVersion}|${bounds(s).join(",")}|${d.size}`;
  if (key === s.drawnKey) return; // drawn once per scatter/bounds, not per update
  s.drawnKey = key;
  const dpr = window.devicePixelRatio || 1;
  const side = d.size || 280;
  s.bg.width = Math.round(side * dpr);
  s.bg.height = Math.round(side * dpr);
  const g = s.bg.getContext("2d");
  g.clearRect(0, 0, s.bg.width, s.bg.height);
  const sc = s.scatter;
  s.plane.dataset.scatterDrawn = String(sc ? sc.n : 0);
  s.plane.dataset.scatterTotal = String(sc ? sc.total : 0);
  if (!sc) return;
  const [x0, x1, y0, y1] = bounds(s);
  const sx = s.bg.width / (x1 - x0), sy = s.bg.height / (y1 - y0);
  const r = 1.6 * dpr;
  g.globalAlpha = 0.5; // faint: context, not the subject
  // One colour at a time: a fillStyle change per point costs more than the rectangle.
  const groups = sc.codes ? sc.palette.length : 1;
  for (let c = 0; c < groups; c++) {
    g.fillStyle = sc.codes ? sc.palette[c] : "#888";
    for (let i = 0; i < sc.n; i++) {
      if (sc.codes && sc.codes[i] !== c) continue;
      g.fillRect((sc.xy[2 * i] - x0) * sx - r / 2, (y1 - sc.xy[2 * i + 1]) * sy - r / 2, r, r);
    }
  }
}

function drawDecoded(s) {
  const d = s.data;
  const origin = d.origin, axes = d.axes;
  const z = origin.map((o, j) => o + s.pos[0] * axes[0][j] + s.pos[1] * axes[1][j]);
  paintDecoded(s, s.decoder, z);
}

// ---------- each data update ----------

function updatePad(s, d) {
  s.data = d;
  const side = d.size || 280;
  s.plane.style.width = s.plane.style.height = `${side}px`;

  // Cached payloads: take them when sent, say what we hold when they are not.
  if (d.xy) {
    s.scatterLoads = (s.scatterLoads || 0) + 1; // tests check the map travels once
    s.plane.dataset.scatterLoads = String(s.scatterLoads);
    s.scatter = scatterArrays(d);
    s.scatterVersion = d.scatter_version;
  } else if (!d.scatter_version) {
    s.scatter = null;
    s.scatterVersion = null;
  }
  takeDecoder(s, d);
  reportHeld(s, { scatter: s.scatterVersion, ...heldDecoder(s) });
  drawScatter(s);

  // Python handled positions up to d.ack; the next waiting position may go.
  s.sender.settle(d.ack);

  // Python may move the marker itself (first draw, a reset button); never mid-drag.
  const dataPos = JSON.stringify(d.pos);
  if (dataPos !== s.lastDataPos) {
    s.lastDataPos = dataPos;
    if (d.pos && !s.down && !s.sender.busy) s.pos = [d.pos[0], d.pos[1]];
  }
  placeMarker(s);
  // Mid-drag on the browser path the pointer handler paints each move already.
  showOutput(s, () => { if (!s.down) drawDecoded(s); }, 160);
}

export default function (component) {
  return mount(component, "__vaePad", setupPad, updatePad, (s) => s.sender.dispose());
}
