// The latent map: plotly.js draws the base figure (the N points, sent once per content id), the
// density layer (held by id too) and the overlay traces (the selected point, its posterior
// samples) that Python sends on each run.
// A click reports the point's customdata (its row) under state key "click"; a box or lasso
// selection reports its rows under "selection" as base64 int32 (4 bytes a point).
// Hovering a point shows its image from the thumbnail sprite sheet (held by id, no server round
// trip); the "thumbnails" view draws the images in place of the dots once few enough are in view.
//
// Python puts scaffold.js (mount, el, reportHeld) in front of this module
// (`explorer/components/latent_map.py`).

const HOVER_SIDE = 96; // the hover thumbnail's CSS size (px, longer side), upscaled without smoothing
const MAP_THUMB_SIDE = 28; // a thumbnail drawn on the map (px, longer side) at least

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
              drawn: 0, setStateValue: null, chain: Promise.resolve(), thumbs: null, density: null,
              sel: { id: null, rows: null, seq: 0 }, rowsOf: new WeakMap() };
  s.host = el("div", "vmap", root);
  s.host.dataset.testid = "latent-map";
  s.status = el("div", "vmap-status", s.host);
  s.status.textContent = "Loading the map...";
  s.plot = el("div", "vmap-plot", s.host);
  s.tcanvas = el("canvas", "vmap-thumbs", s.host); // the "thumbnails" view, over the plot area
  s.tcanvas.dataset.testid = "latent-map-thumbs";
  s.note = el("div", "vmap-note", s.host); // what the thumbnails view is doing, in words
  s.hover = el("div", "vmap-hover", s.host); // the hovered point's image
  s.hover.dataset.testid = "latent-map-hover";
  s.hcanvas = el("canvas", "vmap-hover-img", s.hover);
  s.hcaption = el("div", "vmap-hover-caption", s.hover);
  return s;
}

// --- payloads held by content id --------------------------------------------------------------

// The sprite sheet: an <img> decoded once; image i at row floor(i / ncol), column i % ncol.
async function takeThumbs(s, d) {
  if (!d.thumbs || (s.thumbs && s.thumbs.id === d.thumbs_id)) return;
  const img = new Image();
  img.src = d.thumbs.src;
  await img.decode();
  s.thumbs = { ...d.thumbs, id: d.thumbs_id, img };
  delete s.thumbs.src;
  s.host.dataset.thumbs = String(s.thumbs.count);
}

function thumbsReady(s) {
  return !!(s.thumbs && s.thumbs.id === s.data.thumbs_id);
}

// Copy thumbnail i of the sheet onto ctx at (x, y), w x h pixels; false when i has none.
function paintThumb(s, ctx, i, x, y, w, h) {
  const t = s.thumbs;
  if (!(i >= 0 && i < t.count)) return false;
  ctx.drawImage(t.img, (i % t.ncol) * t.tw, Math.floor(i / t.ncol) * t.th, t.tw, t.th, x, y, w, h);
  return true;
}

// --- hover ------------------------------------------------------------------------------------

function showHover(s, ev) {
  const p = ev && ev.points && ev.points.find((q) => q.customdata !== undefined);
  if (!p || !thumbsReady(s)) return;
  const i = Number(p.customdata), t = s.thumbs;
  const c = s.hcanvas;
  c.width = t.tw;
  c.height = t.th;
  const ctx = c.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  const has = paintThumb(s, ctx, i, 0, 0, t.tw, t.th);
  const k = Math.max(1, Math.floor(HOVER_SIDE / Math.max(t.th, t.tw)));
  c.style.width = `${t.tw * k}px`;
  c.style.height = `${t.th * k}px`;
  c.style.display = has ? "block" : "none";
  s.hcaption.textContent = has ? `point ${i}` : `point ${i}: no thumbnail (only the first ${t.count.toLocaleString()} rows have one)`;
  // Beside the pointer, kept inside the element.
  const r = s.host.getBoundingClientRect(), e = ev.event;
  let x = e ? e.clientX - r.left + 16 : 8, y = e ? e.clientY - r.top + 16 : 8;
  x = Math.min(x, r.width - t.tw * k - 12);
  s.hover.style.left = `${Math.max(0, x)}px`;
  s.hover.style.top = `${Math.max(0, y)}px`;
  s.hover.style.display = "block";
  s.hover.dataset.index = String(i);
  s.shows = (s.shows || 0) + 1;
  s.hover.dataset.shows = String(s.shows); // hovers shown so far (benchmarks/map_hover.py times them)
  s.host.dataset.hovered = String(i);
}

function hideHover(s) {
  s.hover.style.display = "none";
}

// --- selection --------------------------------------------------------------------------------

function rowsToBase64(rows) {
  const bytes = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength);
  let bin = "";
  for (let k = 0; k < bytes.length; k += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(k, k + 0x8000));
  return btoa(bin);
}

function reportSelection(s) {
  const rows = s.sel.rows || new Int32Array(0);
  s.sel.seq += 1;
  s.host.dataset.selected = String(rows.length);
  s.setStateValue("selection", { rows: rowsToBase64(rows), n: rows.length, map: s.sel.id, seq: s.sel.seq });
}

function onSelected(s, ev) {
  if (!ev && !s.sel.rows) return; // a click in select mode, or a deselect, with nothing selected
  const pts = ev && ev.points ? ev.points.filter((q) => q.customdata !== undefined) : [];
  if (!ev || !pts.length) { // cleared, or a box around no point: no selection, as Python reads it
    s.sel.rows = null;
  } else {
    const rows = new Int32Array(pts.length); // little-endian on every browser platform we know of
    pts.forEach((q, k) => { rows[k] = Number(q.customdata); });
    rows.sort();
    s.sel.rows = rows;
  }
  s.sel.id = s.data.selection_id;
  reportSelection(s);
  if (!s.sel.rows) unmarkSelection(s);
  scheduleThumbs(s);
}

// A cleared selection is cleared on the map at once: plotly drops its own outline (a double-click,
// or a click in select mode) but the base traces keep the `selectedpoints` of the last draw, so
// the map stayed grey while the rows Python holds were already none. (A new selection needs
// nothing: plotly greys the rest itself, and the next draw marks the same rows.)
function unmarkSelection(s) {
  if (!window.Plotly || !s.plot || !s.base) return;
  const idx = s.base.data.map((_, k) => k);
  // plotly keeps the drawn box/lasso in layout.selections and re-marks the points inside it on a
  // redraw: both go
  s.chain = s.chain.then(() => window.Plotly.update(s.plot, { selectedpoints: idx.map(() => null) },
                                                    { selections: [] }, idx))
    .catch(() => {});
}

// A mask over rows (1 = selected), or null with no selection.
function selectionMask(s) {
  if (!s.sel.rows) return null;
  if (s.sel.mask && s.sel.maskOf === s.sel.rows) return s.sel.mask;
  let top = 0;
  for (const r of s.sel.rows) top = Math.max(top, r);
  const m = new Uint8Array(top + 1);
  for (const r of s.sel.rows) m[r] = 1;
  s.sel.mask = m;
  s.sel.maskOf = s.sel.rows;
  return m;
}

// Decode a plotly typed-array spec ({dtype: "i4", bdata}) or a plain array.
function typed(a) {
  if (!a || !a.bdata) return a || [];
  const bin = atob(a.bdata), bytes = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
  return a.dtype === "f4" ? new Float32Array(bytes.buffer) : new Int32Array(bytes.buffer);
}

// The base traces as this draw shows them: the selection's points marked (plotly greys the rest),
// none marked when there is none. New trace objects each draw (sharing the big arrays): Plotly.react
// compares the traces it is given with the ones it drew, and a trace changed in place looked
// unchanged, so a cleared selection stayed grey on the map while Python's panel had emptied.
function selectedBase(s) {
  const m = selectionMask(s);
  return s.base.data.map((t) => {
    const u = { ...t };
    delete u.selectedpoints;
    if (!m || t.type === "scatter3d") return u;
    if (!s.rowsOf.has(t)) s.rowsOf.set(t, typed(t.customdata));
    const picked = [];
    s.rowsOf.get(t).forEach((r, k) => { if (r < m.length && m[r]) picked.push(k); });
    u.selectedpoints = picked;
    return u;
  });
}

// --- the thumbnails view ----------------------------------------------------------------------

function scheduleThumbs(s) {
  if (s.thumbFrame) return;
  s.thumbFrame = requestAnimationFrame(() => { s.thumbFrame = null; drawThumbs(s); });
}

// Draw each point's image in place of its dot when at most `thumbs_in_view` points are in view.
function drawThumbs(s) {
  const c = s.tcanvas, gd = s.plot, fl = gd._fullLayout, d = s.data;
  const off = (msg) => { c.style.display = "none"; s.note.textContent = msg; s.host.dataset.thumbsDrawn = "0"; };
  if (!d || !d.thumbnails_view || !fl || !s.base) return off("");
  if (!fl.xaxis || fl.scene) return off("Thumbnails are drawn on the 2-D map only.");
  if (!thumbsReady(s)) return off("Loading the thumbnails...");
  const xa = fl.xaxis, ya = fl.yaxis, limit = d.thumbs_in_view;
  const [x0, x1] = [Math.min(...xa.range), Math.max(...xa.range)];
  const [y0, y1] = [Math.min(...ya.range), Math.max(...ya.range)];
  const shown = [];
  for (let k = 0; k < s.base.data.length; k++) {
    const t = gd._fullData[k];
    if (!t || t.visible !== true || !t.customdata) continue;
    const color = typeof t.marker.color === "string" ? t.marker.color : null;
    for (let j = 0; j < t.customdata.length; j++) {
      const x = t.x[j], y = t.y[j];
      if (x < x0 || x > x1 || y < y0 || y > y1) continue;
      shown.push([t.customdata[j], x, y, color]);
      if (shown.length > limit) {
        return off(`Thumbnails: more than ${limit.toLocaleString()} points in view; zoom in (scroll) to see their images.`);
      }
    }
  }
  const w = fl._size.w, h = fl._size.h, dpr = window.devicePixelRatio || 1;
  c.style.left = `${gd.offsetLeft + fl._size.l}px`;
  c.style.top = `${gd.offsetTop + fl._size.t}px`;
  c.style.width = `${w}px`;
  c.style.height = `${h}px`;
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, w, h);
  const t = s.thumbs, k = Math.max(1, Math.ceil(MAP_THUMB_SIDE / Math.max(t.th, t.tw)));
  const tw = t.tw * k, th = t.th * k, mask = selectionMask(s);
  let drawn = 0;
  for (const [i, x, y, color] of shown) {
    const px = Math.round(xa.l2p(x) - tw / 2), py = Math.round(ya.l2p(y) - th / 2);
    ctx.globalAlpha = mask && !(i < mask.length && mask[i]) ? 0.25 : 1;
    if (!paintThumb(s, ctx, i, px, py, tw, th)) continue;
    drawn += 1;
    if (color) {
      ctx.strokeStyle = color;
      ctx.strokeRect(px - 0.5, py - 0.5, tw + 1, th + 1);
    }
  }
  ctx.globalAlpha = 1;
  c.style.display = "block";
  s.note.textContent = `Thumbnails: ${drawn.toLocaleString()} images in view.`;
  s.host.dataset.thumbsDrawn = String(drawn);
}

// --- drawing ----------------------------------------------------------------------------------

async function drawMap(s, d) {
  if (d.plotly_js && !window.Plotly) await loadPlotly(d.plotly_js);
  if (!window.Plotly) return; // Python sends plotly.js again while we do not report it
  s.plotlyId = d.plotly_id;
  if (d.figure) {
    s.base = JSON.parse(d.figure);
    s.baseId = d.figure_id;
  }
  await takeThumbs(s, d);
  if (d.density) s.density = { id: d.density_id, trace: JSON.parse(d.density).data[0] };
  if (!s.base || s.baseId !== d.figure_id) return; // wait for the figure we are told to show
  if (s.sel.id !== d.selection_id) { // another map: its points are not these; forget the selection
    const had = s.sel.rows && s.sel.rows.length;
    s.sel = { id: d.selection_id, rows: null, seq: s.sel.seq };
    if (had) reportSelection(s);
  }
  const base = selectedBase(s);
  const overlay = JSON.parse(d.overlay).data;
  const layers = d.density_id && s.density && s.density.id === d.density_id ? [s.density.trace] : [];
  const layout = { ...s.base.layout, height: d.height || s.base.layout.height };
  // The box/lasso outline of the current selection survives the redraw (a double-click clears it).
  const outline = s.sel.rows && s.plot.layout && s.plot.layout.selections;
  if (outline) layout.selections = outline;
  await window.Plotly.react(s.plot, base.concat(layers, overlay), layout,
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
    s.plot.on("plotly_hover", (ev) => showHover(s, ev));
    s.plot.on("plotly_unhover", () => hideHover(s));
    s.host.addEventListener("mouseleave", () => hideHover(s));
    s.plot.on("plotly_selected", (ev) => onSelected(s, ev));
    s.plot.on("plotly_deselect", () => onSelected(s, null));
    s.plot.on("plotly_relayouting", () => { s.tcanvas.style.display = "none"; });
    s.plot.on("plotly_relayout", () => scheduleThumbs(s));
    s.plot.on("plotly_afterplot", () => scheduleThumbs(s));
  }
  s.drawn += 1;
  s.status.textContent = "";
  s.host.dataset.figureId = s.baseId;
  s.host.dataset.draws = String(s.drawn);
  s.host.dataset.points = String(countTyped(s.plot));
  scheduleThumbs(s);
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
    if (s.thumbs) have.thumbs = s.thumbs.id;
    if (s.density) have.density = s.density.id;
    reportHeld(s, have);
  });
}

function teardownMap(s) {
  if (window.Plotly && s.plot) window.Plotly.purge(s.plot);
}

export default function (component) {
  return mount(component, "__vaeLatentMap", setupMap, updateMap, teardownMap);
}
