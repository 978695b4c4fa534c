"""Outputs never replace a run's own files nor each other (issue 14 item 4)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from netgaze.cli import main
from netgaze.demo import DemoSettings, set_aside_other_settings, settings_json
from netgaze.report.build import ReportTargetError, build_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from netgaze.lab.train import train_classifier

    out = tmp_path_factory.mktemp("outputs") / "run"
    train_classifier(data="shapes", epochs=1, out=str(out), data_options={"n": 64, "size": 32},
                     model_options={"channels": [4, 8, 8, 8]}, progress=False, seed=0)
    return out


def test_report_out_never_replaces_a_runs_files_or_a_users_file(run_dir, tmp_path, capsys):
    own = {name: (run_dir / name).read_bytes() for name in ("run.json", "history.jsonl", "log.txt")}
    for name in ("run.json", "history.jsonl", "log.txt", "checkpoints/epoch-0001.json", "checkpoints/new.html"):
        assert main(["report", str(run_dir), "--out", str(run_dir / name)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "own files" in err, err
    assert {name: (run_dir / name).read_bytes() for name in own} == own
    notes = tmp_path / "notes.html"
    notes.write_text("<p>my notes</p>")
    with pytest.raises(ReportTargetError, match="not a netgaze report"):
        build_report([run_dir], notes)
    assert notes.read_text() == "<p>my notes</p>"
    # an earlier report is replaced (a rerun), a new name is written
    first = build_report([run_dir], tmp_path / "r.html")
    assert build_report([run_dir], first) == first and build_report([run_dir]) == run_dir / "report.html"
    assert build_report([run_dir]) == run_dir / "report.html"


def test_explain_pictures_with_the_same_stem_get_distinct_outputs(run_dir, tmp_path, capsys):
    pictures = []
    for folder, colour in (("a", 30), ("b", 220)):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "cat.png"
        Image.fromarray(np.full((32, 32, 3), colour, np.uint8)).save(path)
        pictures.append(path)
    jpeg = tmp_path / "a" / "cat.jpg"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(jpeg)
    out = tmp_path / "out"
    assert main(["explain", "--run", str(run_dir), "--images", *map(str, pictures), str(jpeg), str(pictures[0]),
                 "--out", str(out)]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a_cat.png-2-gradcam.png", "a_cat.png-gradcam.png", "b_cat.png-gradcam.png",
                       "cat.jpg-gradcam.png"]
    # each output shows its own picture: the middle of the left tile is the input's grey
    grey = [int(_middle_of_left_tile(out / name)) for name in
            ("a_cat.png-gradcam.png", "b_cat.png-gradcam.png", "cat.jpg-gradcam.png")]
    assert grey[0] < 60 < 100 < grey[2] < 160 < grey[1]


def test_demo_sets_aside_runs_of_other_settings_and_says_so(tmp_path):
    out = tmp_path / "demo"
    (out / "cnn").mkdir(parents=True)
    (out / "cnn" / "run.json").write_text("{}")
    (out / "mine").mkdir()
    (out / "demo.json").write_text(json.dumps({"settings": settings_json(DemoSettings.quick())}))
    assert set_aside_other_settings(out, DemoSettings.quick()) == []      # same settings: resumed
    lines = set_aside_other_settings(out, DemoSettings())
    assert len(lines) == 1 and "--quick" in lines[0] and "moved cnn" in lines[0]
    (aside,) = list(out.glob("replaced-*"))
    assert (aside / "cnn" / "run.json").is_file() and not (out / "cnn").exists()
    assert (out / "mine").is_dir()                                       # not a demo run: left alone
    (out / "vae").mkdir()
    (out / "demo.json").unlink()
    assert "no demo.json" in set_aside_other_settings(out, DemoSettings())[0]


def _middle_of_left_tile(path):
    image = np.asarray(Image.open(path))
    return image[image.shape[0] // 2, image.shape[1] // 4, 0]
