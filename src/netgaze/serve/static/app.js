/* netgaze serve: routing between the pages and start-up. */
"use strict";

// ---------------------------------------------------------------- routing
const PAGES = { explain: explainPage, area: areaPage, epochs: epochsPage, embedding: embeddingPage, units: unitsPage,
                concepts: conceptsPage };

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const page = PAGES[path] ? path : "explain";
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  document.querySelectorAll("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  document.getElementById("tooltip").hidden = true;
  state.onMouseUp = null;
  if (state.leave) { state.leave(); state.leave = null; }      // the page that goes frees what it holds
  const [controls, view] = PAGES[page](params);
  document.getElementById("controls").replaceChildren(...[controls].flat().filter(Boolean));
  document.getElementById("view").replaceChildren(view);
  document.body.dataset.page = page;
}

async function start() {
  try {
    const data = await api("/api/runs");
    state.runs = data.runs;
    state.embeddingMethods = data.embedding_methods || ["pca", "tsne"];
    if (data.cam_methods) CAM_METHODS = data.cam_methods;
    if (data.pixel_methods) GRADIENT_METHODS = data.pixel_methods;
  } catch (err) { status(err.message, true); return; }
  if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", "/" + location.hash);
  window.addEventListener("hashchange", route);
  window.addEventListener("mouseup", (e) => { if (state.onMouseUp) state.onMouseUp(e); });
  route();
}
document.addEventListener("DOMContentLoaded", start);
