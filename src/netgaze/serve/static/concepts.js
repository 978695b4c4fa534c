/* Concepts: on the Explain page a click on a map lists the concepts (a layer's channels, ng.concepts)
   that contribute at that point, each with its conditional map and reference pictures; the Concepts
   page shows one class of the run's concept atlas (netgaze study concepts RUN). */
"use strict";

const CONCEPTS_K = 8;
const REFERENCES_SHOWN = 5;     // reference crops per kind and concept

// A square canvas of the crop `box` ([y0, x0, y1, x1], input pixels) of a served picture.
function cropCanvas(run, split, ref, size) {
  const canvas = el("canvas", { width: size, height: size, class: "crop",
                                title: split + " #" + ref.index + (ref.value !== null && ref.value !== undefined ?
                                  ", " + Number(ref.value).toPrecision(3) : "") });
  const image = new Image();
  image.onload = () => {
    const [y0, x0, y1, x1] = ref.box;
    const context = canvas.getContext("2d");
    context.imageSmoothingEnabled = false;
    context.drawImage(image, x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0), 0, 0, size, size);
  };
  image.src = pictureUrl(run, { split: split, index: ref.index });
  canvas.addEventListener("click", () => setHash("explain", { run: run, index: ref.index, split: split }));
  return canvas;
}
function cropStrip(run, split, refs, title) {
  if (!refs) return el("span", { class: "hint", text: "-" });
  return el("div", { class: "crops", title: title }, refs.slice(0, REFERENCES_SHOWN).map((r) => cropCanvas(run, split, r, 48)));
}
function signed(x) { return x === null || x === undefined ? "-" : (x >= 0 ? "+" : "") + Number(x).toPrecision(3); }

// ---------------------------------------------------------------- Explain: click for concepts
// Every map canvas of the Explain page answers a click: its layer (data-layer; the last stage for
// maps without one) and the class it explains (data-class) are asked for at the clicked pixel.
function conceptClicks(run, image) {
  for (const canvas of document.querySelectorAll("#tiles canvas.map")) {
    canvas.classList.add("clickable");
    canvas.title = "click: the concepts that contribute here";
    canvas.addEventListener("click", (e) => {
      const r = canvas.getBoundingClientRect();
      const x = Math.min(canvas.width - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * canvas.width)));
      const y = Math.min(canvas.height - 1, Math.max(0, Math.floor((e.clientY - r.top) / r.height * canvas.height)));
      document.querySelectorAll("#tiles .point-mark").forEach((m) => m.remove());
      const mark = el("span", { class: "point-mark" });
      mark.style.left = (canvas.offsetLeft + (x + 0.5) / canvas.width * canvas.clientWidth) + "px";
      mark.style.top = (canvas.offsetTop + (y + 0.5) / canvas.height * canvas.clientHeight) + "px";
      canvas.parentNode.appendChild(mark);
      const layer = canvas.dataset.layer || run.stages[run.stages.length - 1];
      const target = canvas.dataset.class !== undefined ? { class: Number(canvas.dataset.class) } : { top: 1 };
      showConcepts(run, image, layer, target, { x: x, y: y });
    });
  }
}

function showConcepts(run, image, layer, target, point) {
  const panel = document.getElementById("concepts");
  if (!panel) return;
  panel.setAttribute("data-busy", "");
  panel.classList.remove("failed");
  panel.replaceChildren(el("span", { class: "hint", text: "computing the concepts of " + layer + "..." }));
  const source = pictureUrl(run.id, image);
  latest("concepts", async () => {
    const answer = await api("/api/concepts", { run: run.id, image: image, layer: layer, target: target,
                                                k: CONCEPTS_K, point: point });
    const canvases = await Promise.all(answer.concepts.map((c) => mapCanvas(c.map_f32, source, true)));
    return Object.assign(answer, { canvases: canvases });
  }).then((answer) => {
    if (!answer || !document.getElementById("concepts")) return;
    const refs = answer.references;
    const cls = answer.target.classes ? answer.target.classes[0].name : answer.target.name;
    const rows = answer.order_at_point.map((j) => {
      const c = answer.concepts[j], canvas = answer.canvases[j];
      canvas.classList.add("thumb");
      const references = c.references ? [
        el("div", { class: "hint", text: "by relevance to " + cls }), cropStrip(run.id, refs.split, c.references.by_relevance,
                                                                                 "where it carried the class most"),
        el("div", { class: "hint", text: "by activation" }), cropStrip(run.id, refs.split, c.references.by_activation,
                                                                       "where it fired most")] :
        [el("span", { class: "hint", text: "no reference pictures" })];
      return el("tr", { "data-channel": c.channel },
        el("td", {}, canvas),
        el("td", {}, el("b", { text: "channel " + c.channel }), c.label ? el("div", { text: c.label }) : null,
           el("div", { text: "at the point " + signed(c.at_point) }),
           el("div", { class: "hint", text: "share " + pct(c.share) })),
        el("td", {}, ...references));
    });
    panel.removeAttribute("data-busy");
    panel.replaceChildren(...[
      el("div", { class: "concepts-title" }, el("b", { text: "Concepts at (" + answer.point.x + ", " + answer.point.y + ")" }),
         " " + answer.k + " channels of " + answer.layer + " that carry most of " + cls +
         " (score " + Number(answer.score).toPrecision(3) + "), by their conditional map's value at the point"),
      refs.available ? null : el("div", { class: "hint note", text: refs.note }),
      refs.available && refs.note ? el("div", { class: "hint note", text: refs.note }) : null,
      el("table", { class: "concepts", id: "concept-list" },
         el("tr", {}, el("th", { text: "conditional map" }), el("th", { text: "concept" }),
            el("th", { text: "reference pictures (" + (refs.split || "-") + ")" })), ...rows)].filter(Boolean));
    document.getElementById("concept-list").dataset.stamp = String(++state.seq);
  });
}

// ---------------------------------------------------------------- the Concepts page
function conceptsPage(params) {
  const runs = runsFor(["classify"]).sort((a, b) => Number(!!b.has_concepts) - Number(!!a.has_concepts));
  if (!runs.length) return message("The Concepts page needs a classifier run.");
  const run = runs.find((r) => r.id === params.run) || runs[0];
  params.run = run.id;
  const go = pick("concepts", params);
  const cls = params.class !== undefined && params.class !== "" ? Number(params.class) : undefined;
  const controls = [
    field("Run", select(runs.map((r) => [r.id, r.id + (r.has_concepts ? "" : " (no concept atlas)")]), run.id,
                        (v) => setHash("concepts", { run: v }))),
    field("Class", select(run.classes.map((c, i) => [i, c]), cls === undefined ? 0 : cls, (v) => go({ class: v }))),
    el("p", { class: "hint", text: "The channels the class relies on most over its own pictures (mean share of its " +
      "relevance), how often each is among a picture's top channels, its activation-maximization picture, and the " +
      "crops of the pictures where it carried the class most, where it fired most, and that rely on it. " +
      "Click a crop to explain that picture." }),
  ];
  if (!run.has_concepts) {
    return [controls, el("div", { class: "panel", id: "atlas-title",
      text: run.id + " has no concept atlas: run `netgaze study concepts RUN` on the run folder, then restart the explorer." })];
  }
  const table = el("table", { class: "concepts", id: "atlas" });
  const view = el("div", {}, el("div", { class: "panel", id: "atlas-title", "data-busy": true,
                                          text: "reading the concept atlas..." }), table);
  const query = new URLSearchParams({ run: run.id });
  if (cls !== undefined) query.set("class", cls);
  latest("atlas", () => api("/api/concepts/atlas?" + query)).then((atlas) => {
    if (!atlas || !document.getElementById("atlas")) return;
    const title = document.getElementById("atlas-title");
    title.removeAttribute("data-busy");
    title.textContent = "Concept atlas of " + atlas.layer + " for class " + atlas.name + " (" + atlas.pictures + " " +
      atlas.split + " pictures" + (atlas.epoch !== null ? ", epoch " + atlas.epoch : "") + ")";
    table.replaceChildren(el("tr", {}, ["channel", "mean share", "top-" + atlas.per_picture + " rate",
      "maximizes it", "by relevance to " + atlas.name, "by activation", "pictures that rely on it"]
      .map((t) => el("th", { text: t }))));
    for (const c of atlas.channels) {
      table.appendChild(el("tr", { "data-channel": c.channel },
        el("td", {}, el("b", { text: String(c.channel) }), c.label ? el("div", { text: c.label }) : null),
        el("td", { text: c.mean_share === null ? "-" : pct(c.mean_share) }), el("td", { text: c.top_rate === null ? "-" : pct(c.top_rate) }),
        el("td", { class: "am", "data-channel": c.channel }, el("span", { class: "hint", text: "..." })),
        el("td", {}, cropStrip(run.id, atlas.split, c.by_relevance, "relevance maximization")),
        el("td", {}, cropStrip(run.id, atlas.split, c.by_activation, "activation maximization over the data")),
        el("td", {}, c.relying.length ? cropStrip(run.id, atlas.split, c.relying, "highest shares") :
           el("span", { class: "hint", text: "none with a positive total" }))));
    }
    table.dataset.stamp = String(++state.seq);
    const channels = atlas.channels.map((c) => c.channel).slice(0, 16);
    if (!channels.length) return;
    api("/api/units", { run: run.id, layer: atlas.layer, channels: channels, steps: 64, top: 1 }).then((units) => {
      for (const u of units.channels) {
        const cell = table.querySelector("td.am[data-channel='" + u.channel + "']");
        if (cell) cell.replaceChildren(el("img", { src: png(u.image), alt: "channel " + u.channel, class: "thumb" }));
      }
      table.dataset.am = "1";
    }).catch((err) => {
      table.querySelectorAll("td.am").forEach((cell) => cell.replaceChildren(el("span", { class: "hint", text: "-" })));
      status(err.message, true);
    });
  });
  return [controls, view];
}
