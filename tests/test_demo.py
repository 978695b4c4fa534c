"""The demo's bookkeeping: a step that fails leaves a visible note."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "report"))

from netgaze.demo import Demo, DemoSettings  # noqa: E402
from netgaze.report import build_report  # noqa: E402
from report_fixtures import write_classify_run  # noqa: E402


def test_missing_or_failing_steps_become_notes_in_the_report(tmp_path):
    run = write_classify_run(tmp_path)
    demo = Demo(tmp_path, DemoSettings.quick(), progress=False)

    def missing():  # an import error is a failure like any other, not "code that has not landed"
        import netgaze.not_a_module  # noqa: F401

    def failing():
        raise RuntimeError("boom\nsecond line")

    assert demo.step("segments", missing, run, "area_segments") is None
    assert demo.step("layers", failing, run, "layers") is None
    assert demo.step("fine", lambda: 42, run, "layers") == 42
    assert set(demo.skipped) == {"segments", "layers"} and "fine" in demo.timings
    note = json.loads((run / "artifacts" / "skipped-segments.json").read_text())
    assert note["study"] == "area_segments" and "landed" not in note["skipped"]
    assert note["skipped"] == "it failed: ModuleNotFoundError: No module named 'netgaze.not_a_module'"
    html = build_report([run], tmp_path / "report.html").read_text()
    assert "not run — it failed: ModuleNotFoundError: No module named &#39;netgaze.not_a_module&#39;" in html
    assert "not run — it failed: RuntimeError: boom" in html and "second line" not in html
    assert ">Area Grad-CAM of segments<" in html  # the note keeps its section in the outline


def test_quick_settings_are_small():
    quick, full = DemoSettings.quick(), DemoSettings()
    assert full.n_train is None  # the shapes default: 2,000 training pictures
    assert quick.n_train < 2000 and quick.classifier_epochs < full.classifier_epochs


def test_settings_travel_to_the_worker_processes_as_json():
    import dataclasses

    from netgaze.demo.settings import _settings_from_json

    settings = DemoSettings(morph_classes=(3, 8), channels=(4, 4, 8, 8), vaegan_epochs=3)
    back = _settings_from_json(json.dumps(dataclasses.asdict(settings)))
    assert back == settings and isinstance(back.channels, tuple) and back.morph_classes == (3, 8)


def test_a_failed_training_leaves_its_note_in_another_run(tmp_path):
    from netgaze.demo.runner import _place_notes

    run = write_classify_run(tmp_path)
    demo = Demo(tmp_path, DemoSettings.quick(), progress=False)

    def failing():
        raise RuntimeError("out of memory")

    assert demo.step("train vae", failing, None, "latent") is None  # no run folder of its own to hold the note
    assert set(demo.unplaced) == {"train vae"}
    _place_notes(tmp_path, demo.unplaced)
    html = build_report([run], tmp_path / "report.html").read_text()
    assert "not run — it failed: RuntimeError: out of memory" in html
    assert "CPU" not in demo.timings and demo.cpu["train vae"] >= 0
