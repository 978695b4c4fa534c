"""Explaining in worker processes (what ``netgaze serve`` runs): the same answers as in threads,
503 when full, a dead worker is replaced, no process outlives the server (what a dead worker held:
test_serve_cli.py)."""
from __future__ import annotations

import os
import shutil
import signal
import threading

import numpy as np
import pytest
import torch
from starlette.testclient import TestClient

from netgaze.serve import Settings, Sources, create_app
from netgaze.serve.frames import EXPLAIN, REPLY, REQUEST, FrameReader, reply_frame, request_frame, upload_array, \
    upload_payload
from serve_fixtures import LOCAL_URL, grey_png

BODY = {"run": "cnn", "image": {"split": "test", "index": 3}, "layer": ["features.conv2", -1],
        "target": {"top": 2}, "include": ["map", "map_f32", "overlay"]}


def _workers(client):
    return client.app.state.explorer.queue.children


def _without_timings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in ("ms", "compute_ms")}


@pytest.fixture(scope="module")
def process_client(sources):
    settings = Settings(processes=True, max_queue=2, threads=1)
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, settings), raise_server_exceptions=False) as c:
        yield c


def test_a_worker_process_answers_as_a_worker_thread_does(process_client, sources, one_thread):
    """``one_thread``: as many PyTorch threads here as in the worker: the same summation order, the same bits."""
    with TestClient(base_url=LOCAL_URL, app=create_app(sources)) as threads:
        for body in (BODY, dict(BODY, run="vae", layer=-1, target={"box": [2, 3, 12, 20]}),
                     dict(BODY, method="guided_backprop", layer=None, target={"class": 1}, epoch=0)):
            body = {k: v for k, v in body.items() if v is not None}
            in_process, in_worker = threads.post("/api/explain", json=body), process_client.post("/api/explain", json=body)
            assert in_worker.status_code == in_process.status_code == 200
            assert _without_timings(in_worker.json()) == _without_timings(in_process.json())   # to the last bit
            assert in_worker.json()["ms"] > 0
        wrong = dict(BODY, layer="features.nope")
        assert process_client.post("/api/explain", json=wrong).json() == threads.post("/api/explain", json=wrong).json()


def test_a_full_queue_answers_503_and_the_rest_are_served(process_client, until):
    worker = _workers(process_client)[0].process
    answers = []
    os.kill(worker.pid, signal.SIGSTOP)           # the worker holds what it gets: the queue fills
    try:
        threads = [threading.Thread(target=lambda: answers.append(process_client.post("/api/explain", json=BODY)))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        until(lambda: process_client.get("/api/health").json()["pending"] >= 2,
              "two requests waiting for the stopped worker", timeout=30, every=0.01)
        full = process_client.post("/api/explain", json=BODY)
        assert full.status_code == 503 and full.headers["retry-after"] == "1" and "busy" in full.json()["error"]
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    for thread in threads:
        thread.join(30)
    assert [a.status_code for a in answers] == [200, 200]


def test_a_dead_worker_is_replaced_with_the_uploads(process_client, until):
    upload = process_client.post("/api/upload", content=grey_png(40)).json()["upload"]
    body = {"run": "cnn", "image": {"upload": upload}, "include": ["map"]}
    before = process_client.post("/api/explain", json=body).json()
    old = _workers(process_client)[0].process
    old.kill()
    old.wait(10)

    def replaced():
        assert process_client.get("/api/health").json()["status"] == "ok"      # the explorer serves on
        return _workers(process_client)[0].process is not old and _workers(process_client)[0].started
    until(replaced, "a new worker replaced the killed one", timeout=60, every=0.05)
    after = process_client.post("/api/explain", json=body)
    assert after.status_code == 200 and after.json()["map"] == before["map"]


def test_no_worker_outlives_the_server_and_a_bad_start_is_reported(serve_runs, tmp_path):
    sources = Sources.from_arguments([str(serve_runs["cnn"])])
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, Settings(processes=True))) as c:
        worker = _workers(c)[0].process
        assert c.post("/api/explain", json=dict(BODY, layer=-1)).status_code == 200
    assert worker.poll() is not None
    doomed = tmp_path / "doomed"
    shutil.copytree(serve_runs["cnn"], doomed)
    sources = Sources.from_arguments([str(doomed)])
    shutil.rmtree(doomed)                          # the worker cannot load what the explorer did
    with pytest.raises(Exception, match="explanation worker could not start: no such run folder"):
        with TestClient(base_url=LOCAL_URL, app=create_app(sources, Settings(processes=True))):
            pass


def test_worker_processes_need_sources_they_can_load_again(sources):
    in_memory = Sources(list(sources))
    with pytest.raises(ValueError, match="from_arguments"):
        create_app(in_memory, Settings(processes=True))


def test_frames_survive_any_split_of_the_stream():
    frames = [request_frame(EXPLAIN, 7, b'{"run": "cnn"}'), request_frame(EXPLAIN, 2 ** 40, b""),
              request_frame(EXPLAIN, 9, bytes(range(256)) * 300)]
    stream = b"".join(frames)
    for piece in (1, 5, 4096, len(stream)):
        reader = FrameReader(REQUEST)
        got = [frame for i in range(0, len(stream), piece) for frame in reader.feed(stream[i:i + piece])]
        assert got == [(EXPLAIN, 7, b'{"run": "cnn"}'), (EXPLAIN, 2 ** 40, b""), (EXPLAIN, 9, bytes(range(256)) * 300)]
    reply = list(FrameReader(REPLY).feed(reply_frame(5, 404, b"{}", 3, True)))
    assert reply == [(5, 404, 3, 1, b"{}")]
    picture = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    upload_id, back = upload_array(upload_payload("0123456789abcdef", picture))
    assert upload_id == "0123456789abcdef" and np.array_equal(back, picture)


def test_random_weights_are_the_same_every_time_and_leave_the_rng_alone():
    from netgaze.serve.model_sources import model_source

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = model_source("torchvision:resnet18", None, None).model.state_dict()
    assert torch.equal(torch.rand(3), expected_next)
    second = model_source("torchvision:resnet18", None, None).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
