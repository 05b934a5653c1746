// The in-browser decoder, shared by the pad and the slider panel: an MLP decoder's weights arrive
// once as base64 little-endian float32 (`browser_decoder.mlp_decoder_payload`); a plain loop in
// float64 reproduces torch's output within 1/255 per pixel (docs/live-decoding.md,
// "The design", point 3), and the image
// is painted on a canvas.

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
