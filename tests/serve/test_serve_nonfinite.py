"""A run whose weights are NaN (a diverged training) or a --model whose weights overflow: the
explorer answers a 4xx naming the weights, never ``tench (nan%)``; the other runs keep working
(issue 24, silent wrong results)."""
from __future__ import annotations

import hashlib
import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from serve_fixtures import LOCAL_URL

from netgaze.serve import Settings, Sources, create_app


def _nan_run(source, folder):
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, folder)
    checkpoints = sorted((folder / "checkpoints").glob("epoch-*.safetensors"))
    weights = checkpoints[-1]
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
               for k, v in load_file(weights).items()}, weights)
    meta = weights.with_suffix(".json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()),
                                "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}))
    return weights


@pytest.fixture(scope="module")
def nan_setup(serve_runs, tmp_path_factory):
    import torchvision

    root = tmp_path_factory.mktemp("nonfinite")
    weights = _nan_run(serve_runs["cnn"], root / "diverged")
    state = torchvision.models.resnet18(num_classes=3).state_dict()
    state["fc.weight"] = torch.full_like(state["fc.weight"], 3e38)      # finite weights whose scores overflow
    torch.save(state, root / "overflow.pth")
    return root, weights


@pytest.mark.parametrize("processes", [False, True])
def test_nan_weights_are_a_422_naming_the_checkpoint_and_the_others_still_work(serve_runs, nan_setup, processes):
    root, weights = nan_setup
    sources = Sources.from_arguments([str(serve_runs["cnn"]), str(root / "diverged")])
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, Settings(processes=processes)),
                    raise_server_exceptions=False) as c:
        bad = c.post("/api/explain", json={"run": "diverged", "image": {"split": "test", "index": 0},
                                           "method": "gradcam"})
        assert bad.status_code == 422, bad.text
        error = bad.json()["error"]
        assert "\n" not in error and "NaN or infinite" in error and str(weights.name) in error
        good = c.post("/api/explain", json={"run": "cnn", "image": {"split": "test", "index": 0},
                                            "method": "gradcam"})
        assert good.status_code == 200
        assert c.get("/api/runs").status_code == 200


def test_a_model_whose_scores_overflow_is_a_422_naming_its_weights_file(nan_setup):
    root, _ = nan_setup
    sources = Sources.from_arguments([], model="torchvision:resnet18", weights=str(root / "overflow.pth"), size=32)
    with TestClient(base_url=LOCAL_URL, app=create_app(sources), raise_server_exceptions=False) as c:
        buffer = io.BytesIO()
        Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(buffer, format="PNG")
        uploaded = c.post("/api/upload", content=buffer.getvalue(), headers={"content-type": "image/png"})
        assert uploaded.status_code == 200, uploaded.text
        answer = c.post("/api/explain", json={"run": "torchvision-resnet18", "image": {"upload": uploaded.json()["upload"]},
                                              "method": "gradcam"})
        assert answer.status_code == 422, answer.text
        assert "overflow.pth" in answer.json()["error"] and "nan%" not in answer.text


def test_every_page_of_a_nan_run_is_the_same_422(serve_runs, nan_setup):
    """The picture list, Units, Embedding and Epochs of a diverged run: one 422 naming the checkpoint, never
    predictions with p: null or pictures computed from NaN."""
    root, weights = nan_setup
    sources = Sources.from_arguments([str(serve_runs["cnn"]), str(root / "diverged")])
    with TestClient(base_url=LOCAL_URL, app=create_app(sources), raise_server_exceptions=False) as c:
        answers = {"pictures": c.get("/api/runs/diverged/pictures"),
                   "units": c.post("/api/units", json={"run": "diverged", "layer": "features", "channels": [0],
                                                        "steps": 4}),
                   "embedding": c.post("/api/embedding", json={"run": "diverged", "method": "pca", "limit": 20})}
        for page, answer in answers.items():
            assert answer.status_code == 422, (page, answer.text)
            error = answer.json()["error"]
            assert "\n" not in error and "NaN or infinite" in error and weights.name in error, (page, error)
        assert c.get("/api/runs/cnn/pictures").status_code == 200
