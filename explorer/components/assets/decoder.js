// The in-browser decoders, shared by the pad and the slider panels.
//
// MLP decoders: the weights arrive once as base64 little-endian float32
// (`browser_decoder.mlp_decoder_payload`); a plain loop in float64 reproduces torch's output within
// 1/255 per pixel (docs/live-decoding.md, "The design", point 3), and the image is painted on a canvas.
//
// Any other decoder: an ONNX graph run by onnxruntime-web (WebAssembly, one thread), from the files the
// app serves (static/onnxruntime-web/). One store per page (`ONNX`, on globalThis: the window) holds the runtime and one
// session per decoder id; the loader component (onnx_runtime.js) creates each session from bytes Python
// sends once, and the pad and the sliders find it here by id.

function b64ToFloat32(b64) {
  // The payload is little-endian float32, which is every browser's native order.
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function loadLayer(l) {
  return { w: b64ToFloat32(l.w), b: b64ToFloat32(l.b), nOut: l.shape[0], nIn: l.shape[1], relu: l.relu };
}

// baseId: the model payload's id for a decoder derived from it (a new first layer), else null.
function loadDecoder(payload) {
  return { id: payload.id, baseId: payload.base_id || null, layers: payload.layers.map(loadLayer),
           output: payload.output };
}

// A derived decoder sent as its first layer alone (`payload.first`): that layer over the deeper
// layers of `held`, a decoder of the same base model, whose typed arrays are kept, not decoded again.
function swapFirstLayer(held, payload) {
  return { id: payload.id, baseId: payload.base_id, layers: [loadLayer(payload.first), ...held.layers.slice(1)],
           output: payload.output };
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

// Paint a decoded image `out` (C*H*W values in [0, 1], laid out (C, H, W)) on view.canvas (view:
// {canvas, ctx, imageData}; imageData is reused). Returns the number of images painted so far, also
// kept in the canvas's data-decodes for tests.
function paintImage(view, out, output) {
  const [C, H, W] = output;
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

// Decode z with an MLP decoder and paint it (synchronous).
function paintLatent(view, dec, z) {
  return paintImage(view, decodeLatent(dec, z), dec.output);
}

// ---------- ONNX decoders ----------

const ONNX = globalThis.__vaeOnnx || (globalThis.__vaeOnnx = { ort: null, ortPromise: null, sessions: new Map() });

// Load the vendored onnxruntime-web once per page: a <script> of ort.wasm.min.js from `base` (a URL
// folder ending in "/"); its WebAssembly files come from the same folder. One thread: threads need
// cross-origin isolation, which the app's pages do not have.
function loadOrt(base) {
  if (ONNX.ortPromise) return ONNX.ortPromise;
  ONNX.ortPromise = new Promise((resolve, reject) => {
    if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
      reject(new Error("this browser has no WebAssembly"));
      return;
    }
    const folder = new URL(base, window.location.href).href;
    const script = document.createElement("script");
    script.src = `${folder}ort.wasm.min.js`;
    script.onload = () => {
      const ort = window.ort;
      if (!ort || !ort.InferenceSession) {
        reject(new Error("ort.wasm.min.js loaded but defined no onnxruntime"));
        return;
      }
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      ort.env.wasm.wasmPaths = folder;
      ONNX.ort = ort;
      resolve(ort);
    };
    script.onerror = () => reject(new Error(`could not load ${script.src}`));
    document.head.appendChild(script);
  });
  ONNX.ortPromise.catch(() => { ONNX.ortPromise = null; }); // a later page load may try again
  return ONNX.ortPromise;
}

function b64ToBytes(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

// The session of decoder `id`, created once per page from base64 ONNX bytes; resolves to the store's
// entry {id, session, queue, ms} after one trial decode of z = 0 (so a graph the runtime cannot run fails
// here, not at the first slider step); ms: how long the session took to make.
function createOnnxSession(id, b64, base, latentDim) {
  const held = ONNX.sessions.get(id);
  if (held) return held.promise;
  const entry = { id, session: null, queue: Promise.resolve(), promise: null, ms: undefined };
  const t0 = performance.now();
  entry.promise = (async () => {
    const ort = await loadOrt(base);
    const session = await ort.InferenceSession.create(b64ToBytes(b64), {
      executionProviders: ["wasm"], graphOptimizationLevel: "all",
    });
    const z = new ort.Tensor("float32", new Float32Array(latentDim), [1, latentDim]);
    await session.run({ [session.inputNames[0]]: z });
    entry.session = session;
    entry.ms = Math.round(performance.now() - t0);
    return entry;
  })();
  entry.promise.catch(() => ONNX.sessions.delete(id)); // failed: a new page (or new bytes) tries again
  ONNX.sessions.set(id, entry);
  return entry.promise;
}

// The ready store entry of decoder `id`, or null while it loads or where it failed.
function onnxEntry(id) {
  const e = ONNX.sessions.get(id);
  return e && e.session ? e : null;
}

// Decode z with an ONNX decoder and paint it, asynchronously. While a decode runs, only the newest z
// waits (older ones are dropped), so the picture follows the pointer and always ends on the last z.
// Runs of one session are queued (the pad and the sliders share it). dec.affine = {base, vector} turns
// the one input s into z = base + s * vector (a strength slider).
function paintOnnx(view, dec, z) {
  let zz = z;
  if (dec.affine) zz = dec.affine.base.map((b, j) => b + z[0] * dec.affine.vector[j]);
  view.onnxNext = { dec, z: Float32Array.from(zz) };
  if (!view.onnxBusy) runOnnx(view);
}

// The canvas's data-busy is "1" while decodes are running or waiting, "0" once the last z is painted.
async function runOnnx(view) {
  view.onnxBusy = true;
  view.canvas.dataset.busy = "1";
  try {
    while (view.onnxNext) {
      const { dec, z } = view.onnxNext;
      view.onnxNext = null;
      const entry = onnxEntry(dec.id);
      if (!entry) break;
      const run = entry.queue.then(async () => {
        const s = entry.session;
        const out = await s.run({ [s.inputNames[0]]: new ONNX.ort.Tensor("float32", z, [1, z.length]) });
        const t = out[s.outputNames[0]];
        paintImage(view, t.data, dec.output);
        if (t.dispose) t.dispose();
      });
      entry.queue = run.catch(() => {});
      await run;
    }
  } catch (e) {
    view.canvas.dataset.decodeError = String(e && e.message ? e.message : e);
  } finally {
    view.onnxBusy = false;
    view.canvas.dataset.busy = "0";
  }
}

// Decode z with whichever decoder `dec` is and paint it.
function paintDecoded(view, dec, z) {
  if (dec.kind === "onnx") paintOnnx(view, dec, z);
  else paintLatent(view, dec, z);
}
