"""The explorer's concepts: ``POST /api/concepts`` equals ``ng.concepts`` on the same picture, lists the
run's reference pictures, checks every field; ``GET /api/concepts/atlas`` equals the artifact."""
from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest
import torch
from starlette.testclient import TestClient

from serve_fixtures import ATOL, LOCAL_URL

from netgaze.serve import Settings, Sources, create_app


@pytest.fixture(scope="module")
def runs(serve_runs, concepts_run, tmp_path_factory):
    """The run with its concept atlas, the plain run, a copy whose artifact is a link out of the
    run folder, and a copy whose artifact is damaged."""
    root = tmp_path_factory.mktemp("concept-links")
    artifact = concepts_run / "artifacts" / "concepts" / "concepts.json"
    linked = root / "linked"
    shutil.copytree(serve_runs["cnn"], linked, ignore=shutil.ignore_patterns("artifacts"))
    (linked / "artifacts" / "concepts").mkdir(parents=True)
    (linked / "artifacts" / "concepts" / "concepts.json").symlink_to(artifact)
    broken = root / "broken"
    shutil.copytree(concepts_run, broken)
    data = json.loads(artifact.read_text())
    data["by_activation"]["boxes"][0][0] = ["<script>", 1, 2, 3]
    (broken / "artifacts" / "concepts" / "concepts.json").write_text(json.dumps(data))
    return {"concepts": concepts_run, "cnn": serve_runs["cnn"], "linked": linked, "broken": broken,
            "artifact": artifact}


@pytest.fixture(scope="module", params=["threads", "processes"])
def client(request, runs):
    sources = Sources.from_arguments([str(runs[k]) for k in ("concepts", "cnn", "linked", "broken")])
    settings = Settings(processes=request.param == "processes")
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, settings), raise_server_exceptions=False) as c:
        yield c


def _map(packed: dict) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(packed["data"]), "<f4").reshape(packed["shape"]).copy())


def _library(run, index: int, layer, target, k: int):
    import netgaze as ng
    from netgaze.lab.runs import load_run

    loaded = load_run(str(run))
    x = loaded.dataset("test")[index][0][None]
    return ng.concepts(loaded.model.eval(), x, layer, target=target, k=k)


@pytest.mark.parametrize("target, library_target", [(None, None), ({"class": 2}, 2), ({"class": "star"}, 3)])
def test_concepts_equal_the_library_on_the_same_picture(client, runs, target, library_target):
    body = {"run": "concepts", "image": {"split": "test", "index": 5}, "k": 6, "point": {"x": 20, "y": 9}}
    if target is not None:
        body["target"] = target
    answer = client.post("/api/concepts", json=body)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    want = _library(runs["concepts"], 5, -1, library_target, 6)
    assert data["layer"] == want.layer == "features" and data["k"] == 6
    assert [c["channel"] for c in data["concepts"]] == want.channels[0].tolist()
    assert np.allclose([c["share"] for c in data["concepts"]], want.shares[0].numpy(), atol=1e-5)
    assert np.allclose([c["relevance"] for c in data["concepts"]], want.relevance[0].numpy(), atol=1e-6)
    maps = torch.stack([_map(c["map_f32"]) for c in data["concepts"]])
    assert maps.shape == (6, 32, 32)
    assert torch.allclose(maps, want.maps[0], atol=ATOL, rtol=1e-4)
    assert data["score"] == pytest.approx(float(want.scores[0]), abs=1e-5)
    # the value at the point is the map's value there, and the order sorts the concepts by it
    at = [c["at_point"] for c in data["concepts"]]
    assert np.allclose(at, want.maps[0, :, 9, 20].numpy(), atol=ATOL)
    assert data["point"] == {"x": 20, "y": 9}
    assert sorted(data["order_at_point"]) == list(range(6))
    assert [at[j] for j in data["order_at_point"]] == sorted(at, reverse=True)


def test_references_come_from_the_artifact(client, runs):
    saved = json.loads(runs["artifact"].read_text())
    data = client.post("/api/concepts", json={"run": "concepts", "image": {"split": "test", "index": 1},
                                              "target": {"class": 1}, "k": 3}).json()
    assert data["references"] == {"available": True, "note": None, "split": "test", "epoch": saved["epoch"],
                                  "layer": "features"}
    assert data["point"] is None and all(c["at_point"] is None for c in data["concepts"])
    for c in data["concepts"]:
        ch = c["channel"]
        refs = c["references"]
        assert [r["index"] for r in refs["by_activation"]] == saved["by_activation"]["indices"][ch]
        assert [r["box"] for r in refs["by_activation"]] == saved["by_activation"]["boxes"][ch]
        assert [r["index"] for r in refs["by_relevance"]] == saved["by_relevance"]["1"]["indices"][ch]
        assert [r["value"] for r in refs["by_relevance"]] == saved["by_relevance"]["1"]["values"][ch]
    first = data["concepts"][0]["references"]["by_relevance"][0]["index"]
    assert client.get(f"/api/runs/concepts/pictures/test/{first}.png").status_code == 200


@pytest.mark.parametrize("run, words", [("cnn", "netgaze study concepts RUN"),        # no artifact: a note
                                        ("linked", "netgaze study concepts RUN"),     # a link out: not read
                                        ("broken", "no readable concepts artifact")])
def test_a_run_without_a_readable_artifact_gets_a_note_not_an_error(client, run, words):
    answer = client.post("/api/concepts", json={"run": run, "image": {"split": "test", "index": 0}, "k": 2})
    assert answer.status_code == 200
    data = answer.json()
    assert data["references"]["available"] is False and words in data["references"]["note"]
    assert all("references" not in c for c in data["concepts"]) and len(data["concepts"]) == 2


def test_another_layer_than_the_artifacts_gets_a_note(client):
    data = client.post("/api/concepts", json={"run": "concepts", "image": {"split": "test", "index": 0},
                                              "layer": "features.conv2", "k": 2}).json()
    assert data["layer"] == "features.conv2" and data["references"]["available"] is False
    assert "of layer features" in data["references"]["note"]


def test_runs_say_which_have_concepts(client):
    found = {r["id"]: r["has_concepts"] for r in client.get("/api/runs").json()["runs"]}
    assert found == {"concepts": True, "cnn": False, "linked": False, "broken": True}


GOOD = {"run": "concepts", "image": {"split": "test", "index": 0}}


@pytest.mark.parametrize("change, status, words", [
    ({"run": "nope"}, 404, "unknown run"),
    ({"image": {"split": "test", "index": 10 ** 6}}, 404, "not 1000000"),
    ({"image": {"path": "/etc/passwd"}}, 400, "unknown field"),
    ({"k": 0}, 400, "k is an integer"),
    ({"k": 17}, 400, "k is an integer"),
    ({"k": True}, 400, "k is an integer"),
    ({"k": "8"}, 400, "k is an integer"),
    ({"layer": ["features", -2]}, 400, "one layer"),
    ({"layer": "no.such.layer"}, 400, "layer"),
    ({"target": {"top": 3}}, 400, "one score"),
    ({"target": {"class": 99}}, 400, "class is"),
    ({"target": {"box": [0, 0, 4, 4]}}, 400, "classifier"),
    ({"epoch": 99}, 400, "no checkpoint of epoch 99"),
    ({"evil": 1}, 400, "unknown field"),
    ({"point": {"x": 32, "y": 0}}, 400, "point is"),           # one past the right edge
    ({"point": {"x": 0, "y": -1}}, 400, "point is"),
    ({"point": {"x": 1.5, "y": 2}}, 400, "point is"),
    ({"point": {"x": True, "y": 2}}, 400, "point is"),
    ({"point": {"x": "1", "y": 2}}, 400, "point is"),
    ({"point": {"x": 10 ** 30, "y": 2}}, 400, "point is"),
    ({"point": {"x": 1}}, 400, "point is"),
    ({"point": {"x": 1, "y": 1, "z": 1}}, 400, "unknown field"),
    ({"point": [1, 2]}, 400, "point must be a JSON object"),
])
def test_bad_fields_are_one_line_4xx(client, change, status, words):
    answer = client.post("/api/concepts", json=dict(GOOD, **change))
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words in error and "\n" not in error and "Traceback" not in error


@pytest.mark.parametrize("raw", [b'{"run": "concepts", "image": {"split": "test", "index": 0}, "point": {"x": NaN, "y": 1}}',
                                 b'{"run": "concepts", "image": {"split": "test", "index": 0}, "point": {"x": Infinity, "y": 1}}',
                                 b"[" * 100_000, b"not json"])
def test_hostile_bodies_are_4xx(client, raw):
    answer = client.post("/api/concepts", content=raw, headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500 and "error" in answer.json()


def test_k_past_the_layers_channels_is_a_400(client):
    answer = client.post("/api/concepts", json=dict(GOOD, layer="features.conv1", k=9))   # 8 channels
    assert answer.status_code == 400 and "k must be" in answer.json()["error"]


def test_the_atlas_equals_the_artifact(client, runs):
    saved = json.loads(runs["artifact"].read_text())
    answer = client.get("/api/concepts/atlas", params={"run": "concepts", "class": 2})
    assert answer.status_code == 200
    data = answer.json()
    stored = saved["atlas"]["classes"]["2"]
    assert data["class"] == 2 and data["name"] == stored["name"] == "triangle" and data["layer"] == "features"
    assert [c["channel"] for c in data["channels"]] == [row["channel"] for row in stored["channels"]]
    for got, row in zip(data["channels"], stored["channels"]):
        assert got["mean_share"] == row["mean_share"] and got["top_rate"] == row["top_rate"]
        assert [r["index"] for r in got["relying"]] == row["relying"]
        assert [r["index"] for r in got["by_relevance"]] == saved["by_relevance"]["2"]["indices"][row["channel"]]
        assert [r["box"] for r in got["by_activation"]] == saved["by_activation"]["boxes"][row["channel"]]
    assert [c["class"] for c in data["classes"]] == [0, 1, 2, 3, 4]
    assert client.get("/api/concepts/atlas", params={"run": "concepts"}).json()["class"] == 0


@pytest.mark.parametrize("query, status, words", [
    ({"run": "cnn"}, 404, "netgaze study concepts RUN"),
    ({"run": "linked"}, 404, "netgaze study concepts RUN"),
    ({"run": "broken"}, 404, "no readable concepts artifact"),
    ({"run": "concepts", "class": "9"}, 404, "does not follow class 9"),
    ({"run": "concepts", "class": "x"}, 400, "class is an integer"),
    ({"run": "concepts", "path": "/etc/passwd"}, 400, "unknown parameter"),
    ({}, 404, "unknown run"),
])
def test_bad_atlas_queries(client, query, status, words):
    answer = client.get("/api/concepts/atlas", params=query)
    assert answer.status_code == status and words in answer.json()["error"]
