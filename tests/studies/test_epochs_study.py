"""S3: one run's checkpoints: grid, GIF with one frame per epoch, per-epoch numbers."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import netgaze as ng
from netgaze.metrics import energy_inside
from netgaze.studies import epochs_study
from netgaze.studies.epochs import pick_epochs
from tiny_runs import tiny_run


def test_pick_epochs_keeps_ends():
    assert pick_epochs([3, 1, 2]) == [1, 2, 3]
    picked = pick_epochs(range(1, 31), most=5)
    assert picked[0] == 1 and picked[-1] == 30 and len(picked) == 5


def test_epochs_study_files_and_numbers(tmp_path):
    from netgaze.lab.runs import load_run

    run = load_run(tiny_run())
    epochs = [e for e, _ in run.checkpoints]
    result = epochs_study(run, n_images=2, n_eval=16, out=tmp_path)
    manifest = json.loads((tmp_path / "epochs.json").read_text())
    rows = manifest["numbers"]["per_epoch"]
    assert [r["epoch"] for r in rows] == epochs
    history = {h["epoch"]: h["test_acc"] for h in run.history}
    for row in rows:
        assert row["test_acc"] == (pytest.approx(history[row["epoch"]], abs=1e-5) if row["epoch"] in history else None)
    with Image.open(tmp_path / "epochs.gif") as gif:
        assert gif.n_frames == len(epochs)
    assert (tmp_path / "epochs.png").is_file() and (tmp_path / "epochs_curve.png").is_file()
    # the per-epoch energy is the mean energy of that checkpoint's Grad-CAM of its predicted class
    from netgaze.studies.images import pick_examples
    evaluation = pick_examples(run.dataset("test"), 16, seed=1)
    first = run.model_at(epochs[0])
    pred = first(evaluation.images).argmax(1)
    cam = ng.gradcam(first, evaluation.images, layer=-1, target=ng.Class(pred.tolist()))
    assert rows[0]["gradcam_energy_in_mask"] == pytest.approx(float(energy_inside(cam, evaluation.masks).mean()),
                                                              abs=1e-5)
    assert set(result.maps["gradcam"]) == set(epochs)


def test_epochs_study_refuses_a_missing_epoch(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint"):
        epochs_study(tiny_run(), epochs=[99], out=tmp_path)
