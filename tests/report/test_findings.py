"""Findings are composed from the numbers they state: flip the numbers and the verdict flips; each links its figure."""
from __future__ import annotations

import json
import re

from netgaze.report import build_report
from netgaze.report.findings import findings
from netgaze.report.runinfo import read_run
from netgaze.report.sections import STUDIES
from report_fixtures import _png


def _run(root, name, task="classify", manifests=(), history=None, config=None):
    run = root / name
    (run / "artifacts").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task": task, "data": "digits", "model": "simple-cnn", **(config or {})}))
    (run / "history.jsonl").write_text("\n".join(json.dumps(h) for h in (history or [{"epoch": 1}])) + "\n")
    for i, manifest in enumerate(manifests):
        for figure in manifest.get("figures", []):
            _png(run / "artifacts" / figure["file"], i)
        (run / "artifacts" / f"{manifest['study']}.json").write_text(json.dumps(manifest))
    return run


def _layers(first: float, last: float) -> dict:
    return {"study": "layers", "images": [1, 2, 3, 4, 5], "figures": [{"file": "layers.png"}],
            "numbers": {"per_layer": {"features.conv1": {"coverage": 0.6, "energy_in_mask": first},
                                      "features.conv4": {"coverage": 0.2, "energy_in_mask": last}}},
            "tables": [{"title": "Where each stage's Grad-CAM lies", "columns": ["layer", "energy"],
                        "rows": [["features.conv1", first], ["features.conv4", last]]}]}


def _text(root, name, manifests, **kwargs) -> str:
    return " ".join(f["text"] for f in findings([read_run(_run(root, name, manifests=manifests, **kwargs))]))


def test_the_layers_finding_follows_its_table(tmp_path):
    # issue 14: the fixed intro said early layers look "all over the picture" while the table
    # gave 0.83 of the energy inside the object at the first layer and 0.30 at the last
    falls = _text(tmp_path, "a", [_layers(0.83, 0.30)])
    assert "features.conv1 0.83, features.conv4 0.30: it falls from the first stage to the last" in falls
    assert "goes from 0.60 to 0.20 (narrower at the last stage)" in falls
    rises = _text(tmp_path, "b", [_layers(0.30, 0.83)])
    assert "it rises from the first stage to the last (0.30 to 0.83)" in rises
    flat = _text(tmp_path, "c", [_layers(0.50, 0.51)])
    assert "it does not change" in flat
    assert "all over the picture" not in STUDIES["layers"]["intro"]
    assert "grows with depth:" not in STUDIES["activations"]["intro"]


def test_sparsity_and_receptive_field_verdicts(tmp_path):
    def activations(shares):
        return {"study": "activations", "figures": [{"file": "act1.png"}, {"file": "act4.png"}],
                "numbers": {"per_layer": {f"relu{i + 1}": {"blank_share": s} for i, s in enumerate(shares)}}}
    assert "relu1 0%, relu2 10%, relu3 40%. Sparsity grows with every layer." in _text(
        tmp_path, "a", [activations([0.0, 0.1, 0.4])])
    assert "Sparsity grows from the first layer to the last, but not at every layer." in _text(
        tmp_path, "f", [activations([0.0, 0.0, 0.4])])
    assert "Sparsity grows from the first layer to the last, but not at every layer." in _text(
        tmp_path, "b", [activations([0.0, 0.3, 0.2])])
    assert "Sparsity does not grow with depth here." in _text(tmp_path, "c", [activations([0.3, 0.1, 0.0])])

    def channels(fields):
        return {"study": "layer_channels", "figures": [{"file": "layer_channels.png"}],
                "numbers": {"per_layer": {f"conv{i + 1}": {"receptive_field": f} for i, f in enumerate(fields)}}}
    assert "conv1 3 px, conv2 8 px, conv3 18 px. It grows with depth" in _text(tmp_path, "d", [channels([3, 8, 18])])
    assert "It does not grow with depth here." in _text(tmp_path, "e", [channels([8, 8, 8])])


def test_class_units_and_faithfulness(tmp_path):
    units = {"study": "featureviz", "figures": [{"file": "class_units.png"}],
             "numbers": {"classes": 10, "recognised": 7, "confidence": [0.5] * 10}}
    text = _text(tmp_path, "a", [units], history=[{"epoch": 1, "test_acc": 0.98}])
    assert "reads 7 of its 10 class visualisations as the class they were made for, with a mean softmax " \
           "confidence of 0.50; 3 look like another class to it." in text
    rows = {"gradcam": {"pointing": 0.9, "deletion_auc": 0.2, "randomization_spearman": 0.1},
            "guided_backprop": {"pointing": 0.6, "deletion_auc": 0.1, "randomization_spearman": 0.8}}
    text = _text(tmp_path, "b", [{"study": "faithfulness", "figures": [], "numbers": {"rows": rows}}])
    assert "pointing game: gradcam 0.90 (guided_backprop 0.60)" in text
    assert "deletion AUC: guided_backprop 0.10 (gradcam 0.20)" in text  # lower is better
    assert "guided_backprop stays above 0.5" in text and "the sanity check fails" in text
    rows["guided_backprop"]["randomization_spearman"] = 0.3
    text = _text(tmp_path, "c", [{"study": "faithfulness", "figures": [], "numbers": {"rows": rows}}])
    assert "every method falls to 0.5 or below" in text


def test_reconstruction_findings(tmp_path):
    principal = {"study": "principal_traversal", "figures": [{"file": "principal_traversal.png"},
                                                              {"file": "principal_grid.png"}],
                 "numbers": {"n": 360, "latent": 8, "active_units": 8, "directions": 4, "span_sd": 2.5,
                             "explained": [0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05],
                             "change_per_direction": [0.30, 0.2, 0.1, 0.1], "change_per_unit": [0.1] * 8}}
    denoise = {"study": "denoising", "figures": [{"file": "denoising.png"}],
               "numbers": {"n": 360, "mse_corrupted": 0.08, "mse_rebuilt": 0.02, "share_improved": 0.97,
                           "mse_rebuilt_from_clean": 0.015}}
    mixing = {"study": "style_mixing", "figures": [{"file": "style_mixing.png"}],
              "numbers": {"n": 8, "classes": 10, "judged_as_label": 0.5}}
    text = _text(tmp_path, "a", [principal, denoise, mixing], task="reconstruct")
    assert ("the first principal direction explains 30% of the variance, far more than one unit's share if all "
            "were equal (12%); the first two explain 50%, the first 4 70%") in text
    assert "along the first direction changes a pixel by 0.30 on average, along the most telling single unit by " \
           "0.10 — a traversal along principal directions shows more than one along units." in text
    assert "closer to the clean picture than its input: mean squared pixel error 0.0800 corrupted, 0.0200 rebuilt" in text
    assert "as the requested label 50% of the time: the code still carries part of the class." in text


def test_every_finding_links_to_its_figure(tmp_path):
    root = tmp_path / "runs"
    _run(root, "cnn", manifests=[_layers(0.83, 0.30)], config={"data_options": {"spurious": True}},
         history=[{"epoch": 1, "train_acc": 0.95, "test_acc": 0.3}])
    html = build_report([root], tmp_path / "report.html").read_text()
    items = re.findall(r"<li><strong>(.*?)</strong>(.*?)</li>", html, re.S)
    assert len(items) == 2
    for title, body in items:
        links = re.findall(r'<a href="#([^"]+)">([^<]+)</a>', body)
        assert links, title
        for anchor, label in links:
            assert f'id="{anchor}"' in html  # every link lands on a figure or table of the page
            if label.startswith("Figure "):
                assert re.search(rf'<figure id="{anchor}">\s*<img [^>]*>\s*<figcaption>{label}\.', html)
    assert "cnn loses more than 0.15 of accuracy on test pictures, so it learned the background" in html


def test_area_findings_follow_the_mass_inside_the_box(tmp_path):
    def area(study, inside, share):
        return {"study": study, "figures": [{"file": f"{study}.png"}],
                "numbers": {"n": 32, "guided_mass_inside_box": inside, "box_area_share": share, "margin": 4}}
    text = _text(tmp_path, "a", [area("area_segments", 0.8, 0.2)], task="segment")
    assert "puts 80% of its mass inside the object's box, which covers 20% of the picture" in text
    assert "explained mostly by the pixels of the object itself" in text
    assert "no more than in a map spread evenly" in _text(tmp_path, "b", [area("area_segments", 0.2, 0.2)],
                                                          task="segment")
    assert "no more than a map spread evenly over the picture" in _text(tmp_path, "c", [area("area", 0.06, 0.06)],
                                                                        task="reconstruct")
