/* netgaze serve: the explorer's front end, shared part: DOM helpers, the API client, the
   controls every page uses (run, layer, picture picker). Plain JavaScript, no build step, no CDN.
   Every user-provided string (run, class, layer names) is put in the page as text
   (textContent / text nodes), never as HTML. Scripts load in order: common, heat, maps, data, app. */
"use strict";

// The methods the server's library has (GET /api/runs fills these at start; these are the fallback).
let CAM_METHODS = ["gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "scorecam"];
let GRADIENT_METHODS = ["guided_backprop", "guided_gradcam", "saliency", "smoothgrad", "integrated_gradients"];
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
const DISPLAY = 224;

const state = { runs: [], page: "explain", params: {}, seq: 0 };

// ---------------------------------------------------------------- helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}
function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) node.appendChild(child);
  return node;
}
function status(text, error) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = error ? "error" : "";
}
async function api(path, body) {
  const options = body === undefined ? {} :
    { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}
function png(b64) { return "data:image/png;base64," + b64; }
function pictureUrl(run, image) {
  if (image.upload) return "/api/uploads/" + encodeURIComponent(image.upload) + ".png";
  return "/api/runs/" + encodeURIComponent(run) + "/pictures/" + encodeURIComponent(image.split || "test") + "/" +
    Number(image.index) + ".png";
}
function field(label, control) { return el("label", { class: "field" }, label, control); }
function select(options, value, onchange) {
  const node = el("select", { onchange: (e) => onchange(e.target.value) });
  for (const [val, text] of options) {
    const option = el("option", { value: val, text: text });
    if (String(val) === String(value)) option.selected = true;
    node.appendChild(option);
  }
  return node;
}
function runById(id) { return state.runs.find((r) => r.id === id); }
function figure(src, caption, extra) {
  return el("figure", {}, el("img", { src: src, alt: caption }), el("figcaption", { text: caption }), extra || null);
}
function pct(x) { return (100 * x).toFixed(1) + "%"; }
function setHash(page, params) {
  const query = new URLSearchParams(params).toString();
  const hash = "#/" + page + (query ? "?" + query : "");
  if (location.hash !== hash) location.hash = hash; else route();
}

// A request whose answer is dropped when a newer one of the same kind was sent meanwhile.
async function latest(kind, work) {
  const ticket = (state[kind] = (state[kind] || 0) + 1);
  status("computing...");
  try {
    const result = await work();
    if (ticket !== state[kind]) return null;
    status("ready" + (result && result.ms !== undefined ? " (server " + result.ms.toFixed(0) + " ms)" : ""));
    return result;
  } catch (err) {
    if (ticket === state[kind]) {
      status(err.message, true);
      for (const panel of document.querySelectorAll("[data-busy]")) {   // no panel stays "computing..."
        panel.textContent = "Could not compute this: " + err.message;
        panel.classList.add("failed");
        panel.removeAttribute("data-busy");
      }
    }
    return null;
  }
}

// ---------------------------------------------------------------- shared controls
function runSelect(tasks, current, onchange) {
  const runs = state.runs.filter((r) => tasks.includes(r.task));
  return field("Run or model", select(runs.map((r) => [r.id, r.id + " (" + r.task + ")"]), current, onchange));
}
function runsFor(tasks, minEpochs) {
  return state.runs.filter((r) => tasks.includes(r.task) && r.epochs.length >= (minEpochs || 0));
}
function layerSelect(run, current, onchange, extra) {
  const options = (extra || []).concat(run.layers.map((n) => [n, n + (run.stages.includes(n) ? " (stage)" : "")]));
  return field("Layer", select(options, current, onchange));
}

// Picture picker: test pictures by class, wrongly classified first, by strategy (the run's
// SpRAy clusters, when it has them: a page of clusters at a time), or an upload.
const STRATEGY_SHOWN = 60;     // pictures per cluster: its typical ones first
const STRATEGY_PAGE = 6;       // clusters per page
function picturePicker(run, params, onpick) {
  const box = el("div", {});
  const strip = el("div", { class: "strip", id: "pictures" });
  const classOptions = [["", "all classes"]].concat(run.classes.map((c, i) => [i, c]));
  let order = params.order || (run.task === "classify" ? "misclassified" : "index");
  if (order === "strategy" && !run.has_strategies) order = "misclassified";
  const loadStrategies = async (from) => {
    const offset = Math.max(0, Math.floor(Number(from)) || 0);
    const query = new URLSearchParams({ run: run.id, offset: offset, limit: STRATEGY_PAGE, pictures: STRATEGY_SHOWN });
    if (params.label !== undefined && params.label !== "") query.set("class", params.label);
    let data;
    try { data = await api("/api/strategies?" + query); }
    catch (err) { status(err.message, true); return; }
    if (offset > 0 && offset >= data.total_clusters) {        // past the last page (the class changed): go back
      return loadStrategies(Math.max(0, Math.floor((data.total_clusters - 1) / STRATEGY_PAGE) * STRATEGY_PAGE));
    }
    const groups = el("div", { id: "strategies" });
    for (const entry of data.classes) {
      for (const cluster of entry.clusters) {
        const title = "class " + entry.name + ", strategy " + cluster.cluster + " (" + cluster.size + " " +
          data.split + " pictures)" + (cluster.shortcut ? ": likely shortcut" : "");
        const row = el("div", { class: "strip" });
        const typical = new Set(cluster.typical || []);
        const shown = Array.from(new Set([...(cluster.typical || []), ...cluster.indices])).slice(0, STRATEGY_SHOWN);
        for (const index of shown) {
          const image = { split: data.split, index: index };
          const chosen = String(index) === String(params.index) && (params.split || "test") === data.split;
          row.appendChild(el("img", { src: pictureUrl(run.id, image), alt: entry.name + " #" + index,
                                      title: data.split + " #" + index + (typical.has(index) ? " (typical)" : ""),
                                      "data-index": index, class: chosen ? "selected" : "",
                                      onclick: () => onpick(Object.assign({ strategy_from: offset }, image)) }));
        }
        if (cluster.size > shown.length) {
          row.appendChild(el("span", { class: "hint", text: shown.length + " of " + cluster.size + ", typical first" }));
        }
        groups.appendChild(el("div", { class: "strategy" + (cluster.shortcut ? " shortcut" : ""),
                                       "data-class": entry.class, "data-cluster": cluster.cluster },
          el("div", { class: "strategy-title", text: title, title: cluster.shortcut_reason || null }), row));
      }
    }
    const last = Math.min(offset + STRATEGY_PAGE, data.total_clusters);
    const pager = el("div", { class: "pager", id: "strategy-pager" },
      el("button", { type: "button", id: "strategy-previous", disabled: offset === 0,
                     onclick: () => loadStrategies(offset - STRATEGY_PAGE) }, "\u2039 previous"),
      el("span", { class: "hint", id: "strategy-range",
                   text: "clusters " + (data.total_clusters ? offset + 1 : 0) + "-" + last + " of " + data.total_clusters }),
      el("button", { type: "button", id: "strategy-next", disabled: last >= data.total_clusters,
                     onclick: () => loadStrategies(offset + STRATEGY_PAGE) }, "next \u203a"));
    strip.className = "strategies";
    strip.dataset.offset = String(offset);
    strip.replaceChildren(pager, groups);
  };
  const load = order === "strategy" ? () => loadStrategies(params.strategy_from) : async () => {
    const query = new URLSearchParams({ split: "test", order: order, limit: 60 });
    if (params.label !== undefined && params.label !== "") query.set("label", params.label);
    let data;
    try { data = await api("/api/runs/" + encodeURIComponent(run.id) + "/pictures?" + query); }
    catch (err) { status(err.message, true); return; }
    strip.replaceChildren();
    for (const p of data.pictures) {
      if (p.broken) {   // shown as broken, not clickable: the other pictures keep working
        strip.appendChild(el("span", { class: "broken", title: p.broken, text: "#" + p.index + " unreadable" }));
        continue;
      }
      const caption = (p.name !== null ? p.name : "#" + p.index) +
        (p.pred_name !== undefined ? " -> " + p.pred_name + " " + pct(p.p) : "");
      const img = el("img", { src: pictureUrl(run.id, { split: "test", index: p.index }), title: caption,
                              alt: caption, "data-index": p.index,
                              class: (p.correct === false ? "wrong" : "") +
                                     (String(p.index) === String(params.index) ? " selected" : ""),
                              onclick: () => onpick({ index: p.index }) });
      strip.appendChild(img);
    }
  };
  if (run.task === "classify") {
    const orders = [["misclassified", "wrongly classified first"], ["index", "in order"]];
    if (run.has_strategies) orders.push(["strategy", "by strategy"]);
    box.appendChild(field("Pictures", select(orders, order, (v) => onpick({ order: v, strategy_from: 0 }, true))));
  }
  if (run.classes.length && run.task !== "segment") {
    box.appendChild(field("Class", select(classOptions, params.label === undefined ? "" : params.label,
      (v) => onpick({ label: v, strategy_from: 0 }, true))));
  }
  box.appendChild(strip);
  const file = el("input", { type: "file", accept: "image/png,image/jpeg,image/webp", id: "upload",
    onchange: async (e) => {
      const chosen = e.target.files[0];
      if (!chosen) return;
      try {
        const response = await fetch("/api/upload", { method: "POST", body: chosen,
                                                       headers: { "content-type": "application/octet-stream" } });
        const data = await response.json();
        if (!response.ok) throw new Error(data.error);
        onpick({ upload: data.upload });
      } catch (err) { status(err.message, true); }
    } });
  box.appendChild(field("Or upload a picture (PNG, JPEG, WebP)", file));
  if (run.splits.test > 0) load(); else strip.appendChild(el("span", { class: "hint", text: "no test pictures: upload one" }));
  return box;
}
function needsUpload(run, params) { return !params.upload && !(run.splits.test > 0); }
function uploadFirst(controls) {
  return [controls, el("div", { class: "panel", id: "need-upload",
                                text: "This model has no pictures of its own: upload one on the left." })];
}
function imageOf(params) {
  return params.upload ? { upload: params.upload } : { split: params.split || "test", index: Number(params.index || 0) };
}
function pick(page, params) {
  return (change, reset) => {
    const next = Object.assign({}, params, change);
    if (change.index !== undefined) delete next.upload;
    if (change.index !== undefined && change.split === undefined) delete next.split;
    if (reset) { delete next.index; delete next.split; }
    setHash(page, next);
  };
}

function swatch(colour) { const i = el("i", {}); i.style.background = colour; return el("span", {}, i); }
function message(text) { return [[], el("div", { class: "panel", text: text })]; }
