// The latent slider panel: one range input per latent dimension and the decoded image.
//
// Python puts decoder.js (loadDecoder, paintLatent), sender.js (Sender) and scaffold.js (mount,
// el, addView, makeSender, browserMode, takeDecoder, heldDecoder, showOutput, reportHeld) in front
// of this module (`explorer/components/base.py`). Streamlit calls the default export on mount and again
// on every change of `data`; the DOM and listeners are built once and kept on `parentElement`.
//
// Two ways to get the image:
//   Browser path - with `data.decoder_id` set (an MLP decoder, weights sent once; or an ONNX
//                  decoder, whose session the page's loader holds), every `input` event decodes here; Python is told the vector on `change` (release), so its
//                  copy of z stays in sync.
//   Python path  - every `input` sends the vector (numbered, one request in flight, the newest
//                  waiting value goes next); Python answers with `data.image`, a PNG data URI.
// Python sets the values with `data.z` and `data.z_version`: a new version is adopted at once,
// or on release when it arrives mid-drag. Values sent carry the version they started from, so
// Python ignores a vector based on values it has since replaced.

const SLIDERS_MAX_IN_FLIGHT = 1;
const STEP = 0.05;

function setupSliders(root) {
  const s = {
    data: null, z: [], version: null, metaId: null, rows: [], dragging: false,
    decoder: null, reported: null, drawnAck: -1, setStateValue: null,
  };
  s.root = el("div", "vsl", root);
  s.root.dataset.testid = "latent-sliders";
  s.host = s.root;
  s.grid = el("div", "vsl-grid", s.root);
  const side = el("div", "vsl-side", s.root);
  addView(s, el("div", "vsl-view", side), "vsl", "latent-sliders", "decode(z)");
  s.caption = el("div", "vsl-caption", side);
  s.caption.textContent = "decode(z)";
  s.sender = makeSender(s, "z", SLIDERS_MAX_IN_FLIGHT);

  // One set of listeners on the grid for every row (rows are rebuilt when the dimensions change).
  s.grid.addEventListener("pointerdown", (e) => {
    if (e.target.type === "range") s.dragging = true;
  });
  const endDrag = () => {
    if (!s.dragging) return;
    s.dragging = false;
    // Values Python set while the user was dragging win now, before anything else is sent.
    if (adoptIfNew(s)) render(s);
  };
  window.addEventListener("pointerup", endDrag);
  window.addEventListener("pointercancel", endDrag);
  s.endDrag = endDrag;
  s.grid.addEventListener("input", (e) => onInput(s, e));
  s.grid.addEventListener("change", (e) => onChange(s, e));
  return s;
}

// ---------- rows ----------

function fmt(v) {
  return (Math.abs(v) < 0.005 ? 0 : v).toFixed(2);
}

function buildRows(s, meta) {
  s.grid.replaceChildren();
  s.rows = meta.dims.map((d) => {
    const row = el("label", "vsl-row", s.grid);
    row.title = d.help || "";
    if (d.collapsed) row.classList.add("vsl-collapsed");
    const name = el("span", "vsl-name", row);
    name.textContent = d.label;
    const out = el("output", "vsl-value", row);
    const input = el("input", "vsl-range", row);
    input.type = "range";
    input.step = String(STEP);
    input.dataset.dim = String(d.j);
    input.setAttribute("aria-label", d.label);
    return { j: d.j, input, out };
  });
  s.metaId = meta.id;
}

function setRanges(s) {
  // Never clip a code: the range widens to hold any value Python sets.
  for (const r of s.rows) {
    const v = s.z[r.j] ?? 0;
    r.input.min = String(Math.min(-3, Math.floor(v)));
    r.input.max = String(Math.max(3, Math.ceil(v)));
    r.input.value = String(v);
    r.out.textContent = fmt(v);
  }
}

// Adopt Python's values if they are a version we do not hold and the user is not dragging.
function adoptIfNew(s) {
  const d = s.data;
  if (!d || d.z_version === s.version || s.dragging || !Array.isArray(d.z)) return false;
  s.version = d.z_version;
  s.z = d.z.slice();
  s.sender.drop(); // a waiting vector from the old values must not overwrite the new ones
  setRanges(s);
  return true;
}

// ---------- interaction ----------

function onInput(s, e) {
  const input = e.target;
  if (input.type !== "range") return;
  const j = Number(input.dataset.dim);
  s.z[j] = Number(input.value);
  const row = s.rows.find((r) => r.j === j);
  if (row) row.out.textContent = fmt(s.z[j]);
  if (browserMode(s)) {
    paintDecoded(s, s.decoder, s.z);
  } else {
    sendZ(s, false);
  }
}

function onChange(s, e) {
  if (e.target.type !== "range") return;
  if (browserMode(s)) sendZ(s, true); // Python hears the vector on release only
  if (s.dragging) s.endDrag();
}

function sendZ(s, final) {
  s.sender.send({ values: s.z.slice(), version: s.version, final });
}

// ---------- drawing ----------

function render(s) {
  showOutput(s, () => paintDecoded(s, s.decoder, s.z), 224);
}

// ---------- each data update ----------

function updateSliders(s, d) {
  s.data = d;
  // Another panel of the same kind (one strength slider) names itself; the default stays latent-sliders.
  if (d.testid && s.root.dataset.testid !== d.testid) {
    s.root.dataset.testid = d.testid;
    s.img.dataset.testid = `${d.testid}-image`;
    s.canvas.dataset.testid = `${d.testid}-canvas`;
  }
  if (d.caption && s.caption.textContent !== d.caption) s.caption.textContent = d.caption;
  if (d.meta && d.meta.id !== s.metaId) {
    buildRows(s, d.meta);
    s.version = null; // new rows: take Python's values whatever their version
  }
  takeDecoder(s, d);
  reportHeld(s, { meta: s.metaId, ...heldDecoder(s) });
  s.sender.settle(d.ack);
  const adopted = adoptIfNew(s);
  // The browser path repaints only for new values or a new decoder: after a release Python's
  // answer holds the values already on the canvas.
  const painted = browserMode(s) ? paintKey(s.decoder) : null;
  if (adopted || !painted || painted !== s.painted) render(s);
  s.painted = painted;
  s.root.dataset.version = String(s.version);
}

export default function (component) {
  return mount(component, "__vaeSliders", setupSliders, updateSliders, (s) => {
    s.sender.dispose();
    window.removeEventListener("pointerup", s.endDrag);
    window.removeEventListener("pointercancel", s.endDrag);
  });
}
