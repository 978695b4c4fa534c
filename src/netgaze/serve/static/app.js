/* netgaze serve: the explorer's front end. Plain JavaScript, no build step, no CDN.
   Every user-provided string (run, class, layer names) is put in the page as text
   (textContent / text nodes), never as HTML. */
"use strict";

const CAM_METHODS = ["gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "scorecam"];
const GRADIENT_METHODS = ["guided_backprop", "guided_gradcam", "saliency", "smoothgrad", "integrated_gradients"];
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
    if (ticket === state[kind]) status(err.message, true);
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
// SpRAy clusters, when it has them), or an upload.
const STRATEGY_SHOWN = 60;
function picturePicker(run, params, onpick) {
  const box = el("div", {});
  const strip = el("div", { class: "strip", id: "pictures" });
  const classOptions = [["", "all classes"]].concat(run.classes.map((c, i) => [i, c]));
  let order = params.order || (run.task === "classify" ? "misclassified" : "index");
  if (order === "strategy" && !run.has_strategies) order = "misclassified";
  const loadStrategies = async () => {
    let data;
    try { data = await api("/api/strategies?" + new URLSearchParams({ run: run.id })); }
    catch (err) { status(err.message, true); return; }
    const groups = el("div", { id: "strategies" });
    for (const entry of data.classes) {
      if (params.label !== undefined && params.label !== "" && String(entry.class) !== String(params.label)) continue;
      for (const cluster of entry.clusters) {
        const title = "class " + entry.name + ", strategy " + cluster.cluster + " (" + cluster.size + " " +
          data.split + " pictures)" + (cluster.shortcut ? ": likely shortcut" : "");
        const row = el("div", { class: "strip" });
        for (const index of cluster.indices.slice(0, STRATEGY_SHOWN)) {
          const image = { split: data.split, index: index };
          const chosen = String(index) === String(params.index) && (params.split || "test") === data.split;
          row.appendChild(el("img", { src: pictureUrl(run.id, image), alt: entry.name + " #" + index,
                                      title: data.split + " #" + index, "data-index": index,
                                      class: chosen ? "selected" : "", onclick: () => onpick(image) }));
        }
        if (cluster.indices.length > STRATEGY_SHOWN) {
          row.appendChild(el("span", { class: "hint", text: "first " + STRATEGY_SHOWN + " of " + cluster.indices.length }));
        }
        groups.appendChild(el("div", { class: "strategy" + (cluster.shortcut ? " shortcut" : ""),
                                       "data-class": entry.class, "data-cluster": cluster.cluster },
          el("div", { class: "strategy-title", text: title, title: cluster.shortcut_reason || null }), row));
      }
    }
    strip.className = "strategies";
    strip.replaceChildren(groups);
  };
  const load = order === "strategy" ? loadStrategies : async () => {
    const query = new URLSearchParams({ split: "test", order: order, limit: 60 });
    if (params.label !== undefined && params.label !== "") query.set("label", params.label);
    let data;
    try { data = await api("/api/runs/" + encodeURIComponent(run.id) + "/pictures?" + query); }
    catch (err) { status(err.message, true); return; }
    strip.replaceChildren();
    for (const p of data.pictures) {
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
    box.appendChild(field("Pictures", select(orders, order, (v) => onpick({ order: v }, true))));
  }
  if (run.classes.length && run.task !== "segment") {
    box.appendChild(field("Class", select(classOptions, params.label === undefined ? "" : params.label,
      (v) => onpick({ label: v }, true))));
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

// ---------------------------------------------------------------- Explain
function explainPage(params) {
  const runs = runsFor(["classify"]);
  if (!runs.length) return message("No classifier is served; the Area page explains reconstructions and segmentations.");
  const run = runById(params.run) && runById(params.run).task === "classify" ? runById(params.run) : runs[0];
  params.run = run.id;
  const method = params.method || "gradcam";
  const layers = (params.layers ? params.layers.split(",") : [run.stages[run.stages.length - 1]])
    .filter((n) => run.layers.includes(n));
  const target = params.target || "predicted";
  const guided = params.guided !== "0";
  const go = pick("explain", params);
  const layerBoxes = el("div", { class: "layers", id: "layers" }, run.layers.map((name) =>
    el("label", { class: "check" }, el("input", { type: "checkbox", value: name, checked: layers.includes(name),
      onchange: () => {
        const chosen = [...document.querySelectorAll("#layers input:checked")].map((i) => i.value);
        go({ layers: chosen.join(",") || run.stages[run.stages.length - 1] });
      } }), " " + name + (run.stages.includes(name) ? " (stage)" : ""))));
  const targets = [["predicted", "predicted class"], ["top3", "top 3 classes"]]
    .concat(run.classes.map((c, i) => ["class:" + i, "class " + c]));
  const controls = [
    runSelect(["classify"], run.id, (v) => setHash("explain", { run: v })),
    picturePicker(run, params, go),
    field("Method", select(CAM_METHODS.concat(GRADIENT_METHODS).map((m) => [m, m]), method, (v) => go({ method: v }))),
    CAM_METHODS.includes(method) || method === "guided_gradcam" ? field("Layers (one or several)", layerBoxes) : null,
    field("Target", select(targets, target, (v) => go({ target: v }))),
    el("label", { class: "check" }, el("input", { type: "checkbox", id: "guided", checked: guided,
      onchange: (e) => go({ guided: e.target.checked ? "1" : "0" }) }), " guided backprop beside"),
  ];
  if (needsUpload(run, params)) return uploadFirst(controls);
  const view = el("div", {}, el("div", { class: "panel prediction", id: "prediction", text: "choose a picture" }),
                  el("div", { class: "tiles", id: "tiles" }));
  const image = imageOf(params);
  const wanted = target === "predicted" ? { top: 1 } : target === "top3" ? { top: 3 } :
    { class: Number(target.split(":")[1]) };
  const body = { run: run.id, image: image, method: method, include: ["overlay"], target: wanted };
  if (CAM_METHODS.includes(method) || method === "guided_gradcam") body.layer = layers;
  latest("explain", async () => {
    const requests = [api("/api/explain", body)];
    if (guided && method !== "guided_backprop") {
      requests.push(api("/api/explain", { run: run.id, image: image, method: "guided_backprop", include: ["overlay"],
                                          target: wanted.top > 1 ? { top: 1 } : wanted }));
    }
    const [result, guide] = await Promise.all(requests);
    return { result: result, guide: guide, ms: result.ms };
  }).then((answer) => {
    if (!answer) return;
    const { result, guide } = answer;
    const tiles = document.getElementById("tiles");
    if (!tiles) return;
    tiles.replaceChildren(figure(pictureUrl(run.id, image), image.upload ? "uploaded picture" :
      image.split + " picture #" + image.index + (result.label ? ", a " + result.label.name : "")));
    const overlays = body.layer ? result.overlay : { "": result.overlay };
    for (const [name, picture] of Object.entries(overlays)) {
      const list = Array.isArray(picture) ? picture : [picture];
      list.forEach((p, k) => {
        const cls = result.target.classes ? result.target.classes[k].name : result.target.name;
        tiles.appendChild(figure(png(p), method + (name ? " " + name : "") + " for " + cls));
      });
    }
    if (guide) tiles.appendChild(figure(png(guide.overlay), "guided backprop for " +
      (guide.target.classes ? guide.target.classes[0].name : guide.target.name)));
    tiles.dataset.stamp = String(++state.seq);
    const prediction = document.getElementById("prediction");
    prediction.replaceChildren(el("b", { text: "prediction: " }),
      ...result.prediction.top.map((t) => el("span", { text: t.name + " " + pct(t.p) })),
      el("span", { class: "hint", text: "epoch " + result.epoch + ", batch of " + result.batch }));
  });
  return [controls, view];
}

// ---------------------------------------------------------------- Area
function areaPage(params) {
  const runs = runsFor(["reconstruct", "segment"]);
  if (!runs.length) return message("The Area page needs a reconstruction or segmentation run.");
  const run = runById(params.run) && runById(params.run).task !== "classify" ? runById(params.run) : runs[0];
  params.run = run.id;
  const [h, w] = run.size;
  const layer = params.layer && run.layers.includes(params.layer) ? params.layer : run.stages[run.stages.length - 1];
  const box = params.box ? params.box.split(",").map(Number) :
    [Math.floor(h / 4), Math.floor(w / 4), Math.ceil(3 * h / 4), Math.ceil(3 * w / 4)];
  const channel = params.channel === undefined ? "" : params.channel;
  const go = pick("area", params);
  const channels = run.task === "segment" ? run.classes.map((c, i) => [i, c]) :
    (run.channels === 3 ? [[0, "red"], [1, "green"], [2, "blue"]] : []);
  const controls = [
    runSelect(["reconstruct", "segment"], run.id, (v) => setHash("area", { run: v })),
    picturePicker(run, params, go),
    layerSelect(run, layer, (v) => go({ layer: v })),
    field("Output channel", select([["", "all channels"]].concat(channels), channel, (v) => go({ channel: v }))),
    el("p", { class: "hint", text: "Drag a rectangle on the output to explain that area." }),
  ];
  if (needsUpload(run, params)) return uploadFirst(controls);
  const scale = DISPLAY / w;
  const boxNode = el("div", { class: "box" });
  const output = el("img", { id: "output", alt: "model output", draggable: "false" });
  const drag = el("div", { class: "drag", id: "drag" }, output, boxNode);
  const place = (b) => {
    boxNode.style.left = b[1] * scale + "px"; boxNode.style.top = b[0] * scale + "px";
    boxNode.style.width = (b[3] - b[1]) * scale + "px"; boxNode.style.height = (b[2] - b[0]) * scale + "px";
  };
  place(box);
  let start = null;
  const at = (e) => {
    const r = output.getBoundingClientRect();
    return [Math.max(0, Math.min(h, (e.clientY - r.top) / r.height * h)),
            Math.max(0, Math.min(w, (e.clientX - r.left) / r.width * w))];
  };
  const current = (e) => {
    const [y, x] = at(e);
    return [Math.floor(Math.min(start[0], y)), Math.floor(Math.min(start[1], x)),
            Math.max(Math.ceil(Math.max(start[0], y)), Math.floor(Math.min(start[0], y)) + 1),
            Math.max(Math.ceil(Math.max(start[1], x)), Math.floor(Math.min(start[1], x)) + 1)];
  };
  drag.addEventListener("mousedown", (e) => { e.preventDefault(); start = at(e); });
  drag.addEventListener("mousemove", (e) => { if (start) place(current(e)); });
  state.onMouseUp = (e) => {
    if (!start) return;
    const b = current(e).map((v, i) => Math.min(v, i % 2 ? w : h));
    start = null;
    go({ box: b.join(",") });
  };
  const view = el("div", {},
    el("div", { class: "tiles", id: "tiles" },
      figure(pictureUrl(run.id, imageOf(params)), "picture"),
      el("figure", {}, drag, el("figcaption", { text: (run.task === "segment" ? "segmentation" : "reconstruction") +
        ", box [" + box.join(", ") + "]" })),
      el("figure", { id: "area-cam" }, el("img", { alt: "area Grad-CAM" }), el("figcaption", { text: "area Grad-CAM" })),
      el("figure", { id: "area-guided" }, el("img", { alt: "area guided backprop" }),
         el("figcaption", { text: "area guided backprop" }))),
    el("div", { class: "panel", id: "legend" }));
  const target = { box: box, channel: channel === "" ? null : Number(channel) };
  const image = imageOf(params);
  latest("area", async () => {
    const [cam, guided] = await Promise.all([
      api("/api/explain", { run: run.id, image: image, method: "gradcam", layer: layer, target: target, include: ["overlay"] }),
      api("/api/explain", { run: run.id, image: image, method: "guided_backprop", target: target, include: ["overlay"] })]);
    return { cam: cam, guided: guided, ms: cam.ms };
  }).then((answer) => {
    if (!answer || !document.getElementById("area-cam")) return;
    const { cam, guided } = answer;
    output.src = png(cam.prediction.output);
    document.querySelector("#area-cam img").src = png(cam.overlay);
    document.querySelector("#area-cam figcaption").textContent =
      "area Grad-CAM, " + layer + ": " + pct(cam.inside) + " of the mass inside the box";
    document.querySelector("#area-guided img").src = png(guided.overlay);
    document.querySelector("#area-guided figcaption").textContent =
      "area guided backprop: " + pct(guided.inside) + " inside the box";
    document.getElementById("tiles").dataset.stamp = String(++state.seq);
    const legend = document.getElementById("legend");
    if (cam.prediction.present) {
      legend.replaceChildren(el("b", { text: "classes in the output: " }), ...cam.prediction.present.map((p) =>
        el("span", { class: "legend" }, swatch("rgb(" + cam.prediction.palette[p.class % cam.prediction.palette.length] + ")"),
           p.name + " ")));
    } else legend.replaceChildren(el("span", { class: "hint", text: "reconstruction of the picture by the model" }));
  });
  return [controls, view];
}
function swatch(colour) { const i = el("i", {}); i.style.background = colour; return el("span", {}, i); }

// ---------------------------------------------------------------- Epochs
function epochsPage(params) {
  const runs = runsFor(["classify", "reconstruct", "segment"], 2).filter((r) => r.kind === "run");
  if (!runs.length) return message("The Epochs page needs a run with two or more checkpoints.");
  const run = runById(params.run) && runById(params.run).epochs.length > 1 ? runById(params.run) : runs[0];
  params.run = run.id;
  const epochs = run.epochs;
  const epoch = params.epoch !== undefined && epochs.includes(Number(params.epoch)) ? Number(params.epoch) :
    epochs[epochs.length - 1];
  const layer = params.layer && run.layers.includes(params.layer) ? params.layer : run.stages[run.stages.length - 1];
  const go = pick("epochs", params);
  const [h, w] = run.size;
  const target = run.task === "classify" ? { top: 1 } :
    { box: [Math.floor(h / 4), Math.floor(w / 4), Math.ceil(3 * h / 4), Math.ceil(3 * w / 4)], channel: null };
  const label = el("span", { id: "epoch-label", text: "epoch " + epoch });
  const slider = el("input", { type: "range", id: "epoch", min: 0, max: epochs.length - 1, step: 1,
                               value: epochs.indexOf(epoch) });
  slider.addEventListener("input", () => { label.textContent = "epoch " + epochs[Number(slider.value)]; });
  slider.addEventListener("change", () => go({ epoch: epochs[Number(slider.value)] }));
  const controls = [
    runSelect(["classify", "reconstruct", "segment"], run.id, (v) => setHash("epochs", { run: v })),
    picturePicker(run, params, go),
    layerSelect(run, layer, (v) => go({ layer: v })),
    field("Checkpoint", el("div", {}, slider, label)),
    run.task !== "classify" ? el("p", { class: "hint", text: "dense output: the map explains the centre box" }) : null,
  ];
  const chart = svg("svg", { class: "chart", id: "curves", width: 460, height: 240 });
  const view = el("div", {}, el("div", { class: "tiles", id: "tiles" },
    figure(pictureUrl(run.id, imageOf(params)), "picture"),
    el("figure", { id: "epoch-map" }, el("img", { alt: "map at this epoch" }), el("figcaption", { text: "" })),
    el("figure", {}, chart, el("figcaption", { id: "curve-caption", text: "" }))));
  const image = imageOf(params);
  latest("epochs", () => api("/api/explain", { run: run.id, image: image, method: "gradcam", layer: layer,
                                               target: target, epoch: epoch, include: ["overlay"] }))
    .then((result) => {
      if (!result || !document.getElementById("epoch-map")) return;
      document.querySelector("#epoch-map img").src = png(result.overlay);
      const what = result.target.classes ? " for " + result.target.classes[0].name : "";
      document.querySelector("#epoch-map figcaption").textContent = "Grad-CAM " + layer + ", epoch " + epoch + what;
      document.getElementById("tiles").dataset.stamp = String(++state.seq);
    });
  api("/api/epochs", { run: run.id, image: image, layer: layer, target: target })
    .then((curves) => drawCurves(chart, curves, epoch))
    .catch((err) => status(err.message, true));
  return [controls, view];
}
function drawCurves(chart, curves, current) {
  const rows = curves.epochs, W = 460, H = 240, L = 40, R = 12, T = 14, B = 52;
  const xs = rows.map((r) => r.epoch);
  const x = (e) => L + (xs.length > 1 ? (e - xs[0]) / (xs[xs.length - 1] - xs[0]) : 0.5) * (W - L - R);
  const series = [["attention", "#d62728", rows.map((r) => r.attention)]];
  if (curves.metric) series.push([curves.metric, "#1f77b4", rows.map((r) => r.metric)]);
  chart.replaceChildren(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" }),
                        svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }));
  for (const e of xs) chart.appendChild(svg("text", { x: x(e), y: H - B + 14, "text-anchor": "middle", text: e }));
  chart.appendChild(svg("line", { x1: x(current), y1: T, x2: x(current), y2: H - B, stroke: "#555",
                                  "stroke-dasharray": "3,3" }));
  series.forEach(([name, colour, values], k) => {
    const known = values.map((v, i) => [xs[i], v]).filter(([, v]) => v !== null && v !== undefined);
    if (!known.length) return;
    const lo = Math.min(...known.map(([, v]) => v), 0), hi = Math.max(...known.map(([, v]) => v), 1e-9);
    const y = (v) => H - B - (v - lo) / (hi - lo || 1) * (H - T - B);
    chart.appendChild(svg("polyline", { fill: "none", stroke: colour, "stroke-width": 2,
      points: known.map(([e, v]) => x(e) + "," + y(v)).join(" ") }));
    for (const [e, v] of known) chart.appendChild(svg("circle", { cx: x(e), cy: y(v), r: 3, fill: colour }));
    chart.appendChild(svg("text", { x: L, y: H - 22 + 14 * k, fill: colour,
      text: (name === "attention" ? "attention (" + curves.attention + ")" : name) +
        ", " + known[0][1].toFixed(3) + " .. " + known[known.length - 1][1].toFixed(3) }));
  });
  document.getElementById("curve-caption").textContent = "per checkpoint: the run's " + (curves.metric || "metric") +
    " and this picture's attention; dashed: the shown epoch";
}

// ---------------------------------------------------------------- Embedding
function embeddingPage(params) {
  const runs = runsFor(["classify", "reconstruct", "segment"]).filter((r) => r.splits.test > 0);
  if (!runs.length) return message("The Embedding page needs a run or picture folder.");
  const run = runById(params.run) && runById(params.run).splits.test > 0 ? runById(params.run) : runs[0];
  params.run = run.id;
  const layer = params.layer || "prelogits";
  const method = params.method || "pca";
  const go = pick("embedding", params);
  const extra = [["prelogits", "prelogits (pooled features)"]].concat(run.has_artifact_embedding ?
    [["artifact", "the run's embedding artifact"]] : []);
  const controls = [
    runSelect(["classify", "reconstruct", "segment"], run.id, (v) => setHash("embedding", { run: v })),
    layerSelect(run, layer, (v) => go({ layer: v }), extra),
    field("Projection", select([["pca", "PCA"], ["tsne", "t-SNE"], ["umap", "UMAP"]], method, (v) => go({ method: v }))),
    el("p", { class: "hint", text: "Hover a point for its picture; click it to explain it." }),
  ];
  const size = 560;
  const plot = svg("svg", { class: "scatter", id: "scatter", width: size, height: size });
  const legend = el("div", { class: "legend panel", id: "legend" });
  const view = el("div", {}, el("div", { class: "panel", id: "embed-title", text: "computing the embedding..." }),
                  plot, legend);
  latest("embedding", () => api("/api/embedding", { run: run.id, layer: layer, method: method, limit: 500 }))
    .then((data) => {
      if (!data || !document.getElementById("scatter")) return;
      document.getElementById("embed-title").textContent = run.id + ": " + data.title + ", " + data.points.length +
        " test pictures, coloured by label";
      const tip = document.getElementById("tooltip");
      for (const p of data.points) {
        const colour = COLOURS[(p.label === null ? 0 : p.label) % COLOURS.length];
        const caption = (p.label !== null ? (data.classes[p.label] || p.label) : "#" + p.index) +
          (p.pred !== null && p.pred !== undefined ? ", predicted " + (data.classes[p.pred] || p.pred) : "");
        plot.appendChild(svg("circle", {
          cx: 12 + p.x * (size - 24), cy: 12 + (1 - p.y) * (size - 24), r: 4.5, fill: colour, "data-index": p.index,
          onmouseenter: (e) => {
            document.getElementById("tooltip-img").src = pictureUrl(run.id, { split: "test", index: p.index });
            document.getElementById("tooltip-text").textContent = caption;
            tip.hidden = false; tip.style.left = e.clientX + 14 + "px"; tip.style.top = e.clientY + 14 + "px";
          },
          onmouseleave: () => { tip.hidden = true; },
          onclick: () => { tip.hidden = true; setHash(run.task === "classify" ? "explain" : "area",
                                                      { run: run.id, index: p.index }); },
        }));
      }
      plot.dataset.stamp = String(++state.seq);
      legend.replaceChildren(...data.classes.slice(0, COLOURS.length).map((c, i) =>
        el("span", {}, swatch(COLOURS[i]), c)));
    });
  return [controls, view];
}

// ---------------------------------------------------------------- Units
function unitsPage(params) {
  const runs = state.runs;
  const run = runById(params.run) || runs[0];
  params.run = run.id;
  const layer = params.layer && run.layers.includes(params.layer) ? params.layer : run.stages[run.stages.length - 1];
  const first = Math.max(0, Number(params.first || 0));
  const go = pick("units", params);
  const controls = [
    runSelect(["classify", "reconstruct", "segment"], run.id, (v) => setHash("units", { run: v })),
    layerSelect(run, layer, (v) => go({ layer: v })),
    field("First channel", el("input", { type: "number", min: 0, value: first,
      onchange: (e) => go({ first: e.target.value }) })),
    el("p", { class: "hint", text: "Eight channels from the first: the picture that excites each most " +
      "(activation maximization, 64 steps) and the test pictures that activate it most." }),
  ];
  const table = el("table", { class: "units", id: "units" });
  const view = el("div", {}, el("div", { class: "panel", id: "units-title", text: "rendering channels..." }), table);
  const channels = Array.from({ length: 8 }, (_, i) => first + i);
  latest("units", () => api("/api/units", { run: run.id, layer: layer, channels: channels, steps: 64, top: 6 }))
    .then((data) => {
      if (!data || !document.getElementById("units")) return;
      document.getElementById("units-title").textContent = run.id + ": channels of " + data.layer;
      table.replaceChildren(el("tr", {}, el("th", { text: "channel" }), el("th", { text: "maximizes it" }),
                                      el("th", { text: "top test pictures (mean activation)" })));
      for (const c of data.channels) {
        table.appendChild(el("tr", {}, el("td", { text: String(c.channel) }),
          el("td", {}, el("img", { src: png(c.image), alt: "channel " + c.channel })),
          el("td", {}, el("div", { class: "tops" }, c.top.map((t) =>
            el("figure", {}, el("img", { src: pictureUrl(run.id, { split: "test", index: t.index }), alt: "#" + t.index,
                                         onclick: () => setHash(run.task === "classify" ? "explain" : "area",
                                                                { run: run.id, index: t.index }) }),
               el("figcaption", { text: t.value.toFixed(2) })))))));
      }
      table.dataset.stamp = String(++state.seq);
    });
  return [controls, view];
}

function message(text) { return [[], el("div", { class: "panel", text: text })]; }

// ---------------------------------------------------------------- routing
const PAGES = { explain: explainPage, area: areaPage, epochs: epochsPage, embedding: embeddingPage, units: unitsPage };

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const page = PAGES[path] ? path : "explain";
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  document.querySelectorAll("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  document.getElementById("tooltip").hidden = true;
  state.onMouseUp = null;
  const [controls, view] = PAGES[page](params);
  document.getElementById("controls").replaceChildren(...[controls].flat().filter(Boolean));
  document.getElementById("view").replaceChildren(view);
  document.body.dataset.page = page;
}

async function start() {
  try {
    const data = await api("/api/runs");
    state.runs = data.runs;
  } catch (err) { status(err.message, true); return; }
  if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", "/" + location.hash);
  window.addEventListener("hashchange", route);
  window.addEventListener("mouseup", (e) => { if (state.onMouseUp) state.onMouseUp(e); });
  route();
}
document.addEventListener("DOMContentLoaded", start);
