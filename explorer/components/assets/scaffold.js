// The component scaffold shared by the pad and the slider panel: mounting, DOM helpers, and the
// per-component state both keep the same way (which path decodes, the decoder held, the sender to
// Python, and which of Python's image or the browser's canvas is shown).
//
// A component's state `s` (built by its setup, kept on parentElement) holds at least: `data` (the
// latest `data` from Python), `decoder` (loaded weights, or null), `host` (the element whose
// data-* attributes report mode, sends and decoder loads to tests), `img`, `canvas` and `ctx`
// (from addView), `drawnAck` (-1 at first), `reported` and `setStateValue`.

// How long a Sender waits for Python to answer the values in flight (it restarts at each send).
// When it runs out, the Sender forgets those values (they are not sent again) and sends the
// newest waiting value, if any: a lost rerun must not freeze the component (sender.js).
const ACK_TIMEOUT_MS = 1500;

// A new element of `tag` with class `cls`, appended to `parent`.
function el(tag, cls, parent) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  parent.appendChild(e);
  return e;
}

// The image (Python's PNG answer) and the canvas (the browser's decode) inside `view`, with
// classes `${cls}-img` / `${cls}-decoded` and test ids `${testid}-image` / `${testid}-canvas`;
// the view's class `latent-view` sizes and styles both (scaffold.css).
function addView(s, view, cls, testid, alt) {
  view.classList.add("latent-view");
  s.img = el("img", `${cls}-img`, view);
  s.img.alt = alt;
  s.img.dataset.testid = `${testid}-image`;
  s.canvas = el("canvas", `${cls}-decoded`, view);
  s.canvas.dataset.testid = `${testid}-canvas`;
  s.ctx = s.canvas.getContext("2d");
}

// The component's Sender: posts `{...msg, seq}` under state key `name` and counts the sends in
// the host's data-sends.
function makeSender(s, name, maxInFlight) {
  return new Sender((msg, seq) => s.setStateValue(name, { ...msg, seq }), {
    maxInFlight, timeoutMs: ACK_TIMEOUT_MS,
    onSend: (n) => { s.host.dataset.sends = String(n); },
  });
}

// True when the browser decodes: Python asks for it (`data.decoder_id`) and that decoder is held (an
// ONNX decoder: its session is ready in the page's store).
function browserMode(s) {
  const dec = s.decoder;
  if (!(s.data.decoder_id && dec && dec.id === s.data.decoder_id)) return false;
  return dec.kind !== "onnx" || !!onnxEntry(dec.id);
}

// What identifies the picture a decoder paints from the same inputs: its id, and for an ONNX decoder
// of a strength the point and vector it moves along (they change without the session changing).
function paintKey(dec) {
  return dec.kind === "onnx" && dec.affine ? `${dec.id}|${dec.affine.key}` : dec.id;
}

// Load the decoder weights `d` carries unless they are the ones held; the host's
// data-decoder-loads counts the loads (tests check the weights travel once). A first layer alone
// (`decoder.first`, Python sends it while the browser reports holding its base model) replaces
// layer 0 of the held decoder, counted in data-layer-swaps; if the held decoder is of another
// model, it is dropped, so the next report asks for the whole decoder.
function takeDecoder(s, d) {
  const p = d.decoder;
  if (p && p.kind === "onnx") {
    // A reference to a session in the page's store (the loader component made it): a few bytes, taken
    // on every update, so a new point or vector of a strength slider comes with it.
    s.decoder = { id: p.id, kind: "onnx", output: p.output, affine: p.affine || null };
    return;
  }
  if (!p || (s.decoder && s.decoder.id === p.id)) return;
  if (p.first) {
    const ok = s.decoder && s.decoder.baseId === p.base_id;
    s.decoder = ok ? swapFirstLayer(s.decoder, p) : null;
    if (ok) {
      s.layerSwaps = (s.layerSwaps || 0) + 1;
      s.host.dataset.layerSwaps = String(s.layerSwaps);
    }
    return;
  }
  s.decoder = loadDecoder(p);
  s.decoderLoads = (s.decoderLoads || 0) + 1;
  s.host.dataset.decoderLoads = String(s.decoderLoads);
}

// The decoder part of a component's report: its id, and under "base" the model it derives from
// (only for a derived decoder, so the reports of the others stay as they were).
function heldDecoder(s) {
  const have = { decoder: s.decoder && s.decoder.kind !== "onnx" ? s.decoder.id : null };
  if (s.decoder && s.decoder.baseId) have.base = s.decoder.baseId;
  return have;
}

// Show the answer of the path in use and hide the other: on the browser path `paint()` draws on
// the canvas; on the Python path the image shows Python's PNG (hidden while there is none). Sets
// the host's data-mode and the view's side (`data.view_size`, else `side` px). Returns whether
// the browser path is in use.
function showOutput(s, paint, side) {
  const d = s.data, browser = browserMode(s);
  s.host.dataset.mode = browser ? "browser" : "python";
  if (browser) {
    paint();
  } else {
    showAnswer(s, d);
  }
  s.canvas.style.display = browser ? "block" : "none";
  s.img.style.display = !browser && d.image ? "block" : "none";
  const view = s.img.parentElement;
  view.style.width = view.style.height = `${d.view_size || side}px`;
  return browser;
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

// One widget update per browser task, across every component on the page. Streamlit gathers the
// widget updates of one task into one message to Python, sent for ONE fragment: when components
// in different fragments (the pad, the latent sliders, the strength slider each have their own)
// reported in the same task, as they do when they mount together, Streamlit warned "Multiple
// different fragmentIds detected in a single batch" and reran only the first fragment. Here the
// first update goes at once, and each one queued behind it waits for a task of its own (after
// Streamlit's flush, itself a setTimeout 0), in order. The queue is on `window`: each component's
// module is its own copy of this file.
function sendInTurn(send) {
  const q = window.__vaeSendQueue || (window.__vaeSendQueue = { items: [], busy: false });
  q.items.push(send);
  if (q.busy) return;
  q.busy = true;
  const drain = () => {
    const next = q.items.shift();
    if (!next) {
      q.busy = false;
      return;
    }
    try {
      next();
    } finally {
      setTimeout(drain, 0);
    }
  };
  drain();
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
  s.setStateValue = (key, value) => sendInTurn(() => setStateValue(key, value));
  update(s, data || {});
  return () => {
    const host = parentElement.host || parentElement;
    if (!host.isConnected) {
      teardown(s);
      delete parentElement[slot];
    }
  };
}
