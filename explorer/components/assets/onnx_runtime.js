// The ONNX loader: one small, invisible component per page that turns a decoder's ONNX bytes (sent once
// by Python, base64) into an onnxruntime-web session in the page's store (decoder.js: createOnnxSession),
// where the pad and the slider panels find it by id. It reports under state key "status"
// {id, state: "loading" | "ready" | "error", reason, ms}; Python sends the bytes only while the status
// names another id, and uses the browser path once it says "ready" (the server path, with the reason,
// after "error").
//
// Python puts decoder.js, sender.js and scaffold.js (mount, el) in front of this module.

function setupLoader(root) {
  const s = { data: null, loading: null, setStateValue: null };
  s.host = el("div", "vonnx", root);
  s.host.dataset.testid = "onnx-runtime";
  return s;
}

function reportStatus(s, status) {
  s.host.dataset.state = status.state;
  s.host.dataset.decoderId = status.id || "";
  if (status.reason) s.host.dataset.reason = status.reason;
  if (status.ms !== undefined) s.host.dataset.ms = String(status.ms);
  s.setStateValue("status", status);
}

// Report to Python how the session of decoder `id` ends: ready (with the time it took to make), or an
// error (its first line). Every element that shows the session does this, not only the one that asked
// for it: that one may be gone before the session is made.
function reportEnd(s, id, promise) {
  promise.then(
    (entry) => reportStatus(s, { id, state: "ready", ms: entry.ms }),
    (e) => reportStatus(s, { id, state: "error", reason: String(e && e.message ? e.message : e).split("\n")[0] }),
  );
}

function updateLoader(s, d) {
  s.data = d;
  if (!d.id) return;
  if (d.onnx && s.loading !== d.id) {
    s.loading = d.id;
    // sessions this page created, whatever element asked (tests check a decoder is loaded once); bytes sent
    // again by a rerun that came before this element's status reached Python find the session held
    if (!ONNX.sessions.has(d.id)) ONNX.loads = (ONNX.loads || 0) + 1;
    s.host.dataset.loads = String(ONNX.loads || 0);
    reportStatus(s, { id: d.id, state: "loading" });
    reportEnd(s, d.id, createOnnxSession(d.id, d.onnx, d.ort_base, d.latent_dim));
  } else if (!d.onnx && s.loading !== d.id && ONNX.sessions.has(d.id)) {
    // A new element for a session this page already holds (the page was drawn anew, or a run stopped
    // before reaching the loader while its session loaded): it reports the session's end too, or
    // Python, still holding "loading", would keep the server path for good.
    s.loading = d.id;
    s.host.dataset.loads = String(ONNX.loads || 0);
    s.host.dataset.decoderId = d.id;
    const entry = ONNX.sessions.get(d.id);
    s.host.dataset.state = entry.session ? "ready" : "loading";
    reportEnd(s, d.id, entry.promise);
  } else if (!d.onnx && s.loading !== d.id && !ONNX.sessions.has(d.id)) {
    // Python believes this page holds the decoder, but it does not (a new element for an old session):
    // say so, and the bytes come again.
    s.loading = null;
    reportStatus(s, { id: null, state: "missing" });
  }
}

export default function (component) {
  return mount(component, "__vaeOnnxLoader", setupLoader, updateLoader, () => {});
}
