"""`netgaze study strategies|dissect|top-examples RUN` write manifests the report shows."""
import json

import pytest

from netgaze.cli import main


@pytest.fixture(scope="module")
def marker_run(tmp_path_factory):
    from netgaze.lab.train import train_classifier

    out = tmp_path_factory.mktemp("runs") / "marker"
    train_classifier(data="shapes", epochs=1, out=str(out), progress=False, batch_size=20,
                     data_options={"n": 40, "size": 32, "marker_classes": [2], "marker_rate": 0.8},
                     model_options={"channels": [4, 4, 4, 4]})
    return out


def test_three_studies_land_in_the_report(marker_run, capsys):
    assert main(["study", "strategies", str(marker_run), "--classes", "triangle", "--clusters", "2"]) == 0
    assert main(["study", "dissect", str(marker_run), "--layers", "features.conv1", "features.conv4"]) == 0
    assert main(["study", "top-examples", str(marker_run), "--k", "3", "--steps", "2"]) == 0
    artifacts = marker_run / "artifacts"
    strategies = json.loads((artifacts / "strategies" / "strategies.json").read_text())
    assert strategies["split"] == "test" and strategies["run"] == "marker"
    entry = strategies["classes"]["2"]
    assert entry["n_clusters"] == 2 and len(entry["clusters"]) == 8  # 40 test pictures, 8 triangles
    assert sum(s["size"] for s in entry["summaries"]) == 8 and "marker_f1" in entry
    dissection = json.loads((artifacts / "dissection" / "dissection.json").read_text())
    assert [l["name"] for l in dissection["layers"]] == ["features.conv1", "features.conv4"]
    assert dissection["concepts"][-1] == "marker"
    tops = json.loads((artifacts / "top_examples" / "top_examples.json").read_text())
    assert tops["layer"] == "features" and len(tops["indices"][0]) == 3
    from netgaze.report import build_report

    html = build_report([marker_run]).read_text()
    for section in ("classify-strategies", "classify-dissection", "classify-top_examples"):
        assert f'id="{section}"' in html
    assert "Strategies of class triangle" in html and "Detector units per layer" in html


def test_an_unknown_class_is_one_line_and_exit_2(marker_run, capsys):
    assert main(["study", "strategies", str(marker_run), "--classes", "zebra"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown class 'zebra'" in err
