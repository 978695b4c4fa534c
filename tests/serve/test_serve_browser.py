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
def test_every_page_in_headless_chromium(serve_runs, tmp_path):
    from netgaze.serve import BackgroundServer, Sources

    sources = Sources.from_arguments([str(serve_runs[k]) for k in ("cnn", "vae", "fcn", "evil")])
    with BackgroundServer(sources) as server:
        report = tour(server.url, tmp_path / "shots", {"classify": "cnn", "dense": "vae", "escape": "evil"})
    assert report["console"] == [] and report["page_errors"] == [] and report["failed"] == []
    for step, before, after in report["steps"]:
        assert after and after != before, step                     # a new map arrived after each gesture
    assert report["explain_tiles"] == 4                            # picture, two layers, guided backprop
    assert report["upload_caption"] == "uploaded picture"
    before, after = report["area_captions"]
    assert "inside the box" in after and before != after           # the dragged box changed the area map
    assert report["epoch_caption"].startswith("Grad-CAM features, epoch 0")
    index, hash_ = report["embedding_click"]
    assert hash_.startswith("#/explain") and f"index={index}" in hash_
    assert report["unit_rows"] == 9                                # header + 8 channels
    assert EVIL in report["escape_options"]                        # shown as text ...
    assert report["xss"] is None                                   # ... never run
    assert {p.name for p in (tmp_path / "shots").iterdir()} == {"explain.png", "area.png", "epochs.png",
                                                                "embedding.png", "units.png"}
