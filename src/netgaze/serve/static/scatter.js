/* netgaze serve: the Embedding page's scatter plot. Up to a few million points, drawn with WebGL
   (twgl.js, vendored in /static/vendor/) straight from the packed columns of
   POST /api/embedding.bin (no parsing, no copy); hover and click are answered from a grid index
   of the points built once (no GPU read-back, no redraw: the hovered point's ring is a small
   element moved above the plot). Drag to pan, the wheel zooms, a double click resets. Without WebGL the same
   points are drawn on a 2-D canvas (slower, same picking). */
"use strict";

const PACKED_TYPES = { "<f4": Float32Array, "<u4": Uint32Array, "<u2": Uint16Array };
const SCATTER_MARGIN = 12;     // CSS pixels around the points
const HOVER_REACH = 8;         // CSS pixels: the farthest a hovered point may be from the pointer

// The packed embedding: its header and typed-array views of its columns (embedding_points.py).
function unpackEmbedding(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 8 || String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]) !== "NGE1") {
    throw new Error("the server's answer is not a packed embedding");
  }
  const length = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const columns = {};
  for (const [name, column] of Object.entries(header.columns)) {
    const Type = PACKED_TYPES[column.dtype];
    if (!Type) throw new Error("unknown column type " + column.dtype);
    columns[name] = new Type(buffer, 8 + length + column.offset, header.n);
  }
  return { header: header, columns: columns, n: header.n };
}

// POST a JSON body, get the answer's bytes (a 4xx's one-line JSON error becomes an Error).
async function apiPacked(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "content-type": "application/json" },
                                       body: JSON.stringify(body) });
  if (!response.ok) {
    const data = await response.json().catch(() => ({ error: response.statusText }));
    throw new Error(data.error || response.statusText);
  }
  return response.arrayBuffer();
}

// Points sorted by the cell of a side x side grid over [0, 1]^2 (a counting sort: two passes):
// the points of cell c are order[start[c]] .. order[start[c + 1] - 1], in drawing order.
function gridIndex(xs, ys, n) {
  const side = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(n / 8))));
  const cells = side * side;
  const cellOf = new Uint32Array(n);
  const start = new Uint32Array(cells + 1);
  for (let i = 0; i < n; i++) {
    const cx = Math.min(side - 1, Math.max(0, (xs[i] * side) | 0));
    const cy = Math.min(side - 1, Math.max(0, (ys[i] * side) | 0));
    const c = cy * side + cx;
    cellOf[i] = c;
    start[c + 1]++;
  }
  for (let c = 0; c < cells; c++) start[c + 1] += start[c];
  const next = start.slice(0, cells);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[next[cellOf[i]]++] = i;
  return { side: side, start: start, order: order };
}

function hexColour(hex) {
  return [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16) / 255);
}

const POINT_VS = `
attribute float a_x;
attribute float a_y;
attribute float a_colour;
uniform vec2 u_scale;
uniform vec2 u_offset;
uniform float u_size;
uniform vec3 u_palette[16];
varying vec3 v_colour;
void main() {
  gl_Position = vec4(a_x * u_scale.x + u_offset.x, a_y * u_scale.y + u_offset.y, 0.0, 1.0);
  gl_PointSize = u_size;
  v_colour = u_palette[int(a_colour + 0.5)];
}`;
const POINT_FS = `
precision mediump float;
varying vec3 v_colour;
uniform float u_alpha;
uniform float u_ring;
void main() {
  vec2 p = gl_PointCoord * 2.0 - 1.0;
  float r = dot(p, p);
  if (r > 1.0) discard;
  gl_FragColor = vec4(mix(v_colour, vec3(1.0), step(u_ring, r) * 0.85), u_alpha);
}`;

class Scatter {
  /* box: an element to draw in (empty, in the page); data: unpackEmbedding(...); colours: a
     Uint8Array of palette entries, one per point; palette: CSS hex colours (at most 16);
     on.hover(i, event) (i = -1: none), on.click(i). */
  constructor(box, data, colours, palette, on) {
    this.box = box; this.data = data; this.n = data.n; this.on = on;
    this.xs = data.columns.x; this.ys = data.columns.y;
    this.view = { zoom: 1, tx: 0, ty: 0 };
    this.hovered = -1; this.frame = 0; this.drag = null;
    this.timings = {};
    this.canvas = el("canvas", { class: "scatter-points", "aria-label": "scatter plot of " + this.n + " points" });
    this.ring = el("div", { class: "scatter-ring", hidden: true });
    box.replaceChildren(this.canvas, this.ring);
    this.resize();
    let t = performance.now();
    this.gl = this.setupGL(colours, palette);
    if (!this.gl) this.setup2D(colours, palette);
    this.timings.upload_ms = performance.now() - t;
    t = performance.now();
    this.render(true);
    this.timings.draw_ms = performance.now() - t;
    t = performance.now();
    this.index = gridIndex(this.xs, this.ys, this.n);
    this.timings.index_ms = performance.now() - t;
    this.listen();
  }

  // ------------------------------------------------------------ size and view
  resize() {
    const width = Math.max(280, Math.min((this.box.parentNode.clientWidth || 562) - 2, 1100));   // 2: the border
    const height = Math.max(280, Math.min(width, window.innerHeight - 150));
    const ratio = window.devicePixelRatio || 1;
    this.canvas.style.width = width + "px"; this.canvas.style.height = height + "px";
    this.canvas.width = Math.round(width * ratio); this.canvas.height = Math.round(height * ratio);
    this.width = width; this.height = height; this.ratio = ratio;
  }
  // CSS pixels of a point: px = ox + x * s, py = oy - y * s (one scale for both axes: no squashing).
  transform() {
    const s = (Math.min(this.width, this.height) - 2 * SCATTER_MARGIN) * this.view.zoom;
    return { s: s, ox: this.width / 2 + this.view.tx - 0.5 * s, oy: this.height / 2 + this.view.ty + 0.5 * s };
  }
  pointSize() {      // CSS pixels: big for a few points, small for a million; larger when zoomed in
    const base = this.n <= 2000 ? 9 : Math.max(2, Math.min(9, 9 * Math.pow(2000 / this.n, 0.35)));
    return Math.min(14, base * Math.min(4, Math.sqrt(this.view.zoom)));
  }
  toClient(i) {
    const t = this.transform(), rect = this.canvas.getBoundingClientRect();
    return [rect.left + t.ox + this.xs[i] * t.s, rect.top + t.oy - this.ys[i] * t.s];
  }

  // ------------------------------------------------------------ drawing
  setupGL(colours, palette) {
    if (typeof twgl === "undefined") return null;
    const gl = this.canvas.getContext("webgl2", { antialias: false, alpha: false }) ||
               this.canvas.getContext("webgl", { antialias: false, alpha: false });
    if (!gl) return null;
    this.program = twgl.createProgramInfo(gl, [POINT_VS, POINT_FS]);
    if (!this.program) return null;
    this.buffers = twgl.createBufferInfoFromArrays(gl, {
      a_x: { numComponents: 1, data: this.xs },
      a_y: { numComponents: 1, data: this.ys },
      a_colour: { numComponents: 1, data: colours, normalize: false },
    });
    const flat = new Float32Array(16 * 3);
    palette.slice(0, 16).forEach((hex, k) => flat.set(hexColour(hex), 3 * k));
    this.palette = flat;
    this.canvas.addEventListener("webglcontextlost", (e) => {
      e.preventDefault();
      if (!this.destroyed) status("the browser dropped the plot's WebGL context: reload the page", true);
    });
    return gl;
  }
  setup2D(colours, palette) {
    this.ctx = this.canvas.getContext("2d");
    this.colours = colours; this.hexes = palette;
  }
  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(false); });
  }
  render(wait) {
    const t = this.transform(), size = this.pointSize();
    if (this.gl) {
      const gl = this.gl;
      gl.viewport(0, 0, this.canvas.width, this.canvas.height);
      gl.clearColor(1, 1, 1, 1);
      gl.clear(gl.COLOR_BUFFER_BIT);
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
      gl.useProgram(this.program.program);
      twgl.setBuffersAndAttributes(gl, this.program, this.buffers);
      twgl.setUniforms(this.program, {
        u_scale: [2 * t.s / this.width, 2 * t.s / this.height],
        u_offset: [2 * t.ox / this.width - 1, 1 - 2 * t.oy / this.height],
        u_size: size * this.ratio, u_palette: this.palette,
        u_alpha: this.n > 20000 ? 0.6 : 1.0, u_ring: this.n > 20000 || size < 5 ? 2.0 : 0.55,
      });
      twgl.drawBufferInfo(gl, this.buffers, gl.POINTS, this.n);
      if (wait) gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));   // the frame is drawn
    } else {
      const ctx = this.ctx, r = size / 2;
      ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, this.width, this.height);
      ctx.globalAlpha = this.n > 20000 ? 0.6 : 1;
      for (let i = 0; i < this.n; i++) {
        ctx.fillStyle = this.hexes[this.colours[i]];
        const px = t.ox + this.xs[i] * t.s, py = t.oy - this.ys[i] * t.s;
        if (size >= 4) { ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.fill(); }
        else ctx.fillRect(px - r, py - r, size, size);
      }
      ctx.globalAlpha = 1;
    }
    this.drawRing();
  }
  drawRing() {
    const ring = this.ring, i = this.hovered;
    if (i < 0) { ring.hidden = true; return; }
    const t = this.transform(), r = this.pointSize() / 2 + 3;
    ring.style.left = t.ox + this.xs[i] * t.s - r + "px"; ring.style.top = t.oy - this.ys[i] * t.s - r + "px";
    ring.style.width = ring.style.height = 2 * r + "px";
    ring.hidden = false;
  }

  // ------------------------------------------------------------ picking
  /* The point under the pointer: of the points whose disc holds it, the one drawn last (on top);
     else the nearest within HOVER_REACH pixels; else -1. */
  pick(clientX, clientY) {
    const rect = this.canvas.getBoundingClientRect(), t = this.transform();
    const px = clientX - rect.left, py = clientY - rect.top;
    const x = (px - t.ox) / t.s, y = (t.oy - py) / t.s, reach = HOVER_REACH / t.s;
    const { side, start, order } = this.index;
    const x0 = Math.max(0, Math.floor((x - reach) * side)), x1 = Math.min(side - 1, Math.floor((x + reach) * side));
    const y0 = Math.max(0, Math.floor((y - reach) * side)), y1 = Math.min(side - 1, Math.floor((y + reach) * side));
    const inside = Math.pow(this.pointSize() / 2 + 1, 2), near = HOVER_REACH * HOVER_REACH;
    let top = -1, nearest = -1, best = Infinity;
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) {
        const c = cy * side + cx;
        for (let k = start[c]; k < start[c + 1]; k++) {
          const i = order[k];
          const dx = (this.xs[i] - x) * t.s, dy = (this.ys[i] - y) * t.s, d = dx * dx + dy * dy;
          if (d <= inside) { if (i > top) top = i; }
          else if (d <= near && d < best) { best = d; nearest = i; }
        }
      }
    }
    return top >= 0 ? top : nearest;
  }

  // ------------------------------------------------------------ gestures
  listen() {
    const c = this.canvas;
    c.addEventListener("mousedown", (e) => { if (e.button === 0) this.drag = { x: e.clientX, y: e.clientY, moved: false }; });
    c.addEventListener("mousemove", (e) => {
      if (this.drag && (e.buttons & 1)) {
        const dx = e.clientX - this.drag.x, dy = e.clientY - this.drag.y;
        if (this.drag.moved || Math.abs(dx) + Math.abs(dy) > 3) {
          this.drag.moved = true; this.view.tx += dx; this.view.ty += dy;
          this.drag.x = e.clientX; this.drag.y = e.clientY;
          this.hover(-1, e); this.schedule();
        }
        return;
      }
      this.hover(this.pick(e.clientX, e.clientY), e);
    });
    c.addEventListener("mouseleave", (e) => this.hover(-1, e));
    c.addEventListener("click", (e) => {
      const moved = this.drag && this.drag.moved;
      this.drag = null;
      if (moved) return;
      const i = this.pick(e.clientX, e.clientY);
      if (i >= 0) this.on.click(i);
    });
    c.addEventListener("dblclick", (e) => { this.view = { zoom: 1, tx: 0, ty: 0 }; this.schedule(); e.preventDefault(); });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = c.getBoundingClientRect(), t = this.transform();
      const px = e.clientX - rect.left, py = e.clientY - rect.top;
      const x = (px - t.ox) / t.s, y = (t.oy - py) / t.s;      // stays under the pointer
      const zoom = Math.min(4096, Math.max(1, this.view.zoom * Math.exp(-e.deltaY * 0.0015)));
      const s = (Math.min(this.width, this.height) - 2 * SCATTER_MARGIN) * zoom;
      this.view = { zoom: zoom, tx: px - this.width / 2 - (x - 0.5) * s, ty: py - this.height / 2 + (y - 0.5) * s };
      this.hover(-1, e); this.schedule();
    }, { passive: false });
    this.onResize = () => { this.resize(); this.schedule(); };
    window.addEventListener("resize", this.onResize);
  }
  hover(i, event) {
    if (i !== this.hovered) { this.hovered = i; this.drawRing(); }
    this.on.hover(i, event);
  }
  destroy() {
    this.destroyed = true;
    window.removeEventListener("resize", this.onResize);
    if (this.frame) cancelAnimationFrame(this.frame);
    const lose = this.gl && this.gl.getExtension("WEBGL_lose_context");
    if (lose) lose.loseContext();      // browsers keep only a few WebGL contexts alive
  }
}
