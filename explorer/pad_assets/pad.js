// The latent pad: a 2-D plane whose marker follows the pointer at once, and the decoded image.
//
// Streamlit calls the default export on mount and again on every change of `data`, so the DOM,
// listeners and decoded weights are built once and kept on `parentElement` (REALTIME.md).
//
// Two ways to get an image while dragging:
//   Python path  - each position is numbered and sent with setStateValue("pos"); only one request
//                  is in flight: Python echoes the last number it handled as `data.ack`, and the
//                  newest pending position goes next. The image comes back as a data URI.
//   Browser path - with `data.decoder_id` set, an MLP decoder's weights (sent once) decode every
//                  pointer move here; Python hears of the position only on release.

const ACK_TIMEOUT_MS = 1500; // a lost rerun must not freeze the pad: resend after this
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

// ---------- decoding in the browser ----------

function b64ToFloat32(b64) {
  // The payload is little-endian float32, which is every browser's native order.
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function loadDecoder(payload) {
  const layers = payload.layers.map((l) => ({
    w: b64ToFloat32(l.w), b: b64ToFloat32(l.b), nOut: l.shape[0], nIn: l.shape[1], relu: l.relu,
  }));
  return { id: payload.id, layers, output: payload.output };
}

// z (D,) -> sigmoid(MLP(z)) as a Float64Array laid out (C, H, W), as torch's Unflatten does.
function decodeLatent(dec, z) {
  let h = Float64Array.from(z);
  for (const l of dec.layers) {
    const out = new Float64Array(l.nOut);
    for (let j = 0; j < l.nOut; j++) {
      let acc = l.b[j];
      const row = j * l.nIn;
      for (let i = 0; i < l.nIn; i++) acc += l.w[row + i] * h[i];
      out[j] = l.relu && acc < 0 ? 0 : acc;
    }
    h = out;
  }
  for (let k = 0; k < h.length; k++) h[k] = 1 / (1 + Math.exp(-h[k]));
  return h;
}

// ---------- one-time setup ----------

function el(tag, cls, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  parent.appendChild(e);
  return e;
}

function setup(root) {
  const s = {
    seq: 0, inFlight: null, sentAt: 0, pending: null, timer: null,
    pos: [0, 0], down: false, lastDataPos: null, data: null,
    scatterVersion: null, points: null, colors: null, drawnKey: null,
    decoder: null, reported: null, moves: 0, decodes: 0, sends: 0,
    setStateValue: null,
  };
  const wrap = el("div", "vpad", root);
  s.plane = el("div", "vpad-plane", wrap);
  s.plane.tabIndex = 0;
  s.plane.dataset.testid = "latent-pad";
  s.bg = el("canvas", "vpad-bg", s.plane);
  s.marker = el("div", "vpad-marker", s.plane);
  const view = el("div", "vpad-view", wrap);
  s.img = el("img", "vpad-img", view);
  s.img.alt = "decoded image";
  s.img.dataset.testid = "latent-pad-image";
  s.canvas = el("canvas", "vpad-decoded", view);
  s.canvas.dataset.testid = "latent-pad-canvas";
  s.ctx = s.canvas.getContext("2d");

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

function browserMode(s) {
  return !!(s.data.decoder_id && s.decoder && s.decoder.id === s.data.decoder_id);
}

function onPointer(s, e, down) {
  s.pos = pxToPos(s, e);
  s.moves++;
  s.plane.dataset.moves = String(s.moves);
  placeMarker(s);
  if (browserMode(s)) {
    drawDecoded(s);
    if (!down) send(s, false); // Python hears only the final position
  } else {
    send(s, down);
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
  send(s, false);
}

// Flow control: at most one request in flight; the newest position waits its turn.
function send(s, down, pos = s.pos) {
  const msg = { x: pos[0], y: pos[1], down };
  if (s.inFlight !== null) {
    s.pending = msg;
    return;
  }
  s.seq += 1;
  s.inFlight = s.seq;
  s.sentAt = performance.now();
  s.sends++;
  s.plane.dataset.sends = String(s.sends);
  clearTimeout(s.timer);
  s.timer = setTimeout(() => settle(s), ACK_TIMEOUT_MS);
  s.setStateValue("pos", { ...msg, seq: s.seq });
}

function settle(s) {
  clearTimeout(s.timer);
  s.inFlight = null;
  if (s.pending) {
    const p = s.pending;
    s.pending = null;
    send(s, p.down, [p.x, p.y]);
  }
}

// ---------- drawing ----------

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
  const pts = s.points;
  if (!pts) return;
  const [x0, x1, y0, y1] = bounds(s);
  const sx = s.bg.width / (x1 - x0), sy = s.bg.height / (y1 - y0);
  const r = 1.6 * dpr;
  g.globalAlpha = 0.5; // faint: context, not the subject
  for (let i = 0, k = 0; k + 1 < pts.length; i++, k += 2) {
    const c = s.colors ? s.colors[i] : null;
    g.fillStyle = typeof c === "number" ? PALETTE[((c % 10) + 10) % 10] : (c || "#888");
    g.fillRect((pts[k] - x0) * sx - r / 2, (y1 - pts[k + 1]) * sy - r / 2, r, r);
  }
}

function drawDecoded(s) {
  const d = s.data;
  const origin = d.origin, axes = d.axes;
  const z = origin.map((o, j) => o + s.pos[0] * axes[0][j] + s.pos[1] * axes[1][j]);
  const [C, H, W] = s.decoder.output;
  const out = decodeLatent(s.decoder, z);
  if (s.canvas.width !== W || s.canvas.height !== H) {
    s.canvas.width = W;
    s.canvas.height = H;
    s.imageData = null;
  }
  if (!s.imageData) s.imageData = s.ctx.createImageData(W, H);
  const px = s.imageData.data, plane = H * W;
  for (let p = 0; p < plane; p++) {
    // Grey images repeat their one channel; colour images use the first three.
    for (let ch = 0; ch < 3; ch++) px[4 * p + ch] = Math.round(255 * out[(C >= 3 ? ch : 0) * plane + p]);
    px[4 * p + 3] = 255;
  }
  s.ctx.putImageData(s.imageData, 0, 0);
  s.decodes++;
  s.canvas.dataset.decodes = String(s.decodes);
}

// ---------- each data update ----------

function reportCache(s) {
  // Python resends the scatter/weights only while this differs from its version ids.
  const have = { scatter: s.scatterVersion, decoder: s.decoder ? s.decoder.id : null };
  const txt = JSON.stringify(have);
  if (txt === s.reported) return;
  s.reported = txt;
  s.setStateValue("cache", have);
}

function update(s, d) {
  s.data = d;
  const side = d.size || 280;
  s.plane.style.width = s.plane.style.height = `${side}px`;

  // Cached payloads: take them when sent, say what we hold when they are not.
  if (d.points) {
    s.scatterLoads = (s.scatterLoads || 0) + 1; // tests check the map travels once
    s.plane.dataset.scatterLoads = String(s.scatterLoads);
    s.points = d.points;
    s.colors = d.colors || null;
    s.scatterVersion = d.scatter_version;
  } else if (!d.scatter_version) {
    s.points = null;
    s.scatterVersion = null;
  }
  if (d.decoder && (!s.decoder || s.decoder.id !== d.decoder.id)) {
    s.decoder = loadDecoder(d.decoder);
    s.decoderLoads = (s.decoderLoads || 0) + 1;
    s.plane.dataset.decoderLoads = String(s.decoderLoads);
  }
  reportCache(s);
  drawScatter(s);

  // A new instance continues numbering after what Python already handled.
  if (typeof d.ack === "number" && d.ack > s.seq) s.seq = d.ack;
  if (s.inFlight !== null && (d.ack === null || d.ack === undefined || d.ack >= s.inFlight)) settle(s);

  // Python may move the marker itself (first draw, a reset button); never mid-drag.
  const dataPos = JSON.stringify(d.pos);
  if (dataPos !== s.lastDataPos) {
    s.lastDataPos = dataPos;
    if (d.pos && !s.down && s.inFlight === null && !s.pending) s.pos = [d.pos[0], d.pos[1]];
  }
  placeMarker(s);

  const browser = browserMode(s);
  s.plane.dataset.mode = browser ? "browser" : "python";
  if (browser) {
    if (!s.down) drawDecoded(s);
  } else if (d.image && s.img.getAttribute("src") !== d.image) {
    s.img.src = d.image;
  }
  s.canvas.style.display = browser ? "block" : "none";
  s.img.style.display = !browser && d.image ? "block" : "none";
  s.img.parentElement.style.width = s.img.parentElement.style.height = `${d.view_size || 160}px`;
}

export default function (component) {
  const { data, setStateValue, parentElement } = component;
  let s = parentElement.__vaePad;
  if (!s) {
    s = setup(parentElement);
    parentElement.__vaePad = s;
  }
  s.setStateValue = setStateValue;
  update(s, data || {});
  return () => {
    // Streamlit may call an outdated call's cleanup while the pad lives on: tear down only
    // when the pad has really left the page.
    const host = parentElement.host || parentElement;
    if (!host.isConnected) {
      clearTimeout(s.timer);
      delete parentElement.__vaePad;
    }
  };
}
