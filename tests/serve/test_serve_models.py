"""The explorer on models that are not plain classifiers of the lab: a conditional VAE, a
torchvision segmenter, torchvision and timm classifiers (names, token stages)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

import netgaze as ng
from netgaze.serve import Sources, create_app
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.compute import ExplainJob, WorkerState, explain_batch
from netgaze.serve.uploads import to_tensor
from serve_fixtures import LOCAL_URL, ATOL, answer_map as _map, grey_png as _png


def test_a_conditional_vae_is_explained_with_each_pictures_label(serve_runs):
    """A conditional VAE takes (x, y): its maps are those of ``vae.conditioned(label)``, even
    for a batch of pictures of different labels; an upload (no label) is refused, not guessed."""
    run = ng.load_run(serve_runs["cvae"])
    sources = Sources.from_arguments([str(serve_runs["cvae"])])
    with TestClient(base_url=LOCAL_URL, app=create_app(sources), raise_server_exceptions=False) as c:
        facts = c.get("/api/runs").json()["runs"][0]
        assert facts["stages"][-1].startswith("vae.encoder")
        labels = [int(run.dataset("test")[i][1]) for i in range(40)]
        indices = [labels.index(1), labels.index(7)]                     # two labels in one batch
        state = WorkerState(MemoryLRU(1 << 28), 1 << 28)
        source = sources.get("cvae")
        jobs = [ExplainJob(source, None, "gradcam", (facts["stages"][-1],), False, source.picture("test", i).x,
                           ("box", (4, 4, 20, 20), None), label=source.picture("test", i).label) for i in indices]
        for job, answer in zip(jobs, explain_batch(state, jobs)):
            y = torch.tensor([job.label])
            expected = ng.gradcam(run.model.conditioned(y), job.x[None], job.layers[0],
                                  target=ng.Area(box=(4, 4, 20, 20)))[0]
            assert answer["batch"] == 2 and torch.allclose(torch.tensor(answer["map"]), expected, atol=ATOL)
        one = c.post("/api/explain", json={"run": "cvae", "image": {"split": "test", "index": indices[0]},
                                           "target": {"box": [4, 4, 20, 20]}, "include": ["map"]})
        assert one.status_code == 200 and float(torch.tensor(one.json()["map"]).max()) > 0
        upload = c.post("/api/upload", content=_png(28)).json()["upload"]
        refused = c.post("/api/explain", json={"run": "cvae", "image": {"upload": upload}, "target": {"box": [4, 4, 9, 9]}})
        assert refused.status_code == 400 and "needs each picture's label" in refused.json()["error"]
        points = c.post("/api/embedding", json={"run": "cvae", "limit": 20}).json()["points"]   # labels fed
        assert len(points) == 20 and points[0]["label"] == int(run.dataset("test")[points[0]["index"]][1])
        assert "conditional VAE" in c.post("/api/units", json={"run": "cvae"}).json()["error"]
        curves = c.post("/api/epochs", json={"run": "cvae", "image": {"split": "test", "index": indices[0]},
                                             "target": {"box": [4, 4, 20, 20]}})
        assert curves.status_code == 200 and len(curves.json()["epochs"]) == len(run.checkpoints)


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
    with TestClient(base_url=LOCAL_URL, app=create_app(sources), raise_server_exceptions=False) as c:
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


def test_models_of_users_are_named_as_users_type_and_transformers_get_token_stages(tmp_path, one_thread):
    """torchvision/timm models: layers shown without the wrapper's ``net.`` (both spellings are
    accepted), a ViT's default layer is its last block's tokens (not the patch embedding, the only
    4-D output), and the maps of several layers come back under the names asked for."""
    pytest.importorskip("timm")
    Image.new("RGB", (40, 40), (120, 60, 30)).save(tmp_path / "p0.png")
    resnet = Sources.from_arguments([], model="torchvision:resnet18", images=str(tmp_path), size=64)
    vit = Sources.from_arguments([], model="timm:vit_tiny_patch16_224", images=str(tmp_path), size=224)
    for sources, last in ((resnet, "layer4"), (vit, "blocks.11.norm1")):
        source = next(iter(sources))
        with TestClient(base_url=LOCAL_URL, app=create_app(sources), raise_server_exceptions=False) as c:
            facts = c.get("/api/runs").json()["runs"][0]
            assert facts["stages"][-1] == last and not any(n.startswith("net.") for n in facts["layers"])
            body = {"run": source.id, "image": {"split": "test", "index": 0}, "layer": [facts["stages"][-2], -1],
                    "include": ["map"]}
            answer = c.post("/api/explain", json=body).json()
            assert list(answer["map"]) == [facts["stages"][-2], last]                 # the order asked for
            x = source.picture("test", 0).x[None]
            for name, values in answer["map"].items():
                assert torch.allclose(torch.tensor(values), ng.gradcam(source.model, x, name)[0], atol=ATOL)
            wrapped = c.post("/api/explain", json=dict(body, layer="net." + last)).json()
            assert wrapped["layers"] == [last]
