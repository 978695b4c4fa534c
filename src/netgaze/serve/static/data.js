/* The pages about a layer's features over the data: Embedding, Units. */
"use strict";

// ---------------------------------------------------------------- Embedding
const PROJECTIONS = [["pca", "PCA"], ["tsne", "t-SNE"], ["umap", "UMAP"]];   // offered when the server has them

function embeddingPage(params) {
  const runs = runsFor(["classify", "reconstruct", "segment"]).filter((r) => r.splits.test > 0);
  if (!runs.length) return message("The Embedding page needs a run or picture folder.");
  const run = runById(params.run) && runById(params.run).splits.test > 0 ? runById(params.run) : runs[0];
  params.run = run.id;
  const layer = params.layer || "prelogits";
  const method = state.embeddingMethods.includes(params.method) ? params.method : "pca";
  const go = pick("embedding", params);
  const extra = [["prelogits", "prelogits (pooled features)"]].concat(run.has_artifact_embedding ?
    [["artifact", "the run's embedding artifact"]] : []);
  const controls = [
    runSelect(["classify", "reconstruct", "segment"], run.id, (v) => setHash("embedding", { run: v })),
    layerSelect(run, layer, (v) => go({ layer: v }), extra),
    field("Projection", select(PROJECTIONS.filter(([m]) => state.embeddingMethods.includes(m)), method,
                               (v) => go({ method: v }))),
    el("p", { class: "hint", text: "Hover a point for its picture; click it to explain it." }),
  ];
  const box = el("div", { class: "scatter", id: "scatter" });
  const legend = el("div", { class: "legend panel", id: "legend" });
  const view = el("div", {}, el("div", { class: "panel", id: "embed-title", "data-busy": true,
                                          text: "computing the embedding..." }),
                  box, legend);
  const started = performance.now();
  latest("embedding", async () => {
    const buffer = await apiPacked("/api/embedding.bin", { run: run.id, layer: layer, method: method, limit: 500 });
    return { buffer: buffer, fetch_ms: performance.now() - started };
  }).then((answer) => {
    if (!answer || !document.getElementById("scatter")) return;
    let t = performance.now();
    const data = unpackEmbedding(answer.buffer);
    const classes = data.header.classes || [];
    const labels = data.columns.label, preds = data.columns.pred;
    const none = labels ? data.header.columns.label.none : -1;
    const colours = new Uint8Array(data.n);        // palette entry per point: its label's colour
    if (labels) for (let i = 0; i < data.n; i++) colours[i] = labels[i] === none ? 0 : labels[i] % COLOURS.length;
    const decode_ms = performance.now() - t;
    const tip = document.getElementById("tooltip");
    const nameOf = (column, i) => {
      const value = column[i];
      return value === data.header.columns[column === labels ? "label" : "pred"].none ? null : (classes[value] || String(value));
    };
    const scatter = new Scatter(box, data, colours, COLOURS, {
      hover: (i, e) => {
        if (i < 0) { tip.hidden = true; delete tip.dataset.index; return; }
        const index = data.columns.index[i];
        if (tip.dataset.index !== String(index) || tip.hidden) {
          const label = labels ? nameOf(labels, i) : null, pred = preds ? nameOf(preds, i) : null;
          document.getElementById("tooltip-img").src = pictureUrl(run.id, { split: data.header.split, index: index });
          document.getElementById("tooltip-text").textContent = (label !== null ? label : "#" + index) +
            (pred !== null ? ", predicted " + pred : "");
          tip.dataset.index = String(index);
          tip.hidden = false;
        }
        tip.style.left = e.clientX + 14 + "px"; tip.style.top = e.clientY + 14 + "px";
      },
      click: (i) => {
        tip.hidden = true;
        setHash(run.task === "classify" ? "explain" : "area", { run: run.id, index: data.columns.index[i] });
      },
    });
    scatter.timings = Object.assign({ fetch_ms: answer.fetch_ms, decode_ms: decode_ms,
                                      ready_ms: performance.now() - started }, scatter.timings);
    state.scatter = scatter;
    state.leave = () => { scatter.destroy(); if (state.scatter === scatter) state.scatter = null; };
    document.getElementById("embed-title").removeAttribute("data-busy");
    document.getElementById("embed-title").textContent = run.id + ": " + data.header.title + ", " +
      data.n.toLocaleString("en-US") + " " + data.header.split + " pictures, coloured by label" +
      (data.n > 1 ? " (wheel: zoom, drag: pan, double click: reset)" : "");
    legend.replaceChildren(...classes.slice(0, COLOURS.length).map((c, i) => el("span", {}, swatch(COLOURS[i]), c)));
    box.dataset.points = String(data.n);
    box.dataset.renderer = scatter.gl ? "webgl" : "2d";
    box.dataset.stamp = String(++state.seq);
  });
  return [controls, view];
}

// ---------------------------------------------------------------- Units
function unitsPage(params) {
  const runs = state.runs.filter((r) => !r.conditional);   // a conditional VAE's units would need a label
  if (!runs.length) return message("The Units page needs a run or model that is not a conditional VAE.");
  const run = runs.find((r) => r.id === params.run) || runs[0];
  params.run = run.id;
  const layer = params.layer && run.layers.includes(params.layer) ? params.layer : run.stages[run.stages.length - 1];
  const first = Math.max(0, Number(params.first || 0));
  const go = pick("units", params);
  const controls = [
    field("Run or model", select(runs.map((r) => [r.id, r.id + " (" + r.task + ")"]), run.id,
                                 (v) => setHash("units", { run: v }))),
    layerSelect(run, layer, (v) => go({ layer: v })),
    field("First channel", el("input", { type: "number", min: 0, value: first, id: "first-channel",
      onchange: (e) => go({ first: e.target.value }) })),
    el("p", { class: "hint", text: "Eight channels from the first: the picture that excites each most " +
      "(activation maximization, 64 steps) and the test pictures that activate it most." }),
  ];
  const table = el("table", { class: "units", id: "units" });
  const view = el("div", {}, el("div", { class: "panel", id: "units-title", "data-busy": true,
                                          text: "rendering channels..." }), table);
  const channels = Array.from({ length: 8 }, (_, i) => first + i);
  latest("units", () => api("/api/units", { run: run.id, layer: layer, channels: channels, steps: 64, top: 6 }))
    .then((data) => {
      if (!data || !document.getElementById("units")) return;
      document.getElementById("units-title").removeAttribute("data-busy");
      document.getElementById("units-title").textContent = run.id + ": channels " + data.channels[0].channel + "-" +
        data.channels[data.channels.length - 1].channel + " of " + data.layer + " (" + data.width + " channels)";
      document.getElementById("first-channel").max = data.width - 1;
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
