"""`netgaze embed` end to end on a stand-in run (a tiny model and dataset with a nuisance attribute)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

import netgaze.lab.runs as runs
from netgaze.cli import main


class Bright(Dataset):
    """Class k = brightness k/2 (+ noise); background() a nuisance independent of the class."""
    classes = ["dark", "grey", "light"]

    def __init__(self, n=60):
        g = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 3
        self.x = (self.y.float().view(-1, 1, 1, 1) / 2 + 0.05 * torch.randn(n, 1, 8, 8, generator=g)).clamp(0, 1)
        self.bg = torch.randint(0, 2, (n,), generator=g)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])

    def background(self, i):
        return int(self.bg[i])


class FakeRun:
    def __init__(self, model, task, path):
        self.model, self.task, self.path = model, task, Path(path)
        self.classes, self.artifacts = Bright.classes, Path(path) / "artifacts"

    def dataset(self, split):
        assert split == "test"
        return Bright()


def tiny_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def test_embed_command_writes_every_artifact(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, "load_run", lambda path, epoch=None, data=None: FakeRun(tiny_cnn(), "classify", path))
    out, board = tmp_path / "out", tmp_path / "board"
    (tmp_path / "run").mkdir()
    code = main(["embed", "--run", str(tmp_path / "run"), "--layer", "-1", "--method", "pca", "--dims", "2",
                 "--tensorboard", str(board), "--out", str(out), "--no-progress"])
    assert code == 0
    knn = json.loads((out / "knn.json").read_text())
    assert knn["layer"] == "3" and knn["n"] == 60    # the last stage's output (after the ReLU)
    assert knn["label_features"] > 0.95 and knn["label_embedding"] > 0.95     # brightness separates classes
    assert knn["nuisance_features"] < 0.75 and knn["nuisance_chance"] <= 0.6   # background does not cluster
    saved = np.load(out / "embedding.npz")
    assert saved["features"].shape == (60, 6) and saved["embedding"].shape == (60, 2)
    np.testing.assert_array_equal(saved["labels"], np.arange(60) % 3)
    assert (out / "embedding.html").stat().st_size > 1000 and (out / "embedding.png").exists()
    config = (board / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "run-3-test-pca-2d/pca-2d"' in config and "single_image_dim: 8" in config
    header, first = (board / "run-3-test-pca-2d-metadata.tsv").read_text().splitlines()[:2]
    assert header == "label\tprediction\tsplit" and first.startswith("dark\t") and first.endswith("\ttest")
    assert "kNN (k=5) label features" in capsys.readouterr().out


def test_embed_command_vae_means_and_user_errors(tmp_path, monkeypatch, capsys):
    from netgaze.lab.models import build_model

    torch.manual_seed(0)
    vae = build_model("vae-linear", in_channels=1, image_size=8, latent=3, hidden=16)
    monkeypatch.setattr(runs, "load_run", lambda path, epoch=None, data=None: FakeRun(vae, "reconstruct", path))
    out = tmp_path / "vae"
    assert main(["embed", "--run", str(tmp_path), "--method", "pca", "--out", str(out), "--no-progress"]) == 0
    saved = np.load(out / "embedding.npz")
    with torch.no_grad():
        mu = vae.encode(Bright().x)[0].numpy()
    np.testing.assert_allclose(saved["features"], mu, rtol=1e-5, atol=1e-6)
    assert "predictions" not in saved.files
    assert main(["embed", "--run", str(tmp_path), "--layer", "encoder.0", "--method", "pca", "--out", str(out),
                 "--no-progress"]) == 0                   # a layer named as in the run's model
    assert np.load(out / "embedding.npz")["features"].shape == (60, 16)
    assert main(["embed", "--run", str(tmp_path), "--layer", "encodr", "--out", str(out)]) == 2
    assert "unknown layer 'encodr'" in capsys.readouterr().err
    assert main(["embed", "--run", str(tmp_path), "--layer", "3", "--out", str(out)]) == 2
