"""The page of ``view.interactive_html``: inline CSS and script, no network access.

``__TITLE__`` receives HTML-escaped text and ``__DATA__`` JSON whose ``<``, ``>`` and
``&`` are escaped, so neither can end the ``<script>`` element early.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { margin: 0; font: 13px system-ui, sans-serif; color: #222; background: #fff; }
  header { padding: 6px 10px; border-bottom: 1px solid #ddd; display: flex; gap: 16px; align-items: center; }
  header h1 { font-size: 15px; margin: 0; font-weight: 600; }
  #main { display: flex; height: calc(100vh - 40px); }
  #plot { flex: 1; position: relative; }
  canvas { width: 100%; height: 100%; display: block; cursor: grab; }
  #legend { width: 210px; overflow-y: auto; border-left: 1px solid #ddd; padding: 6px; }
  #legend div { display: flex; align-items: center; gap: 6px; padding: 1px 0; cursor: pointer; }
  #legend div.off { opacity: 0.3; }
  #legend span.swatch { width: 11px; height: 11px; border-radius: 50%; flex: none; }
  #tip { position: absolute; pointer-events: none; background: rgba(255,255,255,0.95); border: 1px solid #999;
         padding: 4px; display: none; max-width: 260px; word-break: break-all; box-shadow: 0 1px 4px rgba(0,0,0,.2); }
  #tip .thumb { width: 96px; height: 96px; image-rendering: pixelated; background-repeat: no-repeat; }
  .hint { color: #777; }
</style>
</head>
<body>
<header>
  <h1>__TITLE__</h1>
  <label>colour by <select id="colourBy"></select></label>
  <button id="reset" type="button">reset view</button>
  <span class="hint" id="hint"></span>
</header>
<div id="main">
  <div id="plot"><canvas id="canvas"></canvas><div id="tip"></div></div>
  <div id="legend"></div>
</div>
<script type="application/json" id="data">__DATA__</script>
<script>
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("data").textContent);
  const dims = data.dims, n = data.points.length / dims, P = data.points;
  const canvas = document.getElementById("canvas"), ctx = canvas.getContext("2d");
  const tip = document.getElementById("tip"), legend = document.getElementById("legend");
  const select = document.getElementById("colourBy");
  const palette = ["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f",
                   "#bcbd22","#17becf","#aec7e8","#ffbb78","#98df8a","#ff9896","#c5b0d5","#c49c94",
                   "#f7b6d2","#c7c7c7","#dbdb8d","#9edae5"];
  const colourOf = k => k < 0 ? "#999" : (k < palette.length ? palette[k] :
                        "hsl(" + ((k * 137.508) % 360).toFixed(0) + ",65%,50%)");
  const hidden = new Set();
  let by = null;
  for (const key of ["labels", "predictions"]) {
    if (data[key]) { const o = document.createElement("option"); o.value = key;
      o.textContent = key === "labels" ? "label" : "prediction"; select.appendChild(o); by = by || key; }
  }
  if (!by) { select.parentElement.style.display = "none"; }
  document.getElementById("hint").textContent = dims === 3
    ? "drag: rotate, shift-drag: pan, wheel: zoom" : "drag: pan, wheel: zoom";
  const name = k => (k >= 0 && k < data.classes.length) ? data.classes[k] : String(k);
  let view = {}, W = 0, H = 0, screen = new Float32Array(n * 2), depth = new Float32Array(n), order = [];
  function reset() { view = {zoom: 1, panX: 0, panY: 0, yaw: 0.6, pitch: 0.35}; draw(); }
  function resize() {
    const r = canvas.getBoundingClientRect(), d = window.devicePixelRatio || 1;
    W = r.width; H = r.height; canvas.width = W * d; canvas.height = H * d; ctx.setTransform(d, 0, 0, d, 0, 0);
  }
  function projectAll() {
    const s = (dims === 3 ? 0.34 : 0.45) * Math.min(W, H) * view.zoom, cy = Math.cos(view.yaw), sy = Math.sin(view.yaw);
    const cp = Math.cos(view.pitch), sp = Math.sin(view.pitch);
    for (let i = 0; i < n; i++) {
      let x = P[i * dims], y = P[i * dims + 1], z = dims === 3 ? P[i * dims + 2] : 0, f = 1;
      if (dims === 3) {
        const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
        const y1 = cp * y - sp * z1, z2 = sp * y + cp * z1;
        x = x1; y = y1; z = z2; f = 4 / (4 + z);
      }
      screen[2 * i] = W / 2 + view.panX + s * x * f;
      screen[2 * i + 1] = H / 2 + view.panY - s * y * f;
      depth[i] = z;
    }
    order = Array.from({length: n}, (_, i) => i);
    if (dims === 3) order.sort((a, b) => depth[b] - depth[a]);
  }
  function groupOf(i) { return by ? data[by][i] : 0; }
  function draw() {
    if (!W) resize();
    ctx.clearRect(0, 0, W, H);
    projectAll();
    const r = Math.max(1.5, Math.min(5, 600 / Math.sqrt(n))) * Math.sqrt(view.zoom);
    for (const i of order) {
      const g = groupOf(i);
      if (hidden.has(g)) continue;
      ctx.fillStyle = colourOf(g);
      ctx.globalAlpha = dims === 3 ? 0.55 + 0.4 * (1 - (depth[i] + 1) / 2) : 0.8;
      ctx.beginPath(); ctx.arc(screen[2 * i], screen[2 * i + 1], r, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.globalAlpha = 1;
  }
  function buildLegend() {
    legend.textContent = "";
    if (!by) return;
    const counts = new Map();
    for (const g of data[by]) counts.set(g, (counts.get(g) || 0) + 1);
    for (const g of [...counts.keys()].sort((a, b) => a - b)) {
      const row = document.createElement("div"), sw = document.createElement("span"), t = document.createElement("span");
      sw.className = "swatch"; sw.style.background = colourOf(g);
      t.textContent = name(g) + " (" + counts.get(g) + ")";
      row.append(sw, t); if (hidden.has(g)) row.className = "off";
      row.onclick = () => { hidden.has(g) ? hidden.delete(g) : hidden.add(g); buildLegend(); draw(); };
      legend.appendChild(row);
    }
  }
  function nearest(mx, my) {
    let best = -1, bestD = 100;
    for (let i = 0; i < n; i++) {
      if (hidden.has(groupOf(i))) continue;
      const dx = screen[2 * i] - mx, dy = screen[2 * i + 1] - my, d = dx * dx + dy * dy;
      if (d < bestD || (d === bestD && dims === 3 && depth[i] < depth[best])) { bestD = d; best = i; }
    }
    return best;
  }
  function showTip(i, mx, my) {
    if (i < 0) { tip.style.display = "none"; return; }
    tip.textContent = "";
    if (data.sprite) {
      const s = data.sprite, th = document.createElement("div"), k = 96 / s.side;
      th.className = "thumb";
      th.style.backgroundImage = "url(" + s.uri + ")";
      th.style.backgroundSize = (s.cols * s.side * k) + "px " + (s.cols * s.side * k) + "px";
      th.style.backgroundPosition = (-(i % s.cols) * s.side * k) + "px " + (-Math.floor(i / s.cols) * s.side * k) + "px";
      tip.appendChild(th);
    }
    const lines = ["#" + i];
    if (data.labels) lines.push("label: " + name(data.labels[i]));
    if (data.predictions) lines.push("prediction: " + name(data.predictions[i]));
    if (data.paths) lines.push(data.paths[i]);
    for (const text of lines) { const d = document.createElement("div"); d.textContent = text; tip.appendChild(d); }
    tip.style.display = "block";
    tip.style.left = Math.min(mx + 14, W - 270) + "px"; tip.style.top = Math.min(my + 14, H - 170) + "px";
  }
  let drag = null;
  canvas.addEventListener("mousedown", e => { drag = {x: e.clientX, y: e.clientY, shift: e.shiftKey}; canvas.style.cursor = "grabbing"; });
  window.addEventListener("mouseup", () => { drag = null; canvas.style.cursor = "grab"; });
  canvas.addEventListener("mousemove", e => {
    const r = canvas.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y; drag.x = e.clientX; drag.y = e.clientY;
      if (dims === 3 && !drag.shift) {
        view.yaw += dx * 0.01; view.pitch = Math.max(-1.5, Math.min(1.5, view.pitch + dy * 0.01));
      } else { view.panX += dx; view.panY += dy; }
      tip.style.display = "none"; draw(); return;
    }
    showTip(nearest(mx, my), mx, my);
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  canvas.addEventListener("wheel", e => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect(), mx = e.clientX - r.left - W / 2, my = e.clientY - r.top - H / 2;
    const f = Math.exp(-e.deltaY * 0.0015);
    view.panX = mx - (mx - view.panX) * f; view.panY = my - (my - view.panY) * f; view.zoom *= f; draw();
  }, {passive: false});
  select.onchange = () => { by = select.value; hidden.clear(); buildLegend(); draw(); };
  document.getElementById("reset").onclick = reset;
  window.addEventListener("resize", () => { resize(); draw(); });
  resize(); buildLegend(); reset();
})();
</script>
</body>
</html>
"""
