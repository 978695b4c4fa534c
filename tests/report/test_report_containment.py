"""A hostile run folder cannot make the report read files outside it (issue 14, item 1)."""
import base64
import json

import pytest

from netgaze.report import build_report, read_run
from report_fixtures import _png, write_classify_run

SECRET = "NETGAZE_TEST_SECRET=4f1c9a"


def _pictures_in(html: str) -> list[bytes]:
    return [base64.b64decode(chunk.split('"')[0]) for chunk in html.split("base64,")[1:]]


@pytest.fixture()
def hostile(tmp_path):
    """A run whose manifest names an absolute path, a ../ path, a link out and /proc/self/environ."""
    run = write_classify_run(tmp_path / "runs")
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET.encode())
    (run / "artifacts" / "link.png").symlink_to(secret)
    (run / "artifacts" / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    figures = [{"file": str(secret)}, {"file": "../../../secret.png"}, {"file": "link.png"},
               {"file": "linkdir/secret.png"}, {"file": "/proc/self/environ"}, {"file": "models.png"}]
    (run / "artifacts" / "evil.json").write_text(json.dumps({"study": "models", "figures": figures}))
    return run, secret


def test_paths_out_of_the_run_are_refused_with_a_note(hostile, tmp_path, monkeypatch):
    run, secret = hostile
    monkeypatch.setenv("NETGAZE_TEST_SECRET", "4f1c9a")
    info = read_run(run)
    shown = {str(f["_path"]) for m in info.manifests for f in m["figures"]}
    shown |= {str(p) for p in info.loose_pictures}
    assert shown == {str((run / "artifacts" / "models.png").resolve()),
                     str((run / "artifacts" / "extra" / "loose.png").resolve())}
    refused = [p for p in info.problems if "not a file inside the run folder" in p]
    # five figure entries of evil.json, plus the loose link.png found by the folder walk
    assert sum("evil.json" in p for p in refused) == 5
    assert any(p.startswith("artifacts/link.png") for p in refused)
    out = build_report([run], tmp_path / "report.html")
    html = out.read_text()
    assert "4f1c9a" not in html and SECRET not in html
    for data in _pictures_in(html):
        assert b"4f1c9a" not in data and b"PATH=" not in data
    assert "refused, not read" in html        # the reader is told, entry by entry
    for name in (str(secret), "../../../secret.png", "link.png", "linkdir/secret.png", "/proc/self/environ"):
        assert f"evil.json names &#39;{name}&#39;, which is not a file inside the run folder; refused" in html, name
    # the page's pictures are the run's own files (models.png for models.json and for evil.json,
    # the loose extra/loose.png) and the training curves the report drew itself: nothing else
    own = [(run / "artifacts" / "models.png").read_bytes(), (run / "artifacts" / "extra" / "loose.png").read_bytes()]
    pictures = _pictures_in(html)
    assert [p for p in pictures if p in own] == [own[0], own[0], own[1]]
    assert len(pictures) == 4 and all(p.startswith(b"\x89PNG") for p in pictures)


def test_run_json_and_curves_linked_out_are_refused(tmp_path):
    run = write_classify_run(tmp_path / "runs")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text(json.dumps({"task": "classify", "model": "LEAKED-MODEL"}))
    _png(outside / "curves.png", 5)
    (run / "run.json").unlink()
    (run / "run.json").symlink_to(outside / "config.json")
    (run / "curves.png").symlink_to(outside / "curves.png")
    info = read_run(run)
    assert info.config == {} and info.curves_png is None
    assert any(p.startswith("run.json is not a file inside") for p in info.problems)
    assert any(p.startswith("curves.png is not a file inside") for p in info.problems)


def test_a_run_reached_through_a_link_still_shows_its_own_pictures(tmp_path):
    run = write_classify_run(tmp_path / "runs")
    link = tmp_path / "alias"
    link.symlink_to(run, target_is_directory=True)
    info = read_run(link)
    assert [p for p in info.problems if "inside the run folder" in p] == []
    assert len([f for m in info.manifests for f in m["figures"]]) == 1 and len(info.loose_pictures) == 1


def test_a_folder_of_runs_does_not_follow_a_link_to_a_run_elsewhere(tmp_path):
    from netgaze.report import find_runs

    shared = tmp_path / "shared"
    mine = write_classify_run(shared, "mine")
    private = write_classify_run(tmp_path / "private", "secret-run")
    (shared / "evil").symlink_to(private, target_is_directory=True)
    with pytest.warns(UserWarning, match="outside"):
        assert find_runs([shared]) == [mine]
    assert find_runs([shared / "evil"]) == [shared / "evil"]   # named on purpose: the user's choice


@pytest.mark.parametrize("name, run_json, history, note", [
    ("deep", "[" * 100_000 + "]" * 100_000, None, "JSON nested too deep"),
    ("bigint", None, '{"epoch": ' + "9" * 5000 + ', "loss": 1}\n', "history.jsonl line 1 is not JSON"),
    ("options", {"data_options": [1]}, None, "data_options must be a JSON object"),
    ("size", {"data_options": {"size": "big"}}, None, "data_options.size must be a whole number"),
    ("epochs", {"epochs": "x"}, None, "epochs must be a whole number"),
])
def test_hostile_run_json_and_history_become_a_note_not_a_traceback(tmp_path, name, run_json, history, note):
    run = write_classify_run(tmp_path / "runs")
    if isinstance(run_json, dict):
        run_json = json.dumps({**json.loads((run / "run.json").read_text()), **run_json})
    if run_json is not None:
        (run / "run.json").write_text(run_json)
    if history is not None:
        (run / "history.jsonl").write_text(history)
    info = read_run(run)
    assert any(note in p for p in info.problems), info.problems
    html = build_report([run], tmp_path / "report.html").read_text()
    assert note in html


@pytest.mark.parametrize("manifest, note", [
    ({"study": 5, "figures": 3}, "study must be a string"),
    ({"study": "models", "figures": 3}, "figures must be a list"),
    ({"study": "models", "figures": [5, {"file": []}]}, "each figure is a file name or an object with a file name"),
    ({"study": "models", "numbers": 3}, "numbers must be a JSON object"),
])
def test_a_manifest_with_fields_of_the_wrong_type_is_a_note(tmp_path, manifest, note):
    run = write_classify_run(tmp_path / "runs")
    (run / "artifacts" / "evil.json").write_text(json.dumps(manifest))
    info = read_run(run)
    assert any(p.startswith("artifacts/evil.json") and note in p for p in info.problems), info.problems
    assert note in build_report([run], tmp_path / "report.html").read_text()
