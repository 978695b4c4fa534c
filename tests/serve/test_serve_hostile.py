"""Hostile requests and run folders: the Host and Origin rules (guard.py), files linked out of a run."""
from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from serve_fixtures import LOCAL_URL

import netgaze as ng
from netgaze.serve import Settings, create_app
from netgaze.serve.guard import host_name

EXPLAIN = {"run": "cnn", "image": {"split": "test", "index": 0}, "method": "gradcam", "include": ["map_f32"]}


@pytest.fixture
def app(sources):
    return create_app(sources)  # one app per client: its lifespan ends with the client


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST", "127.0.0.1"])
def test_loopback_names_are_answered(app, host):
    with TestClient(base_url=LOCAL_URL, app=app) as c:
        assert c.get("/api/runs", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8765", "127.0.0.1.attacker.example",
                                  "localhost.attacker.example:80", ""])
def test_a_rebound_name_is_refused_in_one_line(app, host):
    with TestClient(base_url=LOCAL_URL, app=app) as c:
        answer = c.get("/api/runs", headers={"host": host})
        assert answer.status_code == 403 and "runs" not in answer.json()
        assert "DNS rebinding" in answer.json()["error"] and "\n" not in answer.json()["error"]
        assert c.post("/api/explain", json=EXPLAIN, headers={"host": host}).status_code == 403


def test_allowed_hosts_add_names_and_a_token_server_answers_any_name(sources):
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, Settings(allowed_hosts=("lab.local",)))) as c:
        assert c.get("/api/runs", headers={"host": "lab.local:8765"}).status_code == 200
        assert c.get("/api/runs", headers={"host": "other.local"}).status_code == 403
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, Settings(token="s3cret"))) as c:
        auth = {"Authorization": "Bearer s3cret"}
        assert c.get("/api/runs", headers={**auth, "host": "192.168.1.20:8765"}).status_code == 200
        assert c.get("/api/runs", headers={"host": "192.168.1.20:8765"}).status_code == 401


@pytest.mark.parametrize("headers", [{"origin": "http://attacker.example"}, {"origin": "null"},
                                     {"origin": "http://127.0.0.1:9999"}, {"sec-fetch-site": "cross-site"}])
def test_cross_site_posts_are_refused_before_any_work(app, headers):
    with TestClient(base_url=LOCAL_URL, app=app) as c:
        answer = c.post("/api/explain", content=b'{"run": "cnn"}', headers={**headers, "content-type": "text/plain"})
        assert answer.status_code == 403 and "another site" in answer.json()["error"]
        assert c.post("/api/upload", content=b"x", headers=headers).status_code == 403


def test_same_origin_and_non_browser_posts_are_computed(app):
    with TestClient(base_url=LOCAL_URL, app=app) as c:
        assert c.post("/api/explain", json=EXPLAIN).status_code == 200                        # no Origin: curl, Python
        same = {"origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"}
        assert c.post("/api/explain", json=EXPLAIN, headers=same).status_code == 200
        assert c.get("/api/runs", headers={"origin": "http://attacker.example"}).status_code == 200  # reads: the browser's own rule


def test_host_name_strips_the_port_only():
    assert [host_name(h) for h in ["127.0.0.1:80", "[::1]:8765", "::1", "Example.org", "a:b:c"]] == \
        ["127.0.0.1", "::1", "::1", "example.org", "a:b:c"]


def test_an_embedding_artifact_linked_out_of_the_run_is_not_read(serve_runs, tmp_path):
    """Every file the explorer reads from a run obeys the report's containment rule."""
    import shutil

    import numpy as np

    from netgaze.serve import Sources

    outside = tmp_path / "secret.npz"
    np.savez(outside, embedding=np.arange(20.0).reshape(10, 2), indices=np.arange(10))
    for name, place in (("linked", None), ("inside", "copy")):
        run = tmp_path / name
        shutil.copytree(serve_runs["cnn"], run, ignore=shutil.ignore_patterns("artifacts"))
        (run / "artifacts" / "embed").mkdir(parents=True)
        target = run / "artifacts" / "embed" / "embedding.npz"
        shutil.copy(outside, target) if place else target.symlink_to(outside)
    sources = Sources.from_arguments([str(tmp_path / "linked"), str(tmp_path / "inside")])
    with TestClient(base_url=LOCAL_URL, app=create_app(sources)) as c:
        runs = {r["id"]: r for r in c.get("/api/runs").json()["runs"]}
        assert not runs["linked"]["has_artifact_embedding"] and runs["inside"]["has_artifact_embedding"]
        refused = c.post("/api/embedding", json={"run": "linked", "layer": "artifact"})
        assert refused.status_code == 400 and "no embedding artifact" in refused.json()["error"]
        assert len(c.post("/api/embedding", json={"run": "inside", "layer": "artifact"}).json()["points"]) == 10


def test_one_broken_run_or_picture_does_not_break_the_others(serve_runs, tmp_path):
    """A diverged history (NaN, inf) is data shown as null; an unreadable picture is listed as
    broken and refused alone; every other run and picture keeps working."""
    import json
    import shutil

    import numpy as np
    from PIL import Image

    from netgaze.serve import Sources

    diverged = tmp_path / "diverged"
    shutil.copytree(serve_runs["cnn"], diverged)
    lines = (diverged / "history.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    last.update(test_acc=float("nan"), train_loss=float("inf"))
    (diverged / "history.jsonl").write_text("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(pictures / "a.png")
    (pictures / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture")
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(pictures / "c.png")
    runs = Sources.from_arguments([str(serve_runs["cnn"]), str(diverged)], model="torchvision:resnet18",
                                  images=str(pictures), size=32)
    with TestClient(base_url=LOCAL_URL, app=create_app(runs), raise_server_exceptions=False) as c:
        assert [r["id"] for r in c.get("/api/runs").json()["runs"]] == ["cnn", "diverged", "torchvision-resnet18"]
        history = c.get("/api/runs/diverged/history")
        assert history.status_code == 200
        assert history.json()["history"][-1]["test_acc"] is None and history.json()["history"][-1]["train_loss"] is None
        listed = c.get("/api/runs/torchvision-resnet18/pictures").json()["pictures"]
        assert [("broken" in p) for p in listed] == [False, True, False]
        assert "b.png" in listed[1]["broken"] and listed[0]["pred"] is not None and listed[2]["pred"] is not None
        bad = c.post("/api/explain", json={"run": "torchvision-resnet18", "image": {"split": "test", "index": 1}})
        assert bad.status_code == 400 and "b.png" in bad.json()["error"]
        good = c.post("/api/explain", json={"run": "torchvision-resnet18", "image": {"split": "test", "index": 2}})
        assert good.status_code == 200
        assert c.get("/api/runs/cnn/history").status_code == 200


def test_the_analysis_queue_is_bounded_shared_and_drops_abandoned_work(sources):
    """Units, embeddings and epoch curves: at most MAX_ANALYSES queued (then 503 + Retry-After),
    one computation per key however many clients ask, and queued work nobody waits for is dropped."""
    import asyncio
    import threading

    import httpx

    from netgaze.serve import app as app_module

    app = create_app(sources)
    explorer = app.state.explorer
    gate, started, runs = threading.Event(), [], []

    def slow(state):     # holds the analysis thread until the test opens the gate
        started.append(1)
        gate.wait(20)
        return {"value": 1}

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_URL):
            waits = [asyncio.create_task(explorer.analyse(("slow", i), slow)) for i in range(app_module.MAX_ANALYSES)]
            twin = asyncio.create_task(explorer.analyse(("slow", 0), slow))      # shares the first computation
            await asyncio.sleep(0.3)
            assert len(explorer.in_flight) == app_module.MAX_ANALYSES
            try:
                await explorer.analyse(("slow", "one too many"), slow)
                raise AssertionError("a full analysis queue accepted more work")
            except app_module.QueueFull:
                pass
            waits[-1].cancel()                            # its client left while it was still queued
            await asyncio.sleep(0.3)
            assert ("slow", app_module.MAX_ANALYSES - 1) not in explorer.in_flight
            gate.set()
            results = await asyncio.gather(*waits[:-1], twin)
            runs.append(len(started))
            return results
    try:
        results = asyncio.run(go())
    finally:
        explorer.close()
    assert all(r == {"value": 1} for r in results)
    assert runs == [app_module.MAX_ANALYSES - 1]          # the twin shared, the abandoned one never ran
    assert explorer.results.get(("slow", 0)) == {"value": 1}


def test_bad_units_requests_are_refused_before_they_queue(client):
    for body, message in (({"steps": {}}, "steps is an integer"), ({"steps": 10**9}, "steps is an integer"),
                          ({"channels": "0-5"}, "channels is a list"), ({"channels": list(range(100))}, "channels is a list")):
        answer = client.post("/api/units", json={"run": "cnn", **body})
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_units_on_a_vits_token_stage(tmp_path):
    """The Units page reads a token stage like a conv stage: the channels are the tokens' features,
    a picture's activation the mean over the patch tokens (the class token left out)."""
    import numpy as np
    import torch
    from PIL import Image

    from netgaze.serve import Sources

    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    sources = Sources.from_arguments([], model="timm:vit_tiny_patch16_224", images=str(tmp_path), size=224)
    source = next(iter(sources))
    with TestClient(base_url=LOCAL_URL, app=create_app(sources)) as c:
        layer = source.stages()[-1]
        answer = c.post("/api/units", json={"run": source.id, "layer": layer, "channels": [0, 5], "steps": 2, "top": 4})
        assert answer.status_code == 200, answer.text
        data = answer.json()
    assert data["width"] == 192
    x = torch.stack([source.dataset("test")[i][0] for i in range(4)])
    with ng.Recorder(source.model, [layer], grads=False) as rec:
        rec.forward(x)
        tokens = next(iter(rec.activations.values()))       # [4, 1 + 196, 192]
    by_hand = tokens[:, 1:, :].mean(dim=1)
    for entry in data["channels"]:
        assert [t["index"] for t in entry["top"]] == by_hand[:, entry["channel"]].argsort(descending=True).tolist()


@pytest.mark.parametrize("body", [b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 32_000 + b"1" + b"}" * 32_000,
                                  b'{"run": "cnn", "image": {"split": "test", "index": ' + b"9" * 5000 + b"}}"])
@pytest.mark.parametrize("path", ["/api/explain", "/api/units", "/api/embedding"])
def test_deep_or_huge_json_bodies_are_one_line_400(client, body, path):
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code in (400, 413), answer.text
    assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    assert client.get("/api/health").json()["status"] == "ok"


HOSTILE_VALUES = [{}, [], ["a"], [[1]], "x", "", 1e308, -1, 10 ** 30, None, True, {"a": {}}, {"upload": ["a"]},
                  {"split": [], "index": {}}, {"box": [1e308, 0, 1, 1], "channel": {}}]
PAGE_BODIES = {
    "/api/explain": {"run": "cnn", "image": {"split": "test", "index": 0}, "method": "gradcam", "layer": "features",
                     "target": {"class": 0}},
    "/api/epochs": {"run": "cnn", "image": {"split": "test", "index": 0}, "method": "gradcam", "target": {"class": 0}},
    "/api/embedding": {"run": "cnn", "method": "pca", "limit": 20, "split": "test"},
    "/api/units": {"run": "cnn", "channels": [0], "steps": 1, "top": 1},
}


@pytest.mark.parametrize("path, key", [(p, k) for p, body in PAGE_BODIES.items() for k in body]
                         + [("/api/embedding", "epoch"), ("/api/units", "epoch"), ("/api/units", "layer"),
                            ("/api/embedding", "layer")])
def test_every_field_of_every_page_takes_any_json_value_without_a_500(client, path, key):
    for value in HOSTILE_VALUES:
        body = {**PAGE_BODIES[path], key: value}
        answer = client.post(path, json=body)
        assert answer.status_code < 500, (body, answer.text)
        if answer.status_code >= 400:
            assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
