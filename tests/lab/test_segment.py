"""Segmentation training: a 1-epoch run on a tiny shapes set through the CLI, resume, pictures."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from netgaze.cli import main
from netgaze.lab.runs import load_run
from netgaze.lab.segment import segmentation_dataset, train_segmentation
from netgaze.lab.segment_pictures import colour_masks
from netgaze.metrics.segmentation import ConfusionMeter

TINY = ["--data", "shapes", "--n", "48", "--size", "32", "--batch-size", "16", "--quiet"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "fcn8"
    assert main(["train", "segment", *TINY, "--encoder", "simple", "--decoder", "fcn8", "--epochs", "1",
                 "--out", str(out)]) == 0
    return out


def test_one_epoch_run_writes_history_scores_and_pictures(tiny_run):
    run = load_run(tiny_run)
    assert run.config["task"] == "segment" and run.config["model"] == "fcn8"
    assert run.config["model_args"] == {"encoder": "simple", "num_classes": 6}
    assert run.classes[0] == "background" and len(run.classes) == 6
    assert [e for e, _ in run.checkpoints] == [0, 1]
    (record,) = run.history
    for key in ["epoch", "train_loss", "test_loss", "pixel_acc", "mean_acc", "mean_iou"]:
        assert key in record
    # the history's scores are those of one confusion matrix over the whole test split
    test = segmentation_dataset(run, "test")
    meter = ConfusionMeter(6)
    images = torch.stack([test[i][0] for i in range(len(test))])
    masks = torch.stack([test[i][1] for i in range(len(test))])
    with torch.no_grad():
        meter.update(run.model(images), masks)
    scores = meter.scores()
    assert record["pixel_acc"] == pytest.approx(scores.pixel_acc, abs=1e-6)
    assert record["mean_iou"] == pytest.approx(scores.mean_iou, abs=1e-6)
    assert record["mean_acc"] == pytest.approx(scores.mean_acc, abs=1e-6)
    assert 0 < record["test_loss"] < 3 and record["pixel_acc"] > 0.5      # background at least
    grid = np.asarray(Image.open(tiny_run / "artifacts" / "predictions.png"))
    assert grid.shape[0] > 8 * 32 and grid.std() > 10
    assert (tiny_run / "curves.png").is_file()


def test_resume_continues_and_refuses_an_existing_run(tiny_run, tmp_path, capsys):
    out = tmp_path / "copy"
    import shutil
    shutil.copytree(tiny_run, out)
    assert main(["train", "segment", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    run = train_segmentation("shapes", "simple", "fcn8", epochs=2, batch_size=16, out=str(out), resume=True,
                             data_options={"n": 48, "size": 32}, progress=False, examples=0)
    assert [r["epoch"] for r in run.history] == [1, 2]
    assert run.history[0] == json.loads((tiny_run / "history.jsonl").read_text().splitlines()[0])


def test_cli_errors_are_one_line(capsys, tmp_path):
    weights = tmp_path / "x.pth"
    weights.write_bytes(b"")
    assert main(["train", "segment", "--encoder", "simple", "--weights", str(weights), "--out", "unused"]) == 2
    _one_line(capsys.readouterr().err, "apply to the vgg16 and alexnet")
    assert main(["train", "segment", "--encoder", "simple", "--weights", "x.pth", "--out", "unused"]) == 2
    _one_line(capsys.readouterr().err, "argument --weights: no such file: x.pth")
    assert main(["train", "segment", "--data", "/no/such/folder", "--out", "unused"]) == 2
    _one_line(capsys.readouterr().err, "use 'shapes' or a VOC-style folder")


def _one_line(err: str, message: str) -> None:
    """Exactly one line on stderr, the message in it, no traceback."""
    assert err.count("\n") == 1 and err.endswith("\n") and message in err, err
    assert "Traceback" not in err


def test_colour_masks_paints_labels_and_keeps_background():
    images = torch.zeros(1, 3, 2, 2)
    masks = torch.tensor([[[0, 1], [15, 255]]])
    tiles = colour_masks(images, masks, alpha=1.0)
    assert tiles[0, 0, 0].tolist() == [0, 0, 0]             # background: the picture
    assert tiles[0, 0, 1].tolist() == [128, 0, 0]           # VOC class 1 (aeroplane)
    assert tiles[0, 1, 0].tolist() == [192, 128, 128]       # VOC class 15 (person)
    assert tiles[0, 1, 1].tolist() == [224, 224, 192]       # ignored
