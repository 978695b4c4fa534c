"""The explorer's HTTP API: maps equal the library's, batching is exact, bad requests are one-line 4xx."""
from __future__ import annotations

import asyncio
import io
import json
import struct
import threading
import zlib

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

import netgaze as ng
from netgaze.serve import Settings, Sources, create_app
from netgaze.serve.batching import BatchQueue, QueueFull
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.compute import ExplainJob, WorkerState, explain_batch
from netgaze.serve.pictures import to_tensor

ATOL = 1e-5


@pytest.fixture(scope="module")
def sources(serve_runs):
    return Sources.from_arguments([str(serve_runs[k]) for k in ("cnn", "vae", "fcn", "evil")])


@pytest.fixture(scope="module")
def client(sources):
    with TestClient(create_app(sources), raise_server_exceptions=False) as c:
        yield c


def _map(answer, key="map"):
    value = answer[key]
    return {k: torch.tensor(v) for k, v in value.items()} if isinstance(value, dict) else torch.tensor(value)


def test_health_and_runs(client, sources):
    assert client.get("/api/health").json()["status"] == "ok"
    runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(runs) == {"cnn", "vae", "fcn", "evil"}
    cnn = runs["cnn"]
    assert cnn["task"] == "classify" and cnn["epochs"] == [0, 1, 2]
    assert cnn["classes"] == ["circle", "square", "triangle", "star", "cross"]
    assert cnn["stages"] == ["features.relu1", "features.relu2", "features.relu3", "features"]  # the stage rule
    assert cnn["layers"][:4] == cnn["stages"]                         # stages first
    assert runs["vae"]["stages"] == ["encoder.2", "encoder.5"] and runs["vae"]["task"] == "reconstruct"
    assert runs["fcn"]["stages"][-1] == "score_fr" and "encoder" not in runs["fcn"]["stages"]  # list-output module left out


@pytest.mark.parametrize("layer", ["features.conv3", -1])
def test_gradcam_map_equals_the_library_call(client, serve_runs, layer):
    run = ng.load_run(serve_runs["cnn"])
    x = run.dataset("test")[7][0][None]
    answer = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 7},
                                               "method": "gradcam", "layer": layer}).json()
    name = "features.conv3" if layer != -1 else "features"
    expected = ng.gradcam(run.model, x, name, target=None)[0]
    assert answer["layers"] == [name]
    assert torch.allclose(_map(answer), expected, atol=ATOL) and float(expected.max()) > 0
    with torch.no_grad():
        pred = run.model(x).softmax(1)[0]
    assert answer["prediction"]["top"][0]["class"] == int(pred.argmax())
    assert answer["prediction"]["top"][0]["p"] == pytest.approx(float(pred.max()), abs=1e-5)
    assert answer["target"]["classes"][0]["class"] == int(pred.argmax())
    assert answer["ms"] > 0 and answer["overlay"].startswith("iVBOR")   # a PNG
    assert answer["label"] == {"class": run.dataset("test")[7][1], "name": run.classes[run.dataset("test")[7][1]]}


def test_many_layers_class_and_top_k_targets(client, serve_runs):
    run = ng.load_run(serve_runs["cnn"])
    x = run.dataset("test")[3][0][None]
    answer = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 3},
                                               "layer": ["features.conv2", -1], "target": {"class": "star"}}).json()
    expected = ng.gradcam(run.model, x, ["features.conv2", "features"], target=ng.Class(3))
    got = _map(answer)
    assert set(got) == {"features.conv2", "features"} and set(answer["overlay"]) == set(got)
    for name in got:
        assert torch.allclose(got[name], expected[name][0], atol=ATOL)
    top = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 3},
                                            "method": "layercam", "target": {"top": 3}}).json()
    expected = ng.layercam(run.model, x, "features", target=ng.TopClass(3))[0]
    assert torch.allclose(_map(top), expected, atol=ATOL) and len(top["overlay"]) == 3
    assert [c["class"] for c in top["target"]["classes"]] == run.model(x)[0].topk(3).indices.tolist()


def test_guided_backprop_and_an_older_epoch(client, serve_runs):
    run = ng.load_run(serve_runs["cnn"])
    x = run.dataset("test")[5][0][None]
    answer = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 5},
                                               "method": "guided_backprop", "target": {"class": 1}}).json()
    assert answer["layers"] is None
    assert torch.allclose(_map(answer), ng.guided_backprop(run.model, x, target=ng.Class(1))[0], atol=ATOL)
    old = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 5}, "epoch": 0}).json()
    model0 = run.model_at(0)
    assert old["epoch"] == 0
    assert torch.allclose(_map(old), ng.gradcam(model0, x, "features")[0], atol=ATOL)


def test_area_explanations_of_a_vae_and_an_fcn(client, serve_runs):
    vae = ng.load_run(serve_runs["vae"])
    x = vae.dataset("test")[4][0][None]
    box = [6, 8, 20, 22]
    answer = client.post("/api/explain", json={"run": "vae", "image": {"split": "test", "index": 4},
                                               "layer": "encoder.2", "target": {"box": box}}).json()
    expected = ng.gradcam(vae.model, x, "encoder.2", target=ng.Area(box=tuple(box)))[0]
    assert torch.allclose(_map(answer), expected, atol=ATOL)
    share = float(expected[6:20, 8:22].sum() / expected.sum())
    assert answer["inside"] == pytest.approx(share, abs=1e-6)
    recon = Image.open(io.BytesIO(__import__("base64").b64decode(answer["prediction"]["output"])))
    want = (vae.model(x)[0][0, 0].clamp(0, 1) * 255).round().byte().numpy()
    assert np.abs(np.asarray(recon)[..., 0].astype(int) - want).max() <= 1
    fcn = ng.load_run(serve_runs["fcn"])
    xs = fcn.dataset("test")[2][0][None]
    seg = client.post("/api/explain", json={"run": "fcn", "image": {"split": "test", "index": 2},
                                            "method": "saliency", "target": {"box": [2, 3, 12, 20], "channel": 0}}).json()
    expected = ng.saliency(fcn.model, xs, target=ng.Area(box=(2, 3, 12, 20), channel=0))[0]
    assert torch.allclose(_map(seg), expected, atol=ATOL) and float(expected.abs().sum()) > 0
    assert seg["inside"] == pytest.approx(float(expected.abs().sum(0)[2:12, 3:20].sum() / expected.abs().sum()), abs=1e-6)


def test_a_batch_equals_its_requests_one_by_one(sources, serve_runs):
    """Dynamic batching: one pass over different pictures (and different boxes) gives each one's own map."""
    state = WorkerState(MemoryLRU(1 << 28), 1 << 28)
    cnn, vae = sources.get("cnn"), sources.get("vae")
    run = ng.load_run(serve_runs["cnn"])
    jobs = [ExplainJob(cnn, 2, "gradcam", ("features.conv3",), False, cnn.picture("test", i).x, ("class", c))
            for i, c in [(0, 1), (9, 4), (11, 0)]]
    answers = explain_batch(state, jobs)
    assert [a["batch"] for a in answers] == [3, 3, 3]
    for job, a in zip(jobs, answers):
        expected = ng.gradcam(run.model, job.x[None], "features.conv3", target=ng.Class(job.target[1]))[0]
        assert torch.allclose(torch.tensor(a["map"]), expected, atol=ATOL)
        alone = explain_batch(state, [job])[0]
        assert alone["batch"] == 1 and alone["overlay"] == a["overlay"]        # the same picture, byte for byte
    vae_run = ng.load_run(serve_runs["vae"])
    boxes = [(0, 0, 10, 10), (5, 6, 28, 20)]
    jobs = [ExplainJob(vae, 1, "gradcam", ("encoder.5",), False, vae.picture("test", i).x, ("box", b, None))
            for i, b in zip((1, 2), boxes)]
    for job, a in zip(jobs, explain_batch(state, jobs)):
        expected = ng.gradcam(vae_run.model, job.x[None], "encoder.5", target=ng.Area(box=job.target[1]))[0]
        assert torch.allclose(torch.tensor(a["map"]), expected, atol=ATOL)


def test_concurrent_requests_are_batched_and_exact(sources, serve_runs):
    run = ng.load_run(serve_runs["cnn"])
    app = create_app(sources, Settings(max_batch=8))
    explorer = app.state.explorer
    gate = threading.Event()
    original = explorer.queue.run_batch

    def held(state, jobs):        # the first pass waits until every request is queued
        gate.wait(10)
        return original(state, jobs)
    explorer.queue.run_batch = held

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            tasks = [asyncio.create_task(c.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": i}}))
                     for i in range(6)]
            while explorer.queue.pending + explorer.queue.stats.requests < 6:   # all queued or taken
                await asyncio.sleep(0.01)
            gate.set()
            return await asyncio.gather(*tasks)
    try:
        responses = asyncio.run(go())
    finally:
        explorer.close()
    assert all(r.status_code == 200 for r in responses)
    # the worker was held: whatever it took first, the rest waited and went together
    assert explorer.queue.stats.requests == 6 and explorer.queue.stats.batches <= 2
    assert max(r.json()["batch"] for r in responses) >= 3
    x = torch.stack([run.dataset("test")[i][0] for i in range(6)])
    expected = ng.gradcam(run.model, x, "features")
    for i, r in enumerate(responses):
        assert torch.allclose(torch.tensor(r.json()["map"]), expected[i], atol=ATOL)


def test_a_full_queue_answers_503_with_retry_after(sources):
    app = create_app(sources, Settings(max_queue=1))
    explorer = app.state.explorer
    gate = threading.Event()
    original = explorer.queue.run_batch
    explorer.queue.run_batch = lambda state, jobs: (gate.wait(10), original(state, jobs))[1]

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            body = {"run": "cnn", "image": {"split": "test", "index": 0}}
            first = asyncio.create_task(c.post("/api/explain", json=body))
            while explorer.queue.stats.batches < 1:
                await asyncio.sleep(0.01)
            second = asyncio.create_task(c.post("/api/explain", json=body))
            while explorer.queue.pending < 1:
                await asyncio.sleep(0.01)
            third = await c.post("/api/explain", json=body)
            gate.set()
            return await first, await second, third
    try:
        first, second, third = asyncio.run(go())
    finally:
        explorer.close()
    assert first.status_code == 200 and second.status_code == 200
    assert third.status_code == 503 and third.headers["retry-after"] == "1"
    assert list(third.json()) == ["error"]


def test_batch_queue_isolates_a_failing_request():
    def run_batch(state, jobs):
        if "bad" in jobs:
            raise ValueError("bad job")
        return [j.upper() for j in jobs]
    queue = BatchQueue(run_batch, key=lambda j: 0, max_batch=4, max_queue=8)

    async def go():
        return await asyncio.gather(*(queue.submit(j) for j in ["a", "bad", "c"]), return_exceptions=True)
    try:
        results = asyncio.run(go())
    finally:
        queue.close()
    assert results[0] == "A" and results[2] == "C" and isinstance(results[1], ValueError)


def test_memory_lru_keeps_its_bound():
    cache = MemoryLRU(1000)
    for i in range(10):
        cache.put(i, np.zeros(300, np.uint8))
    assert cache.bytes <= 1000 and len(cache) == 3 and 9 in cache and 6 not in cache
    cache.get(7)
    cache.put(10, np.zeros(300, np.uint8))
    assert 7 in cache and 8 not in cache
    cache.put("huge", np.zeros(5000, np.uint8))
    assert "huge" not in cache


def test_a_second_visit_to_an_epoch_is_served_from_cache(sources):
    app = create_app(sources)
    with TestClient(app) as c:
        body = {"run": "cnn", "image": {"split": "test", "index": 1}, "epoch": 1, "include": ["overlay"]}
        assert c.post("/api/explain", json=body).status_code == 200
        explorer = app.state.explorer
        loads = explorer.weights.misses
        assert "map" not in c.post("/api/explain", json=body).json()
        assert explorer.weights.misses == loads and explorer.weights.stats()["items"] >= 1


def _png(size=(20, 20), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 10, 10) if mode == "RGB" else 0).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (no real pixel data needed to be refused)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_uploads_are_checked_and_explained(client, serve_runs):
    data = _png((40, 30))
    answer = client.post("/api/upload", content=data).json()
    assert len(answer["upload"]) == 16 and (answer["width"], answer["height"]) == (40, 30)
    form = client.post("/api/upload", files={"file": ("x.png", data, "image/png")})
    assert form.status_code == 200
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 90, 200)).save(buffer, format="WEBP")
    assert client.post("/api/upload", content=buffer.getvalue()).status_code == 200
    run = ng.load_run(serve_runs["cnn"])
    explained = client.post("/api/explain", json={"run": "cnn", "image": {"upload": answer["upload"]}}).json()
    x = to_tensor(Image.open(io.BytesIO(data)), (32, 32), 3)[None]
    assert torch.allclose(_map(explained), ng.gradcam(run.model, x, "features")[0], atol=ATOL)
    assert client.get(f"/api/uploads/{answer['upload']}.png").headers["content-type"] == "image/png"
    refused = {
        "text": (b"hello, this is not a picture", 415),
        "pickle": (b"\x80\x04\x95" + b"\x00" * 20, 415),
        "svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415),
        "bomb": (_bomb_png(40000, 40000), 413),
        "truncated": (data[:40], 400),
        "empty": (b"", 400),
        "huge": (b"\x89PNG\r\n\x1a\n" + b"\x00" * (9 * 1024 * 1024), 413),
    }
    for name, (body, status) in refused.items():
        r = client.post("/api/upload", content=body)
        assert r.status_code == status, (name, r.text)
        assert list(r.json()) == ["error"] and "\n" not in r.json()["error"]


def test_no_request_reaches_a_file_by_path(client):
    probes = ["/api/runs/..%2F..%2Fetc%2Fpasswd/pictures/test/0.png", "/api/runs/../../etc/passwd",
              "/static/../pyproject.toml", "/static/..%2F..%2F..%2Fpyproject.toml", "/api/uploads/..%2F..%2Fx.png",
              "/api/runs/cnn/pictures/..%2F..%2Fetc/0.png", "/api/runs/%2Fetc%2Fpasswd/history"]
    for path in probes:
        r = client.get(path)
        assert r.status_code in (400, 404), path
        assert "root:" not in r.text and "[project]" not in r.text
    bodies = [{"run": "/etc/passwd", "image": {"split": "test", "index": 0}},
              {"run": "cnn", "image": {"split": "../../etc/passwd", "index": 0}},
              {"run": "cnn", "image": {"upload": "../../../etc/passwd"}},
              {"run": "cnn", "image": {"path": "/etc/passwd"}}]
    for body in bodies:
        r = client.post("/api/explain", json=body)
        assert r.status_code in (400, 404), body
        assert "root:" not in r.text


@pytest.mark.parametrize("body, status", [
    ({"run": "cnn"}, 400),
    ({"run": "nope", "image": {"split": "test", "index": 0}}, 404),
    ({"run": "cnn", "image": {"split": "test", "index": 10_000}}, 404),
    ({"run": "cnn", "image": {"split": "test", "index": "1"}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "method": "magic"}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "layer": "features.conv9"}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "layer": -9}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "layer": []}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"class": 99}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"class": "dog"}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"top": 0}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "target": {"box": [0, 0, 4, 4]}}, 400),
    ({"run": "vae", "image": {"split": "test", "index": 0}, "target": {"box": [5, 5, 2, 9]}}, 400),
    ({"run": "vae", "image": {"split": "test", "index": 0}, "target": {"box": [0, 0, 4, 99]}}, 400),
    ({"run": "vae", "image": {"split": "test", "index": 0}}, 400),
    ({"run": "fcn", "image": {"split": "test", "index": 0}, "target": {"box": [0, 0, 4, 4], "channel": 40}}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "epoch": 7}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "epochs": 1}, 400),
    ({"run": "cnn", "image": {"split": "test", "index": 0}, "include": ["everything"]}, 400),
    ({"run": "fcn", "image": {"split": "test", "index": 0}, "layer": "encoder", "target": {"box": [0, 0, 4, 4]}}, 400),
    ([1, 2, 3], 400),
])
def test_bad_requests_are_one_line_4xx_and_the_server_keeps_serving(client, body, status):
    r = client.post("/api/explain", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert list(r.json()) == ["error"] and "\n" not in error and "Traceback" not in error
    assert client.get("/api/health").json()["status"] == "ok"


def test_malformed_bodies_and_other_endpoints(client):
    assert client.post("/api/explain", content=b"{not json").status_code == 400
    assert client.post("/api/explain", content=b"x" * 100_000).status_code == 413
    assert client.get("/api/explain").status_code == 405
    assert client.get("/api/nothing").status_code == 404
    assert list(client.get("/api/nothing").json()) == ["error"]
    pictures = client.get("/api/runs/cnn/pictures?order=misclassified&limit=10").json()["pictures"]
    flags = [p["correct"] for p in pictures]
    assert flags == sorted(flags, key=lambda f: f is not False)          # wrong ones first
    star = client.get("/api/runs/cnn/pictures?label=3").json()["pictures"]
    assert star and all(p["label"] == 3 and p["name"] == "star" for p in star)
    assert client.get("/api/runs/cnn/pictures?label=zebra").status_code == 400
    assert client.get("/api/runs/cnn/pictures?limit=5&path=/etc").status_code == 400
    assert client.get("/api/runs/cnn/pictures/test/0.png").content.startswith(b"\x89PNG")
    assert client.get("/api/runs/cnn/history").json()["history"][-1]["epoch"] == 2


def test_epochs_embedding_and_units_endpoints(client, serve_runs):
    run = ng.load_run(serve_runs["cnn"])
    curves = client.post("/api/epochs", json={"run": "cnn", "image": {"split": "test", "index": 2}}).json()
    assert [r["epoch"] for r in curves["epochs"]] == [0, 1, 2] and curves["metric"] == "test_acc"
    assert curves["epochs"][2]["metric"] == pytest.approx(run.history[-1]["test_acc"])
    test = run.dataset("test")
    x, mask = test[2][0][None], torch.as_tensor(test.mask(2)).bool()
    cam = ng.gradcam(run.model_at(1), x, "features")
    assert curves["epochs"][1]["attention"] == pytest.approx(float(cam[0][mask].sum() / cam[0].sum()), abs=1e-5)
    points = client.post("/api/embedding", json={"run": "cnn", "method": "pca", "limit": 40}).json()["points"]
    assert len(points) == 40 and {p["index"] for p in points} == set(range(40))
    assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for p in points)
    assert client.post("/api/embedding", json={"run": "cnn", "layer": "artifact"}).status_code == 400
    units = client.post("/api/units", json={"run": "cnn", "layer": "features.conv2", "channels": [0, 3],
                                            "steps": 4, "top": 3}).json()
    assert [c["channel"] for c in units["channels"]] == [0, 3]
    acts = []
    with ng.Recorder(run.model, ["features.conv2"], grads=False) as rec:
        rec.forward(torch.stack([test[i][0] for i in range(len(test))]))
        acts = rec.activations["features.conv2"].mean(dim=(2, 3))
    for c in units["channels"]:
        assert [t["index"] for t in c["top"]] == acts[:, c["channel"]].topk(3).indices.tolist()
    assert client.post("/api/units", json={"run": "cnn", "channels": [999]}).status_code == 400


def test_the_token_guards_every_request(sources):
    with TestClient(create_app(sources, Settings(token="s3cret"))) as c:
        assert c.get("/api/runs").status_code == 401
        assert c.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/static/app.js").status_code == 401
        page = c.get("/?token=s3cret")
        assert page.status_code == 200 and "netgaze_token" in page.headers["set-cookie"]
        assert c.get("/api/runs").status_code == 200          # the cookie now carries it


def test_the_page_is_static_and_strict(client):
    page = client.get("/")
    assert page.status_code == 200 and "<script src=\"/static/app.js\"" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")        # nothing from a CDN
    script = client.get("/static/app.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    runs = client.get("/api/runs").json()["runs"]
    evil = next(r for r in runs if r["id"] == "evil")
    assert evil["classes"][0].startswith("<img")                    # JSON carries it; the page shows it as text


def test_cli_help_host_check_and_user_errors(capsys, serve_runs):
    from netgaze.cli import main
    from netgaze.serve.server import check_host

    assert main(["serve", "--help"]) == 0
    assert "examples:" in capsys.readouterr().out
    assert main(["serve"]) == 2
    assert main(["serve", str(serve_runs["cnn"]) + "-missing"]) == 2
    assert "error:" in capsys.readouterr().err
    assert check_host("127.0.0.1", None) is None
    assert check_host("0.0.0.0", "given") == "given"
    err = io.StringIO()
    token = check_host("0.0.0.0", None, out=err)
    assert token and len(token) >= 20 and "WARNING" in err.getvalue()


def test_batch_queue_with_two_workers_answers_every_job_once():
    seen = []

    def run_batch(state, jobs):
        seen.extend(jobs)
        return [(state, j * 2) for j in jobs]
    queue = BatchQueue(run_batch, key=lambda j: j % 3, workers=2, max_batch=4, max_queue=100,
                       make_state=lambda i: i, max_wait_ms=2)

    async def go():
        return await asyncio.gather(*(queue.submit(j) for j in range(60)))
    try:
        results = asyncio.run(go())
    finally:
        queue.close()
    assert [r[1] for r in results] == [2 * j for j in range(60)] and sorted(seen) == list(range(60))
    assert queue.stats.largest <= 4 and queue.stats.requests == 60


def test_a_torchvision_segmenter_with_a_picture_folder(tmp_path, one_thread):
    """--model torchvision:NAME of a segmentation model: dict output ("out"), area targets, folder pictures."""
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        image = Image.new("RGB", (80, 64), colour)
        image.paste((250, 250, 250), (20, 16, 50, 40))
        image.save(tmp_path / f"p{i}.png")
    (tmp_path / "notes.txt").write_text("not a picture")
    sources = Sources.from_arguments([], model="torchvision:lraspp_mobilenet_v3_large", images=str(tmp_path), size=64)
    source = next(iter(sources))
    assert source.task == "segment" and source.classes[0] == "__background__" and source.stages()
    with TestClient(create_app(sources), raise_server_exceptions=False) as c:
        facts = c.get("/api/runs").json()["runs"][0]
        assert facts["splits"] == {"test": 2}
        body = {"run": source.id, "image": {"split": "test", "index": 1}, "layer": -1,
                "target": {"box": [8, 8, 40, 56], "channel": 0}}
        answer = c.post("/api/explain", json=body).json()
        x = to_tensor(Image.open(tmp_path / "p1.png"), (64, 64), 3)[None]
        expected = ng.gradcam(source.model, x, source.stages()[-1], target=ng.Area(box=(8, 8, 40, 56), channel=0),
                              output="out")[0]
        assert torch.allclose(_map(answer), expected, atol=ATOL)
        assert answer["prediction"]["output"].startswith("iVBOR") and answer["label"] is None
        assert c.get(f"/api/runs/{source.id}/pictures/test/2.png").status_code == 404   # the .txt is not listed
