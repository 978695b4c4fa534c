"""The encoder x decoder table: one row per run, numbers read back from the runs' histories."""
import json

import pytest

from netgaze.lab.runs import load_run
from netgaze.studies.segmentation_grid import COLUMNS, markdown_table, segmentation_grid


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
