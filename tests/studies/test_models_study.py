"""S2: several runs on the same pictures; predictions, confidences and energies recomputed."""
from __future__ import annotations

import json

import pytest
import torch

import netgaze as ng
from netgaze.metrics import energy_inside
from netgaze.studies import models_study
from tiny_runs import tiny_run


def test_models_study_numbers_match_each_model(tmp_path, snapshot):
    from netgaze.lab.runs import load_run

    runs = [load_run(tiny_run()), load_run(tiny_run("simple-cnn-bn", epochs=1))]
    snaps = [snapshot(r.model) for r in runs]
    result = models_study(runs, n_images=3, n_eval=20, names=["plain", "bn"], out=tmp_path)
    manifest = json.loads((tmp_path / "models.json").read_text())
    assert list(manifest["numbers"]["per_model"]) == ["plain", "bn"]
    assert manifest["models"]["bn"]["model"] == "simple-cnn-bn" and manifest["models"]["bn"]["epoch"] == 1
    assert (tmp_path / "models.png").is_file()
    test = runs[0].dataset("test")
    figure_x = torch.stack([test[i][0] for i in manifest["images"]])
    from netgaze.studies.images import pick_examples
    evaluation = pick_examples(test, 20, seed=1)
    for name, run in zip(["plain", "bn"], runs):
        probs = run.model(figure_x).softmax(1)
        assert result.maps[name]["pred"].tolist() == probs.argmax(1).tolist()
        assert torch.allclose(result.maps[name]["conf"], probs.max(1).values, atol=1e-6)
        pred = run.model(evaluation.images).argmax(1)
        numbers = manifest["numbers"]["per_model"][name]
        assert numbers["accuracy"] == pytest.approx(float((pred == evaluation.labels).float().mean()))
        cam = ng.gradcam(run.model, evaluation.images, layer=-1, target=ng.Class(pred.tolist()))  # the last stage
        assert numbers["gradcam_energy_in_mask"] == pytest.approx(float(energy_inside(cam, evaluation.masks).mean()),
                                                                  abs=1e-5)
        assert numbers["mask_area"] == pytest.approx(float(evaluation.masks.float().mean()), abs=1e-6)
    for snap in snaps:
        snap.assert_unchanged()
