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

function errorLine(e) {
  return String(e && e.message ? e.message : e).split("\n")[0];
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
    const id = d.id, t0 = performance.now();
    reportStatus(s, { id, state: "loading" });
    createOnnxSession(id, d.onnx, d.ort_base, d.latent_dim).then(
      () => {
        const ms = Math.round(performance.now() - t0);
        const entry = ONNX.sessions.get(id);
        if (entry) entry.ms = ms; // for a later element of this session (below)
        reportStatus(s, { id, state: "ready", ms });
      },
      (e) => reportStatus(s, { id, state: "error", reason: errorLine(e) }),
    );
  } else if (!d.onnx && s.loading !== d.id && ONNX.sessions.has(d.id)) {
    // A new element for a session this page already holds (the page was drawn anew, or a run stopped
    // before reaching the loader while its session loaded). Report the session's state when it settles,
    // as the first element would have: that element may be gone before its report, and Python, still
    // holding "loading", would then keep the server path for good.
    s.loading = d.id;
    s.host.dataset.loads = String(ONNX.loads || 0);
    s.host.dataset.decoderId = d.id;
    const id = d.id, entry = ONNX.sessions.get(id);
    s.host.dataset.state = entry.session ? "ready" : "loading";
    entry.promise.then(
      () => reportStatus(s, entry.ms === undefined ? { id, state: "ready" } : { id, state: "ready", ms: entry.ms }),
      (e) => reportStatus(s, { id, state: "error", reason: errorLine(e) }),
    );
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
