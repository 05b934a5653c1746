// The latent map: plotly.js draws the base figure (the N points, sent once per content id) and
// the overlay traces (the selected point, its posterior samples) that Python sends on each run.
// A click reports the point's customdata (its row) under state key "click".
//
// Python puts scaffold.js (mount, el, reportHeld) in front of this module
// (`explorer/components/latent_map.py`).

// Evaluate plotly.min.js once per page; it sets window.Plotly (UMD with no module system around).
function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__vaePlotlyLoading) {
    window.__vaePlotlyLoading = new Promise((resolve, reject) => {
      const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
      const tag = document.createElement("script");
      tag.src = url;
      tag.onload = () => { URL.revokeObjectURL(url); resolve(window.Plotly); };
      tag.onerror = reject;
      document.head.appendChild(tag);
    });
  }
  return window.__vaePlotlyLoading;
}

function setupMap(root) {
  const s = { data: null, base: null, baseId: null, plotlyId: null, reported: null, clicks: 0,
              drawn: 0, setStateValue: null, chain: Promise.resolve() };
  s.host = el("div", "vmap", root);
  s.host.dataset.testid = "latent-map";
  s.status = el("div", "vmap-status", s.host);
  s.status.textContent = "Loading the map...";
  s.plot = el("div", "vmap-plot", s.host);
  return s;
}

async function drawMap(s, d) {
  if (d.plotly_js && !window.Plotly) await loadPlotly(d.plotly_js);
  if (!window.Plotly) return; // Python sends plotly.js again while we do not report it
  s.plotlyId = d.plotly_id;
  if (d.figure) {
    s.base = JSON.parse(d.figure);
    s.baseId = d.figure_id;
  }
  if (!s.base || s.baseId !== d.figure_id) return; // wait for the figure we are told to show
  const overlay = JSON.parse(d.overlay).data;
  const layout = { ...s.base.layout, height: d.height || s.base.layout.height };
  await window.Plotly.react(s.plot, s.base.data.concat(overlay), layout,
                            { scrollZoom: true, displaylogo: false, responsive: true });
  if (!s.listening) {
    s.listening = true;
    s.plot.on("plotly_click", (ev) => {
      const p = ev && ev.points && ev.points.find((q) => q.customdata !== undefined);
      if (!p) return;
      s.clicks += 1;
      s.host.dataset.clicked = String(p.customdata);
      s.setStateValue("click", { index: Number(p.customdata), seq: s.clicks });
    });
  }
  s.drawn += 1;
  s.status.textContent = "";
  s.host.dataset.figureId = s.baseId;
  s.host.dataset.draws = String(s.drawn);
  s.host.dataset.points = String(countTyped(s.plot));
}

// Points plotly actually holds after drawing: the base traces' customdata, which plotly decoded
// from base64 ("bdata") into typed arrays (gd.data keeps the encoded spec; _fullData the arrays).
function countTyped(gd) {
  let n = 0;
  for (const t of gd._fullData) if (t.customdata && t.customdata.length) n += t.customdata.length;
  return n;
}

function updateMap(s, d) {
  s.data = d;
  // Draws run one after another: a new run's data waits for the previous draw to finish.
  s.chain = s.chain.then(() => drawMap(s, d)).catch((e) => {
    s.status.textContent = `The map could not be drawn: ${e}`;
  }).then(() => {
    const have = {};
    if (window.Plotly && s.plotlyId) have.plotly = s.plotlyId;
    if (s.baseId) have.figure = s.baseId;
    reportHeld(s, have);
  });
}

function teardownMap(s) {
  if (window.Plotly && s.plot) window.Plotly.purge(s.plot);
}

export default function (component) {
  return mount(component, "__vaeLatentMap", setupMap, updateMap, teardownMap);
}
