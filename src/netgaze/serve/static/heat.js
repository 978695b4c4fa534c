/* Maps drawn in the page from the values the API packs ("map_f32": base64 of little-endian
   float32), with the colour table and blending of GET /api/colormap. The arithmetic follows
   netgaze.viz step by step (float32 rounding, round half to even), so a drawn CAM overlay is
   viz.overlay of the same map and a drawn gradient is viz.attribution_image: the server only
   computes the map, and the page draws it. */
"use strict";

const heat = { table: null, pixels: new Map() };
const PIXELS_KEPT = 64;

async function colourTable() {
  if (!heat.table) heat.table = await api("/api/colormap");
  return heat.table;
}

function unpack(packed) {
  const text = atob(packed.data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return { shape: packed.shape, values: new Float32Array(bytes.buffer) };
}

// The RGBA pixels of a served picture (at the model's size, as the map is).
function picturePixels(url, h, w) {
  const key = url + "@" + h + "x" + w;
  if (!heat.pixels.has(key)) {
    if (heat.pixels.size >= PIXELS_KEPT) heat.pixels.delete(heat.pixels.keys().next().value);
    heat.pixels.set(key, new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => {
        const canvas = el("canvas", { width: w, height: h });
        const context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(image, 0, 0, w, h);
        resolve(context.getImageData(0, 0, w, h).data);
      };
      image.onerror = () => { heat.pixels.delete(key); reject(new Error("cannot load the picture " + url)); };
      image.src = url;
    }));
  }
  return heat.pixels.get(key);
}

function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// viz.overlay: min-max normalise the map, colour it, blend it over the picture (alpha: the
// map's weight, the server's 0.5 unless the page's opacity control says otherwise).
function camPixels(values, offset, h, w, picture, table, alpha) {
  const n = h * w, f = Math.fround, a = alpha, out = new ImageData(w, h);
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) { const v = values[offset + i]; if (v < lo) lo = v; if (v > hi) hi = v; }
  const span = f(hi - lo);
  for (let i = 0; i < n; i++) {
    const t = span > 1e-12 ? Math.min(1, Math.max(0, f(f(values[offset + i] - lo) / span))) : 0;
    const colour = table.colors[roundHalfEven(f(t * 255))];
    for (let c = 0; c < 3; c++) out.data[4 * i + c] = roundHalfEven((1 - a) * picture[4 * i + c] + a * colour[c]);
    out.data[4 * i + 3] = 255;
  }
  return out;
}

// viz.attribution_image: signed values [C, H, W] scaled by a percentile of |value|, 0 at grey.
function attributionPixels(values, shape, table) {
  const [channels, h, w] = shape, n = h * w, f = Math.fround, out = new ImageData(w, h);
  const magnitudes = Float32Array.from(values, Math.abs).sort();
  const at = f(f(table.signed_percentile / 100) * (magnitudes.length - 1));       // torch.quantile, "linear"
  const below = Math.floor(at), above = Math.min(Math.ceil(at), magnitudes.length - 1);
  const weight = f(at - below), step = f(magnitudes[above] - magnitudes[below]);
  const quantile = weight < 0.5 ? f(magnitudes[below] + f(weight * step)) : f(magnitudes[above] - f(step * f(1 - weight)));
  const scale = Math.max(quantile, 1e-12);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = values[(channels === 1 ? 0 : c) * n + i];
      const t = f(f(Math.min(1, Math.max(-1, f(v / scale))) * 0.5) + 0.5);
      out.data[4 * i + c] = roundHalfEven(f(Math.min(1, Math.max(0, t)) * 255));
    }
    out.data[4 * i + 3] = 255;
  }
  return out;
}

// A canvas of one map of an answer: map `k` of a CAM answer ([H, W] or [k, H, W]) over the
// picture, or a gradient method's [C, H, W] attribution. A CAM canvas keeps what it needs to
// redraw itself at another opacity (`canvas.redraw(alpha)`), without asking the server again.
async function mapCanvas(packed, pictureSrc, cam, k) {
  const table = await colourTable();
  const { shape, values } = unpack(packed);
  const [h, w] = shape.slice(-2);
  const canvas = el("canvas", { width: w, height: h, class: "map" });
  if (cam) {
    const picture = await picturePixels(pictureSrc, h, w);
    canvas.redraw = (alpha) => canvas.getContext("2d").putImageData(
      camPixels(values, (k || 0) * h * w, h, w, picture, table, alpha), 0, 0);
    canvas.redraw(overlayAlpha(table));
  } else {
    canvas.getContext("2d").putImageData(attributionPixels(values, shape.length === 2 ? [1, h, w] : shape, table), 0, 0);
  }
  return canvas;
}

function overlayAlpha(table) { return heat.alpha === undefined ? table.alpha : heat.alpha; }

// The control beside the maps: the maps' opacity over the pictures, redrawn in the page.
function opacityControl() {
  const shown = Math.round(100 * (heat.alpha === undefined ? 0.5 : heat.alpha));
  const label = el("span", { text: shown + "% map" });
  const range = el("input", { type: "range", id: "opacity", min: 0, max: 100, step: 5, value: shown });
  range.addEventListener("input", () => {
    heat.alpha = Number(range.value) / 100;
    label.textContent = range.value + "% map";
    document.querySelectorAll("canvas.map").forEach((c) => { if (c.redraw) c.redraw(heat.alpha); });
  });
  return field("Overlay opacity", el("div", {}, range, label));
}

// How many maps a CAM answer holds: 1 for [H, W], k for top-k's [k, H, W].
function mapCount(packed, cam) { return cam && packed.shape.length === 3 ? packed.shape[0] : 1; }

function mapFigure(canvas, caption) {
  canvas.setAttribute("aria-label", caption);
  return el("figure", {}, canvas, el("figcaption", { text: caption }));
}
