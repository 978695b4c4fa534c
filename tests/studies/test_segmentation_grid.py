"""The encoder x decoder table: one row per run, numbers read back from the runs' histories."""
import json
from pathlib import Path

import pytest

from netgaze.lab.runs import load_run
from netgaze.studies.segmentation_grid import COLUMNS, RANDOM_INIT, encoder_init, markdown_table, segmentation_grid


def test_grid_table_matches_the_runs(tmp_path, capsys):
    result = segmentation_grid(["simple"], ["fcn32", "fcn8"], epochs=1, out=tmp_path,
                               data_options={"n": 24, "size": 24}, batch_size=12)
    assert [(r["Encoder"], r["Decoder"], r["Epochs"]) for r in result.rows] == [("simple", "fcn32", 1),
                                                                               ("simple", "fcn8", 1)]
    for row in result.rows:
        last = load_run(row["run"]).history[-1]
        assert row["Mean Acc"] == pytest.approx(100 * last["mean_acc"])
        assert row["total IoU"] == pytest.approx(100 * last["mean_iou"])
    text = result.markdown.read_text()
    assert text.splitlines()[0] == "| " + " | ".join(COLUMNS) + " |"
    assert f"| simple | fcn8 | {result.rows[1]['Mean Acc']:.1f} | {result.rows[1]['total IoU']:.1f} | 1 |" in text
    manifest = json.loads(result.json.read_text())
    assert manifest["tables"][0]["rows"][0][:2] == ["simple", "fcn32"]
    assert (tmp_path / "fcn32-simple" / "artifacts" / "segmentation_grid.json").is_file()
    # a second call resumes the finished runs instead of training them again
    again = segmentation_grid(["simple"], ["fcn32"], epochs=1, out=tmp_path, data_options={"n": 24, "size": 24},
                              batch_size=12)
    assert again.rows[0]["total IoU"] == result.rows[0]["total IoU"]


def test_markdown_table_by_hand():
    rows = [{"Encoder": "vgg16", "Decoder": "fcn8", "Mean Acc": 85.94, "total IoU": 76.66, "Epochs": 20}]
    assert markdown_table(rows, ["Encoder", "Decoder", "Mean Acc", "total IoU", "Epochs"]) == (
        "| Encoder | Decoder | Mean Acc | total IoU | Epochs |\n| --- | --- | --- | --- | --- |\n"
        "| vgg16 | fcn8 | 85.9 | 76.7 | 20 |\n")


def test_epochs_per_encoder_and_init_column(tmp_path):
    result = segmentation_grid(["simple"], ["fcn8"], epochs={"simple": 2}, lr={"simple": 1e-3}, out=tmp_path,
                               data_options={"n": 12, "size": 24}, batch_size=12)
    row = result.rows[0]
    assert row["Epochs"] == 2 and row["Init"] == "random init"
    assert [r["epoch"] for r in load_run(row["run"]).history] == [1, 2]
    assert load_run(row["run"]).config["lr"] == 1e-3
    manifest = json.loads(result.json.read_text())
    assert manifest["epochs"] == {"simple": 2}
    assert "epochs per row" in result.markdown.read_text()
    with pytest.raises(ValueError, match="vgg16"):
        segmentation_grid(["simple", "vgg16"], ["fcn8"], epochs={"simple": 1}, out=tmp_path / "other")


def test_encoder_init_says_where_weights_came_from(tmp_path, monkeypatch):
    import netgaze.studies.segmentation_grid as grid
    hub = tmp_path / "hub" / "checkpoints"
    monkeypatch.setattr(grid, "weights_path",
                        lambda encoder, weights=None: Path(weights) if weights else hub / f"{encoder}-cached.pth")
    assert encoder_init("vgg16", None) == RANDOM_INIT == "random init (no ImageNet weights on this machine)"
    assert encoder_init("simple", None) == "random init"
    weights = tmp_path / "alexnet-owt-7be5be79.pth"
    weights.write_bytes(b"x")
    assert encoder_init("alexnet", str(weights)) == "ImageNet (alexnet-owt-7be5be79.pth)"
    hub.mkdir(parents=True)
    (hub / "vgg16-cached.pth").write_bytes(b"x")
    assert encoder_init("vgg16", None) == "ImageNet (vgg16-cached.pth)"
