/* The pages that show maps: Explain, Area, Epochs (maps drawn by heat.js). */
"use strict";

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
    opacityControl(),
  ];
  if (needsUpload(run, params)) return uploadFirst(controls);
  const view = el("div", {}, el("div", { class: "panel prediction", id: "prediction", text: "choose a picture" }),
                  el("div", { class: "tiles", id: "tiles" }),
                  el("div", { class: "panel", id: "concepts" }, el("span", { class: "hint",
                    text: "Click a point of a map to list the concepts (channels) that contribute there." })));
  const image = imageOf(params);
  const wanted = target === "predicted" ? { top: 1 } : target === "top3" ? { top: 3 } :
    { class: Number(target.split(":")[1]) };
  const body = { run: run.id, image: image, method: method, include: ["map_f32"], target: wanted };
  const cam = CAM_METHODS.includes(method);
  if (cam || method === "guided_gradcam") body.layer = layers;
  const source = pictureUrl(run.id, image);
  latest("explain", async () => {
    const requests = [api("/api/explain", body)];
    if (guided && method !== "guided_backprop") {
      requests.push(api("/api/explain", { run: run.id, image: image, method: "guided_backprop", include: ["map_f32"],
                                          target: wanted.top > 1 ? { top: 1 } : wanted }));
    }
    const [result, guide] = await Promise.all(requests);
    const figures = [];
    const maps = body.layer ? result.map_f32 : { "": result.map_f32 };
    for (const [name, packed] of Object.entries(maps)) {
      for (let k = 0; k < mapCount(packed, cam); k++) {
        const cls = result.target.classes ? result.target.classes[k].name : result.target.name;
        const canvas = await mapCanvas(packed, source, cam, k);
        if (name) canvas.dataset.layer = name;        // a click asks for this layer's concepts (concepts.js)
        canvas.dataset.class = result.target.classes ? result.target.classes[k].class : result.target.class;
        figures.push(mapFigure(canvas, method + (name ? " " + name : "") + " for " + cls));
      }
    }
    if (guide) {
      figures.push(mapFigure(await mapCanvas(guide.map_f32, source, false), "guided backprop for " +
        (guide.target.classes ? guide.target.classes[0].name : guide.target.name)));
    }
    return { result: result, figures: figures, ms: result.ms };
  }).then((answer) => {
    const tiles = document.getElementById("tiles");
    if (!answer || !tiles) return;
    const { result, figures } = answer;
    tiles.replaceChildren(figure(source, image.upload ? "uploaded picture" :
      image.split + " picture #" + image.index + (result.label ? ", a " + result.label.name : "")), ...figures);
    tiles.dataset.stamp = String(++state.seq);
    conceptClicks(run, image);
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
  // Segmentation: by default the class predicted most inside the box (the sum of every class's
  // logits means little and is often negative everywhere, an empty map).
  const segment = run.task === "segment";
  const channel = params.channel !== undefined ? params.channel : segment ? "predicted" : "";
  const go = pick("area", params);
  const channels = segment ? [["predicted", "the class predicted in the box"]].concat(run.classes.map((c, i) => [i, c])) :
    (run.channels === 3 ? [[0, "red"], [1, "green"], [2, "blue"]] : []);
  const controls = [
    runSelect(["reconstruct", "segment"], run.id, (v) => setHash("area", { run: v })),
    picturePicker(run, params, go),
    layerSelect(run, layer, (v) => go({ layer: v })),
    field("Output channel", select([["", "all channels"]].concat(channels), channel, (v) => go({ channel: v }))),
    opacityControl(),
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
      el("figure", { id: "area-cam" }, el("canvas", { class: "map" }), el("figcaption", { text: "area Grad-CAM" })),
      el("figure", { id: "area-guided" }, el("canvas", { class: "map" }),
         el("figcaption", { text: "area guided backprop" }))),
    el("div", { class: "panel", id: "legend" }));
  const target = { box: box, channel: channel === "" ? null : channel === "predicted" ? channel : Number(channel) };
  const image = imageOf(params);
  latest("area", async () => {
    const [cam, guided] = await Promise.all([
      api("/api/explain", { run: run.id, image: image, method: "gradcam", layer: layer, target: target, include: ["map_f32"] }),
      api("/api/explain", { run: run.id, image: image, method: "guided_backprop", target: target, include: ["map_f32"] })]);
    const source = pictureUrl(run.id, image);
    return { cam: cam, guided: guided, ms: cam.ms, camCanvas: await mapCanvas(cam.map_f32, source, true),
             guidedCanvas: await mapCanvas(guided.map_f32, source, false) };
  }).then((answer) => {
    if (!answer || !document.getElementById("area-cam")) return;
    const { cam, guided } = answer;
    output.src = png(cam.prediction.output);
    document.querySelector("#area-cam canvas").replaceWith(answer.camCanvas);
    const explained = cam.target.name !== undefined ? " of " + cam.target.name : "";
    document.querySelector("#area-cam figcaption").textContent =
      "area Grad-CAM" + explained + ", " + layer + ": " + pct(cam.inside) + " of the mass inside the box";
    document.querySelector("#area-guided canvas").replaceWith(answer.guidedCanvas);
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
    { box: [Math.floor(h / 4), Math.floor(w / 4), Math.ceil(3 * h / 4), Math.ceil(3 * w / 4)],
      channel: run.task === "segment" ? "predicted" : null };
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
    opacityControl(),
    run.task !== "classify" ? el("p", { class: "hint", text: "dense output: the map explains the centre box" }) : null,
  ];
  const chart = svg("svg", { class: "chart", id: "curves", width: 460, height: 240, viewBox: "0 0 460 240" });
  const view = el("div", {}, el("div", { class: "tiles", id: "tiles" },
    figure(pictureUrl(run.id, imageOf(params)), "picture"),
    el("figure", { id: "epoch-map" }, el("canvas", { class: "map" }), el("figcaption", { text: "" })),
    el("figure", {}, chart, el("figcaption", { id: "curve-caption", text: "" }))));
  const image = imageOf(params);
  latest("epochs", async () => {
    const result = await api("/api/explain", { run: run.id, image: image, method: "gradcam", layer: layer,
                                               target: target, epoch: epoch, include: ["map_f32"] });
    return Object.assign(result, { canvas: await mapCanvas(result.map_f32, pictureUrl(run.id, image), true) });
  }).then((result) => {
      if (!result || !document.getElementById("epoch-map")) return;
      document.querySelector("#epoch-map canvas").replaceWith(result.canvas);
      const what = result.target.classes ? " for " + result.target.classes[0].name :
        result.target.name !== undefined ? ", " + result.target.name + " in the centre box" : "";
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
  // One axis for both curves (shares and accuracies lie in 0..1; larger values widen it), with its ticks;
  // a missing value (a diverged epoch's NaN arrives as null) leaves a gap instead of a joined line.
  const all = series.flatMap(([, , values]) => values.filter((v) => v !== null && v !== undefined));
  const lo = Math.min(0, ...all), hi = Math.max(1, ...all);
  const y = (v) => H - B - (v - lo) / (hi - lo || 1) * (H - T - B);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    chart.appendChild(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, text: +v.toFixed(2) }));
  }
  series.forEach(([name, colour, values], k) => {
    const known = values.map((v, i) => [xs[i], v]).filter(([, v]) => v !== null && v !== undefined);
    if (!known.length) return;
    let piece = [];
    const pieces = [piece];
    values.forEach((v, i) => {
      if (v === null || v === undefined) { if (piece.length) pieces.push(piece = []); } else piece.push([xs[i], v]);
    });
    for (const part of pieces.filter((p) => p.length > 1)) {
      chart.appendChild(svg("polyline", { fill: "none", stroke: colour, "stroke-width": 2,
        points: part.map(([e, v]) => x(e) + "," + y(v)).join(" ") }));
    }
    for (const [e, v] of known) chart.appendChild(svg("circle", { cx: x(e), cy: y(v), r: 3, fill: colour }));
    const gaps = xs.filter((e, i) => values[i] === null || values[i] === undefined);
    chart.appendChild(svg("text", { x: L, y: H - 22 + 14 * k, fill: colour,
      text: (name === "attention" ? "attention (" + curves.attention + ")" : name) +
        ", " + known[0][1].toFixed(3) + " .. " + known[known.length - 1][1].toFixed(3) +
        (gaps.length ? " (no value at epoch " + gaps.join(", ") + ")" : "") }));
  });
  document.getElementById("curve-caption").textContent = "per checkpoint: the run's " + (curves.metric || "metric") +
    " and this picture's attention; dashed: the shown epoch";
}
