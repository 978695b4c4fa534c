"""The explorer on a run written by ``RunWriter`` around the user's own class: its worker processes
(fresh interpreters) rebuild the model by import path because the command trusted that module,
and every page's endpoint answers; without trust the run is refused in one line."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from starlette.testclient import TestClient
from torch.utils.data import TensorDataset

import netgaze as ng
from netgaze.lab.models import UntrustedCodeError, trusting_code
from netgaze.serve import Settings, Sources, create_app
from serve_fixtures import LOCAL_URL

USER_CODE = Path(__file__).resolve().parents[1] / "lab" / "user_code"
MODULE = "netgaze_test_usercnn"


@pytest.fixture()
def user_run(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(USER_CODE), os.environ.get("PYTHONPATH", "")]))
    from netgaze_test_usercnn import SmallCNN

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(12, 1, 16, 16, generator=g), torch.arange(12) % 3
    model = SmallCNN(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with ng.RunWriter(tmp_path / "mine", model=model, build=f"{MODULE}:SmallCNN", data={"test": TensorDataset(x, y)},
                      classes=["a", "b", "c"]) as writer:
        for epoch in (1, 2):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            writer.save(epoch, model, metrics={"val_acc": 0.25 * epoch})
    return tmp_path / "mine"


def test_worker_processes_rebuild_the_users_class_when_the_command_trusted_it(user_run):
    with pytest.raises(UntrustedCodeError, match="--trust-code"):
        Sources.from_arguments([str(user_run)])
    with trusting_code(MODULE):                  # what `netgaze serve RUN --trust-module MODULE` does
        sources = Sources.from_arguments([str(user_run)])
        assert sources.recipe["trust_code"] == [MODULE]
    settings = Settings(processes=True, threads=1)
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, settings), raise_server_exceptions=False) as client:
        run_id = client.get("/api/runs").json()["runs"][0]["id"]
        for epoch in (1, 2):                     # epoch 1 is rebuilt in the worker from the import path
            body = {"run": run_id, "image": {"split": "test", "index": 3}, "layer": -1, "epoch": epoch,
                    "target": {"class": 1}, "include": ["map"]}
            answer = client.post("/api/explain", json=body)
            assert answer.status_code == 200, answer.text
            model = ng.load_run(user_run, epoch=epoch, trust_code=MODULE).model
            x = ng.load_run(user_run, trust_code=MODULE).dataset("test")[3][0][None]
            expected = ng.gradcam(model, x, target=ng.Class(1))[0]
            got = torch.tensor(answer.json()["map"])
            assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-5)
        curves = client.post("/api/epochs", json={"run": run_id, "image": {"split": "test", "index": 2}})
        assert curves.status_code == 200, curves.text
        curves = curves.json()
        assert curves["metric"] == "val_acc" and [r["metric"] for r in curves["epochs"]] == [0.25, 0.5]
        points = client.post("/api/embedding", json={"run": run_id, "method": "pca", "limit": 12}).json()["points"]
        assert len(points) == 12
        units = client.post("/api/units", json={"run": run_id, "layer": "features.2", "channels": [0, 1],
                                                "steps": 2, "top": 2})
        assert units.status_code == 200, units.text
        pictures = client.get(f"/api/runs/{run_id}/pictures?split=test").json()
        assert len(pictures["pictures"]) == 12
        assert client.get(f"/api/runs/{run_id}/pictures?split=train").status_code == 404   # no train split kept
