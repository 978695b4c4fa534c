"""`netgaze study concepts RUN` on a tiny marker run: the manifest's numbers, the report's section, escaping."""
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


def test_study_concepts_writes_the_atlas_and_the_report_shows_it(marker_run):
    assert main(["study", "concepts", str(marker_run), "--k", "3", "--steps", "2", "--quiet"]) == 0
    folder = marker_run / "artifacts" / "concepts"
    manifest = json.loads((folder / "concepts.json").read_text())
    assert manifest["study"] == "concepts" and manifest["layer"] == "features" and manifest["split"] == "test"
    assert all((folder / f["file"]).is_file() for f in manifest["figures"])
    atlas = manifest["atlas"]
    assert atlas["per_picture"] == 4 and [e["name"] for e in atlas["classes"].values()] == \
        ["circle", "square", "triangle", "star", "cross"]
    for j, entry in enumerate(atlas["classes"].values()):
        assert entry["pictures"] == 8                                       # 40 test pictures, 5 classes
        shares = atlas["mean_share"][j]
        assert sum(shares) == pytest.approx(1, abs=1e-4)                   # the layer's shares add up to 1
        assert [r["channel"] for r in entry["channels"]] == sorted(range(4), key=lambda c: (-shares[c], c))
    refs = manifest["by_relevance"]["2"]
    marker = manifest["marker"]["classes"]["2"]
    from netgaze.lab.runs import load_run

    test = load_run(marker_run).dataset("test")
    for channel, numbers in marker["channels"].items():
        assert numbers["carry"] == sum(bool(test.markers[i]) for i in refs["indices"][int(channel)])
    assert manifest["marker"]["base_rate"] == pytest.approx(float(test.markers.float().mean()))

    manifest["atlas"]["classes"]["2"]["name"] = "<b>tri</b>"
    (folder / "concepts.json").write_text(json.dumps(manifest))
    from netgaze.report import build_report

    html = build_report([marker_run]).read_text()
    assert 'id="classify-concepts"' in html and "Concepts: what each class relies on" in html
    assert "Concepts of marker" in html and "&lt;b&gt;tri&lt;/b&gt; (8 pictures): channels" in html
    assert "<b>tri</b>" not in html
    first = atlas["classes"]["0"]["channels"][0]
    assert f"circle (8 pictures): channels {first['channel']} ({first['mean_share']:.0%}" in html


def test_an_unknown_class_is_one_line_and_exit_2(marker_run, capsys):
    assert main(["study", "concepts", str(marker_run), "--classes", "zebra", "--steps", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown class 'zebra'" in err
