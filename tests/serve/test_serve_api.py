"""The explorer's HTTP API: maps equal the library's, batching is exact, bad requests are one-line 4xx."""
from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

import netgaze as ng
from netgaze.serve import Settings, create_app
from netgaze.serve.batching import BatchQueue
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.compute import ExplainJob, WorkerState, explain_batch
from serve_fixtures import LOCAL_URL, ATOL, answer_map as _map, grey_png as _png



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


def _unpacked(packed):
    values = np.frombuffer(base64.b64decode(packed["data"]), dtype="<f4").reshape(packed["shape"])
    return torch.from_numpy(values.copy())


def test_packed_maps_are_the_same_values(client):
    """``map_f32`` (what the pages draw from) holds exactly the values of ``map``, per layer and per top-k class."""
    for body in ({"layer": ["features.conv2", -1], "target": {"class": "star"}}, {"method": "layercam", "target": {"top": 3}},
                 {"method": "guided_backprop"}):
        answer = client.post("/api/explain", json=dict(body, run="cnn", image={"split": "test", "index": 3},
                                                       include=["map", "map_f32"])).json()
        assert "overlay" not in answer
        plain, packed = answer["map"], answer["map_f32"]
        pairs = [(plain[k], packed[k]) for k in plain] if isinstance(plain, dict) else [(plain, packed)]
        for values, packed_values in pairs:
            assert torch.equal(_unpacked(packed_values), torch.tensor(values))
    shapes = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 3}, "target": {"top": 2},
                                               "include": ["map_f32"]}).json()["map_f32"]["shape"]
    assert shapes == [2, 32, 32]
    bad = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 3}, "include": [{"a": 1}]})
    assert bad.status_code == 400 and "include" in bad.json()["error"]


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
    predicted = client.post("/api/explain", json={"run": "fcn", "image": {"split": "test", "index": 2}, "layer": -1,
                                                  "target": {"box": [2, 3, 12, 20], "channel": "predicted"}}).json()
    area = ng.Area(box=(2, 3, 12, 20), channel="predicted")
    c = int(area.predicted_channels(fcn.model(xs))[0])
    assert predicted["target"] == {"box": [2, 3, 12, 20], "channel": "predicted", "class": c, "name": fcn.classes[c]}
    expected = ng.gradcam(fcn.model, xs, "score_fr", target=area)[0]
    assert torch.allclose(_map(predicted), expected, atol=ATOL)
    assert torch.allclose(expected, ng.gradcam(fcn.model, xs, "score_fr", target=ng.Area(box=(2, 3, 12, 20), channel=c))[0])
    bad = client.post("/api/explain", json={"run": "vae", "image": {"split": "test", "index": 2},
                                            "target": {"box": [2, 3, 12, 20], "channel": "predicted"}})
    assert bad.status_code == 400 and "channel is null" in bad.json()["error"]     # "predicted" is for segmentation


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
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_URL) as c:
            tasks = [asyncio.create_task(c.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": i}}))
                     for i in range(6)]
            deadline = time.monotonic() + 30
            while explorer.queue.pending + explorer.queue.stats.requests < 6:   # all queued or taken
                assert time.monotonic() < deadline, "the six requests were not all queued within 30 s"
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
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_URL) as c:
            body = {"run": "cnn", "image": {"split": "test", "index": 0}}
            first = asyncio.create_task(c.post("/api/explain", json=body))
            deadline = time.monotonic() + 30
            while explorer.queue.stats.batches < 1:
                assert time.monotonic() < deadline, "the worker did not take the first request within 30 s"
                await asyncio.sleep(0.01)
            second = asyncio.create_task(c.post("/api/explain", json=body))
            while explorer.queue.pending < 1:
                assert time.monotonic() < deadline, "the second request was not queued within 30 s"
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
    with TestClient(base_url=LOCAL_URL, app=app) as c:
        body = {"run": "cnn", "image": {"split": "test", "index": 1}, "epoch": 1, "include": ["overlay"]}
        assert c.post("/api/explain", json=body).status_code == 200
        explorer = app.state.explorer
        loads = explorer.weights.misses
        assert "map" not in c.post("/api/explain", json=body).json()
        assert explorer.weights.misses == loads and explorer.weights.stats()["items"] >= 1


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
    refused = client.post("/api/units", json={"run": "cnn", "channels": [999]})
    assert refused.status_code == 400 and "has 16 channels (0..15)" in refused.json()["error"], refused.text
    # the page asks for 8 channels from "first": past the layer's end they are left out, and the width is said
    tail = client.post("/api/units", json={"run": "cnn", "layer": "features.conv2", "channels": list(range(12, 20)),
                                           "steps": 2, "top": 1}).json()
    assert [c["channel"] for c in tail["channels"]] == [12, 13, 14, 15] and tail["width"] == 16


def test_batch_queue_with_two_workers_answers_every_job_once():
    seen = []

    def run_batch(state, jobs):
        seen.extend(jobs)
        return [(state, j * 2) for j in jobs]
    queue = BatchQueue(run_batch, key=lambda j: j % 3, workers=2, max_batch=4, max_queue=100,
                       make_state=lambda i: i)

    async def go():
        return await asyncio.gather(*(queue.submit(j) for j in range(60)))
    try:
        results = asyncio.run(go())
    finally:
        queue.close()
    assert [r[1] for r in results] == [2 * j for j in range(60)] and sorted(seen) == list(range(60))
    assert queue.stats.largest <= 4 and queue.stats.requests == 60


def test_pictures_are_decoded_off_the_event_loop_once(sources, monkeypatch):
    """An upload is resized (and a folder's photo decoded) in a reader thread, once; a cached
    picture is parsed inline. The stage rule's probe passes ran when the app was made."""
    from netgaze.serve import requests as serve_requests

    threads = []
    resize = serve_requests.to_tensor

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return resize(*args, **kwargs)
    monkeypatch.setattr(serve_requests, "to_tensor", recording)
    app = create_app(sources)
    assert all(s._stages is not None for s in sources)
    with TestClient(base_url=LOCAL_URL, app=app, raise_server_exceptions=False) as c:
        upload = c.post("/api/upload", content=_png(40)).json()["upload"]
        body = {"run": "cnn", "image": {"upload": upload}, "include": []}
        assert c.post("/api/explain", json=body).status_code == 200
        assert c.post("/api/explain", json=body).status_code == 200
        assert c.post("/api/epochs", json={"run": "cnn", "image": {"upload": upload}}).status_code == 200
    assert len(threads) == 1 and threads[0].startswith("netgaze-serve-pictures")


@pytest.mark.parametrize("method", ["scorecam", "guided_gradcam"])
def test_one_layer_methods_take_the_pages_layer_lists(client, serve_runs, method):
    """The Explain page always sends a list of layers; methods that explain one layer at a time
    are called once per layer (they had answered 400 "explains one layer")."""
    run = ng.load_run(serve_runs["cnn"])
    x = run.dataset("test")[3][0][None]
    function = getattr(ng, method)
    for layers in (["features.conv2"], ["features.conv2", "features"]):
        answer = client.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 3},
                                                   "method": method, "layer": layers, "target": {"class": 3}})
        assert answer.status_code == 200, answer.text
        got = _map(answer.json())
        assert list(got) == layers
        for name in layers:
            assert torch.allclose(got[name], function(run.model, x, name, target=ng.Class(3))[0], atol=ATOL)


def test_only_installed_projections_are_offered(client):
    import importlib.util

    has_umap = importlib.util.find_spec("umap") is not None
    offered = client.get("/api/runs").json()["embedding_methods"]
    assert offered == ["pca", "tsne"] + (["umap"] if has_umap else [])
    if not has_umap:   # a 400 that says what to install, not a 500 with a traceback
        answer = client.post("/api/embedding", json={"run": "cnn", "method": "umap", "limit": 40})
        assert answer.status_code == 400 and "umap-learn" in answer.json()["error"]


def test_every_offered_method_answers_with_the_librarys_map(client, serve_runs):
    """What the pages offer comes from the library's registry, and each offered method answers."""
    from netgaze.methods import METHODS

    listing = client.get("/api/runs").json()
    offered = listing["cam_methods"] + listing["pixel_methods"]
    assert sorted(offered) == sorted(METHODS)
    for method in offered:
        body = {"run": "cnn", "image": {"split": "test", "index": 1}, "method": method, "target": {"class": 2}}
        if method in listing["cam_methods"] or method == "guided_gradcam":
            body["layer"] = ["features"]
        answer = client.post("/api/explain", json=body)
        assert answer.status_code == 200, (method, answer.text)
        got = _map(answer.json())
        got = got["features"] if isinstance(got, dict) else got
        assert torch.isfinite(got).all() and got.abs().sum() > 0, method
