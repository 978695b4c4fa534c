"""The explorer links strategy clusters (SpRAy) to their pictures: ``GET /api/strategies``."""
from __future__ import annotations

import json
import shutil

import pytest
from starlette.testclient import TestClient

from netgaze.serve import Sources, create_app


@pytest.fixture(scope="module")
def spray(serve_runs, tmp_path_factory):
    """A copy of the tiny classifier run with a real strategies artifact, the run without one,
    and a copy whose artifact is a link out of the run folder."""
    from netgaze.analyses.run_studies import strategies_study

    root = tmp_path_factory.mktemp("spray")
    spray = root / "spray"
    shutil.copytree(serve_runs["cnn"], spray, ignore=shutil.ignore_patterns("artifacts"))
    artifact = strategies_study(spray, split="test", n_clusters=2, progress=False)
    linked = root / "linked"
    shutil.copytree(serve_runs["cnn"], linked, ignore=shutil.ignore_patterns("artifacts"))
    (linked / "artifacts" / "strategies").mkdir(parents=True)
    (linked / "artifacts" / "strategies" / "strategies.json").symlink_to(artifact)
    return {"spray": spray, "plain": serve_runs["cnn"], "linked": linked, "artifact": artifact}


@pytest.fixture(scope="module")
def client(spray):
    sources = Sources.from_arguments([str(spray[k]) for k in ("spray", "plain", "linked")])
    with TestClient(create_app(sources), raise_server_exceptions=False) as c:
        yield c


def test_run_listing_says_which_runs_have_strategies(client):
    runs = {r["id"]: r["has_strategies"] for r in client.get("/api/runs").json()["runs"]}
    assert runs == {"spray": True, "cnn": False, "linked": False}      # a link out of the run is refused


def test_clusters_and_their_pictures_equal_the_artifact(client, spray):
    saved = json.loads(spray["artifact"].read_text())
    answer = client.get("/api/strategies", params={"run": "spray"})
    assert answer.status_code == 200
    data = answer.json()
    assert data["run"] == "spray" and data["split"] == saved["split"] == "test"
    assert [c["class"] for c in data["classes"]] == sorted(int(k) for k in saved["classes"])
    for entry in data["classes"]:
        stored = saved["classes"][str(entry["class"])]
        assert entry["name"] == stored["name"]
        assert [(c["cluster"], c["size"], c["shortcut"]) for c in entry["clusters"]] == \
            [(s["cluster"], s["size"], s["shortcut"]) for s in stored["summaries"]]
        # every picture of the class appears once, under the cluster the artifact gives it
        pairs = sorted((i, c["cluster"]) for c in entry["clusters"] for i in c["indices"])
        assert pairs == sorted(zip(stored["indices"], stored["clusters"]))
        for cluster in entry["clusters"]:
            assert len(cluster["indices"]) == cluster["size"]
    # the indices name pictures the picture route serves
    first = data["classes"][0]["clusters"][0]["indices"][0]
    assert client.get(f"/api/runs/spray/pictures/{data['split']}/{first}.png").status_code == 200


@pytest.mark.parametrize("query, status, words", [
    ({"run": "nope"}, 404, "unknown run"),
    ({}, 404, "unknown run"),
    ({"run": "cnn"}, 404, "no strategies artifact"),
    ({"run": "linked"}, 404, "no strategies artifact"),
    ({"run": "spray", "path": "/etc/passwd"}, 400, "unknown parameter"),
])
def test_errors_are_one_line_json(client, query, status, words):
    answer = client.get("/api/strategies", params=query)
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"error"} and words in body["error"] and "\n" not in body["error"]
