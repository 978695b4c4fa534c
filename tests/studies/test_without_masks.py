"""Data without masks (issue 23, part 6): the epochs study, its curve and the report state only
what they measured (the mask-free measure, Grad-CAM coverage, named as such) and say nothing
about "the object"."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import netgaze as ng
from netgaze.studies import epochs_study
from netgaze.studies.across_layers import coverage
from tiny_runs import ROOT


@pytest.fixture(scope="module")
def digits_run() -> Path:
    from netgaze.lab.train import train_classifier

    out = ROOT / "digits-no-masks"
    if not (out / "run.json").is_file():
        train_classifier(data="digits", model="simple-cnn", epochs=2, out=str(out),
                         model_options={"channels": [8, 8, 8, 8]}, progress=False, seed=0)
    return out


def test_epochs_without_masks_state_the_coverage_only(digits_run, tmp_path):
    from netgaze.lab.runs import load_run
    from netgaze.studies.images import pick_examples

    run = load_run(digits_run)
    assert getattr(run.dataset("test"), "masks", None) is None
    epochs_study(run, n_images=2, n_eval=16, out=digits_run / "artifacts")
    manifest = json.loads((digits_run / "artifacts" / "epochs.json").read_text())
    rows = manifest["numbers"]["per_epoch"]
    assert manifest["numbers"]["mask_area"] is None and all("gradcam_energy_in_mask" not in r for r in rows)
    # the curve's measure: the mean share of each Grad-CAM map above half its maximum, by hand
    evaluation = pick_examples(run.dataset("test"), 16, seed=1)
    last = run.model_at(rows[-1]["epoch"])
    pred = last(evaluation.images).argmax(1)
    cam = ng.gradcam(last, evaluation.images, layer=-1, target=ng.Class(pred.tolist()))
    assert rows[-1]["gradcam_coverage"] == pytest.approx(float(coverage(cam).mean()), abs=1e-6)
    assert 0 < rows[-1]["gradcam_coverage"] <= 1
    curve = next(f for f in manifest["figures"] if f["file"] == "epochs_curve.png")
    assert "object" not in curve["caption"] and "above half its maximum" in curve["caption"]
    table = manifest["tables"][0]
    assert table["columns"][-1].startswith("Grad-CAM coverage") and not any("object" in c for c in table["columns"])


def test_report_without_masks_says_nothing_about_the_object(digits_run, tmp_path):
    from netgaze.report import build_report
    from netgaze.report.findings import findings
    from netgaze.report.runinfo import read_run

    if not (digits_run / "artifacts" / "epochs.json").is_file():
        epochs_study(digits_run, n_images=2, n_eval=16, out=digits_run / "artifacts")
    found = findings([read_run(digits_run)])
    attention = [f for f in found if f["title"] == "Attention during training"]
    assert len(attention) == 1
    assert "share of the map above half its maximum" in attention[0]["text"]
    assert "object" not in " ".join(f["text"] for f in found)
    html = build_report([digits_run], out=tmp_path / "report.html").read_text()
    epochs_section = html[html.index("Grad-CAM at different epochs"):]
    epochs_section = epochs_section[:epochs_section.index("</section>")] if "</section>" in epochs_section else epochs_section
    assert not re.search(r"\bobject\b", epochs_section), epochs_section[:2000]


def test_strategies_finding_without_masks():
    from netgaze.report.findings_dataset import strategy_shortcuts
    from netgaze.report.runinfo import RunInfo

    manifest = {"study": "strategies", "method": "gradcam", "layer": "features.3", "split": "test",
                "classes": {"0": {"name": "zero", "indices": [1, 2, 3], "n_clusters": 2,
                                  "summaries": [{"cluster": 0, "size": 2, "energy_in_object": None, "shortcut": False},
                                                {"cluster": 1, "size": 1, "energy_in_object": None, "shortcut": False}]}}}
    run = RunInfo(Path("run"), {"task": "classify"}, [], [], manifests=[manifest]) \
        if "manifests" in RunInfo.__dataclass_fields__ else None
    if run is None:
        pytest.skip("RunInfo has no manifests field")
    text = strategy_shortcuts([run])[0]["text"]
    assert "object" not in text and "no masks" in text
    manifest["classes"]["0"]["summaries"][0]["energy_in_object"] = 0.7
    assert "None of them has maps that lie outside the object." in strategy_shortcuts([run])[0]["text"]
