// Shared by the pad and the slider panel (concatenated in front of each component's module by
// Python at registration): an MLP decoder run in the browser, and a seq/ack request sender.
//
// The decoder: weights arrive once as base64 little-endian float32; a plain loop in float64
// reproduces torch's output within 1/255 per pixel (REALTIME.md, point 3).

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

// Decode z and paint it on view.canvas (view: {canvas, ctx, imageData}; imageData is reused).
// Returns the number of decodes so far, also kept in the canvas's data-decodes for tests.
function paintLatent(view, dec, z) {
  const [C, H, W] = dec.output;
  const out = decodeLatent(dec, z);
  if (view.canvas.width !== W || view.canvas.height !== H) {
    view.canvas.width = W;
    view.canvas.height = H;
    view.imageData = null;
  }
  if (!view.imageData) view.imageData = view.ctx.createImageData(W, H);
  const px = view.imageData.data, plane = H * W;
  for (let p = 0; p < plane; p++) {
    // Grey images repeat their one channel; colour images use the first three.
    for (let ch = 0; ch < 3; ch++) px[4 * p + ch] = Math.round(255 * out[(C >= 3 ? ch : 0) * plane + p]);
    px[4 * p + 3] = 255;
  }
  view.ctx.putImageData(view.imageData, 0, 0);
  const n = Number(view.canvas.dataset.decodes || 0) + 1;
  view.canvas.dataset.decodes = String(n);
  return n;
}

// ---------- flow control for the Python path ----------
//
// Each value sent is numbered; Python echoes the last number it handled as `data.ack`. At most
// `maxInFlight` values are unanswered at once; the newest value waits and older waiting ones are
// dropped. `post(msg, seq)` does the sending (setStateValue). A lost rerun must not freeze the
// component: after `timeoutMs` without an answer the sender forgets what is in flight.

class Sender {
  constructor(post, { maxInFlight = 1, timeoutMs = 1500, onSend = null } = {}) {
    this.post = post;
    this.maxInFlight = maxInFlight;
    this.timeoutMs = timeoutMs;
    this.onSend = onSend;
    this.seq = 0;
    this.inFlight = []; // seq numbers sent and not yet acknowledged, oldest first
    this.pending = null;
    this.sends = 0;
    this.timer = null;
  }

  get busy() {
    return this.inFlight.length > 0 || this.pending !== null;
  }

  send(msg) {
    if (this.inFlight.length >= this.maxInFlight) {
      this.pending = msg;
      return;
    }
    this.pending = null;
    this.seq += 1;
    this.inFlight.push(this.seq);
    this.sends += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(Infinity), this.timeoutMs);
    if (this.onSend) this.onSend(this.sends);
    this.post(msg, this.seq);
  }

  // Python handled everything up to `ack` (null/undefined: it answered without handling any).
  settle(ack) {
    const a = ack === null || ack === undefined ? Infinity : ack;
    if (Number.isFinite(a) && a > this.seq) this.seq = a; // a new instance continues the numbering
    const before = this.inFlight.length;
    this.inFlight = this.inFlight.filter((q) => q > a);
    if (this.inFlight.length === 0) clearTimeout(this.timer);
    if (this.inFlight.length < before && this.pending) {
      const p = this.pending;
      this.pending = null;
      this.send(p);
    }
  }

  drop() {
    this.pending = null;
  }

  dispose() {
    clearTimeout(this.timer);
  }
}

// ---------- shared by both components ----------

// A new element of `tag` with class `cls`, appended to `parent`.
function el(tag, cls, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  parent.appendChild(e);
  return e;
}


// Show Python's PNG answer unless a newer one is already drawn (with two requests in flight,
// answers can arrive out of order; an older image must never replace a newer one).
function showAnswer(s, d) {
  if (!d.image || s.img.getAttribute("src") === d.image) return;
  const ack = typeof d.ack === "number" ? d.ack : 0;
  if (ack < s.drawnAck) return;
  s.drawnAck = ack;
  s.img.dataset.ack = String(ack); // which request this image answers (tests check the order)
  s.img.src = d.image;
}

// Tell Python which cached payloads this element holds: it resends them only while these differ.
function reportHeld(s, have) {
  const txt = JSON.stringify(have);
  if (txt === s.reported) return;
  s.reported = txt;
  s.setStateValue("cache", have);
}

// A component's default export: setup once (kept on parentElement, since the export is called
// again on every data change), update on each call, teardown only when the element has really
// left the page (Streamlit may call an outdated call's cleanup while the element lives on).
function mount(component, slot, setup, update, teardown) {
  const { data, setStateValue, parentElement } = component;
  let s = parentElement[slot];
  if (!s) {
    s = setup(parentElement);
    parentElement[slot] = s;
  }
  s.setStateValue = setStateValue;
  update(s, data || {});
  return () => {
    const host = parentElement.host || parentElement;
    if (!host.isConnected) {
      teardown(s);
      delete parentElement[slot];
    }
  };
}
