"""The report in headless Chromium: renders, every picture loads, no console error."""
from __future__ import annotations

import re

import pytest

from browser import chromium, probe, screenshot
from netgaze.report import build_report
from report_fixtures import write_classify_run, write_reconstruct_run

pytestmark = pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (Debian package "
                                "`chromium`; `make chromium` installs it)")


def test_report_renders_in_chromium(tmp_path):
    root = tmp_path / "runs"
    path = build_report([write_classify_run(root), write_reconstruct_run(root)], tmp_path / "report.html")
    found = probe(path)
    assert found["images"] == len(re.findall(r"<img ", path.read_text())) == 5
    assert found["broken"] == []
    assert found["errors"] == []
    assert found["scripts"] == 1  # only the probe: the report itself has none
    png = screenshot(path, tmp_path / "report.png")
    assert png.is_file() and png.stat().st_size > 10_000


def test_the_probe_sees_a_broken_picture(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body>'
                    '<img alt="bad" src="data:image/png;base64,AAAA"></body></html>')
    found = probe(page)
    assert found["broken"] == ["bad"] and found["errors"]


def test_tables_fit_at_1400_and_800_pixels(tmp_path):
    """The runs tables and a faithfulness-sized table (method + 6 measures) fit without scrolling sideways."""
    import json

    root = tmp_path / "runs"
    run = write_classify_run(root)
    write_reconstruct_run(root)
    rows = {m: {"pointing": 0.5, "energy_pointing": 0.25, "deletion_auc": 0.125, "insertion_auc": 0.75,
                "randomization_spearman": 0.0625, "seconds": 12.5}
            for m in ("gradcam", "gradcam_pp", "layercam", "saliency", "guided_backprop", "centre")}
    (run / "artifacts" / "faithfulness.json").write_text(json.dumps({
        "study": "faithfulness", "figures": [], "numbers": {"rows": rows}, "tables": [{
            "title": "Faithfulness on 64 test pictures of simple-cnn (run cnn); arrows say which way is better",
            "columns": ["method", "pointing ↑", "energy pointing ↑", "deletion ↓", "insertion ↑", "random. ρ ↓",
                        "seconds ↓"],
            "rows": [[m, *r.values()] for m, r in rows.items()]}]}))
    path = build_report([root], tmp_path / "report.html")
    for width in (1400, 800):
        found = probe(path, width=width)
        assert found["width"] == width
        assert found["tables_that_scroll"] == [], width
        assert found["scroll_width"] <= width, width
