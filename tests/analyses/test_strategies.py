"""ng.strategies end to end on a hand-built model whose Grad-CAM map is the picture's blob."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import netgaze as ng
from netgaze.analyses.strategies import StrategiesError, strategies
from netgaze.lab.datasets.base import TensorImageDataset

SIZE = 16


def blob_dataset():
    """Class 0: 12 pictures with a blob top-left, 20 with a blob bottom-right; class 1: 10 bottom-right.

    The "object" mask is the bottom-right quadrant, so the top-left strategy lies outside it.
    """
    g = torch.Generator().manual_seed(0)
    images, labels, corner = [], [], []
    for label, top_left, count in [(0, True, 12), (0, False, 20), (1, False, 10)]:
        for _ in range(count):
            image = torch.zeros(3, SIZE, SIZE)
            dy, dx = torch.randint(0, 3, (2,), generator=g).tolist()
            y, x = (1 + dy, 1 + dx) if top_left else (10 + dy, 10 + dx)
            image[:, y:y + 4, x:x + 4] = 1.0
            images.append(image)
            labels.append(label)
            corner.append(top_left)
    order = torch.randperm(len(images), generator=g)
    data = TensorImageDataset(torch.stack(images)[order], torch.tensor(labels)[order], ["a", "b"], name="blobs",
                              split="test")
    masks = torch.zeros(len(images), SIZE, SIZE, dtype=torch.bool)
    masks[:, 8:, 8:] = True
    data.masks = masks
    return data, np.asarray(corner)[order.numpy()]


def blob_model():
    """conv(1x1, sum of channels) -> ReLU -> global average pool -> linear(1 -> 2, both positive)."""
    model = nn.Sequential(nn.Conv2d(3, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
        model[4].weight.copy_(torch.tensor([[2.0], [1.0]]))
        model[4].bias.zero_()
    return model.eval()


def test_two_planted_strategies_are_found_and_the_outside_one_is_flagged(tmp_path, snapshot):
    data, top_left = blob_dataset()
    model = blob_model()
    snap = snapshot(model)
    found = strategies(model, data, classes=[0], layer="1", resolution=8, progress=False)
    snap.assert_unchanged()
    labels = data.labels.numpy()
    assert np.array_equal(found.indices[0], np.flatnonzero(labels == 0))  # class 0's pictures, dataset order
    clusters = found.clusters[0]
    assert found.spectral[0].n_clusters == 2  # chosen by the eigengap
    corner = top_left[found.indices[0]]
    assert set(clusters[corner]) == {1} and set(clusters[~corner]) == {0}  # cluster 0 = the larger (20)
    big, small = found.summaries[0]
    assert (big.size, small.size) == (20, 12) and big.share == pytest.approx(20 / 32)
    assert big.energy_in_object == pytest.approx(1.0) and small.energy_in_object == pytest.approx(0.0)
    assert small.shortcut and not big.shortcut and small.peak == "top-left" and big.peak == "bottom-right"
    assert big.accuracy == 1.0 and small.accuracy == 1.0  # class 0's logit is twice class 1's
    assert set(small.typical) <= set(found.indices[0][corner]) and len(small.typical) == 8
    assert small.mean_map[:4, :4].sum() > 0.9
    path = found.save(tmp_path)
    saved = json.loads(path.read_text())
    assert saved["study"] == "strategies" and saved["classes"]["0"]["clusters"] == clusters.tolist()
    assert "likely shortcut" in " ".join(saved["notes"])
    assert all((tmp_path / f["file"]).is_file() for f in saved["figures"])


def test_fixed_clusters_resume_from_shards_and_lazy_name(tmp_path):
    data, _ = blob_dataset()
    model = blob_model()
    first = ng.strategies(model, data, classes=["a"], layer="1", n_clusters=3, out=tmp_path / "maps",
                          resolution=8, progress=False)
    assert first.spectral[0].n_clusters == 3 and (tmp_path / "maps" / "index.json").is_file()
    again = strategies(model, data, classes=[0], layer="1", n_clusters=3, out=tmp_path / "maps", resolution=8,
                       progress=False)
    assert np.array_equal(first.clusters[0], again.clusters[0])


def test_unknown_class_is_a_user_error():
    data, _ = blob_dataset()
    with pytest.raises(StrategiesError, match="unknown class"):
        strategies(blob_model(), data, classes=["zebra"], layer="1", progress=False)
