"""The explorer in a real browser: every page, the user's gestures, new maps, no console errors."""
from __future__ import annotations

import os

import pytest

from browser_tour import CHROMIUM, tour
from serve_fixtures import EVIL


def _skip_reason() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (the Makefile's `chromium` target installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install 'netgaze[test]')"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_every_page_in_headless_chromium(serve_runs, concepts_run, tmp_path):
    from netgaze.serve import BackgroundServer, Settings, Sources

    sources = Sources.from_arguments([str(serve_runs[k]) for k in ("cnn", "vae", "fcn", "evil")] + [str(concepts_run)])
    with BackgroundServer(sources, Settings(processes=True)) as server:
        report = tour(server.url, tmp_path / "shots", {"classify": "cnn", "dense": "vae", "escape": "evil",
                                                       "concepts": "concepts"})
    assert report["console"] == [] and report["page_errors"] == [] and report["failed"] == []
    assert report["http_errors"] == []                             # no 4xx or 5xx answer on any page
    # the click on the map listed 8 concepts, sorted by their conditional map's value at the point
    assert len(report["concept_rows"]) == 8 and len(set(report["concept_rows"])) == 8
    at_point = [float(t.split()[-1]) for t in report["concept_values"] if t.startswith("at the point")]
    assert len(at_point) == 8 and at_point == sorted(at_point, reverse=True)
    assert report["concept_crops"] == 8 * 2 * 5                    # 5 crops by relevance, 5 by activation each
    assert report["concept_title"].startswith("Concepts at (")
    assert report["atlas_rows"] == 6 and report["atlas_images"] == 6   # n_channels=6, each with its AM picture
    assert report["atlas_title"].startswith("Concept atlas of features for class circle")
    for step, before, after in report["steps"]:
        assert after and after != before, step                     # a new map arrived after each gesture
    assert report["explain_tiles"] == 4                            # picture, two layers, guided backprop
    assert report["upload_caption"] == "uploaded picture"
    assert report["opacity"] == (True, True)          # the opacity control redrew the maps without a request
    before, after = report["area_captions"]
    assert "inside the box" in after and before != after           # the dragged box changed the area map
    assert report["epoch_caption"].startswith("Grad-CAM features, epoch 0")
    index, hash_ = report["embedding_click"]
    assert hash_.startswith("#/explain") and f"index={index}" in hash_
    assert report["unit_rows"] == 9                                # header + 8 channels
    assert EVIL in report["escape_options"]                        # shown as text ...
    assert report["xss"] is None                                   # ... never run
    assert {p.name for p in (tmp_path / "shots").iterdir()} == {"explain.png", "area.png", "epochs.png",
                                                                "embedding.png", "units.png", "explain-concepts.png",
                                                                "concepts.png"}


# In the page: ask for the packed map AND the server's PNG overlay of one request, draw the map
# as the pages do (heat.js), and compare both pictures pixel by pixel (here they are equal; one
# unit of rounding is allowed for another CPU's float arithmetic).
COMPARE = """async ([body, cam, k]) => {
  const answer = await api("/api/explain", Object.assign({}, body, { include: ["map_f32", "overlay"] }));
  const drawn = await mapCanvas(answer.map_f32, pictureUrl(body.run, body.image), cam, k);
  const mine = drawn.getContext("2d").getImageData(0, 0, drawn.width, drawn.height).data;
  const overlay = Array.isArray(answer.overlay) ? answer.overlay[k] : answer.overlay;
  const theirs = await picturePixels(png(overlay), drawn.height, drawn.width);
  let worst = 0, exact = 0;
  for (let i = 0; i < mine.length; i++) {
    const d = Math.abs(mine[i] - theirs[i]);
    worst = Math.max(worst, d); if (d === 0) exact++;
  }
  return { worst: worst, exact: exact / mine.length, pixels: mine.length / 4 };
}"""


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_maps_drawn_in_the_page_equal_the_servers_overlays(serve_runs):
    from playwright.sync_api import sync_playwright

    from netgaze.serve import BackgroundServer, Settings, Sources

    cases = [({"run": "cnn", "image": {"split": "test", "index": 3}, "method": "gradcam", "layer": -1}, True, 0),
             ({"run": "cnn", "image": {"split": "test", "index": 5}, "method": "gradcam_pp",
               "target": {"top": 3}}, True, 2),                                      # the third of a top-3 answer
             ({"run": "cnn", "image": {"split": "test", "index": 3}, "method": "guided_backprop"}, False, 0),
             ({"run": "vae", "image": {"split": "test", "index": 1}, "method": "gradcam",     # a grey picture
               "target": {"box": [2, 2, 6, 6], "channel": None}}, True, 0),
             ({"run": "vae", "image": {"split": "test", "index": 1}, "method": "saliency",
               "target": {"box": [2, 2, 6, 6], "channel": None}}, False, 0)]
    sources = Sources.from_arguments([str(serve_runs[k]) for k in ("cnn", "vae")])
    with BackgroundServer(sources, Settings(processes=True)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(server.url + "/#/units")             # any page: only its scripts are used
            page.wait_for_function("() => typeof mapCanvas === 'function' && document.body.dataset.page")
            for body, cam, k in cases:
                result = page.evaluate(COMPARE, [body, cam, k])
                assert result["pixels"] > 0
                assert result["worst"] <= 1 and result["exact"] >= 0.99, (body["method"], result)
        finally:
            browser.close()
