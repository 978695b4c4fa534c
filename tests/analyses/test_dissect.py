"""Network dissection: a unit that IS a mask detector scores IoU 1, streaming equals the exact per-unit loop."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import netgaze as ng
from netgaze.analyses.dissect import DissectionError, concepts_of, dissect
from netgaze.analyses.histograms import UnitHistograms
from netgaze.lab.datasets.base import TensorImageDataset
from netgaze.lab.datasets.shapes import shapes
from netgaze.core.recorder import Recorder


def square_dataset(n=24, size=16):
    """Pictures whose red channel is exactly the object mask (a 4x4 square); labels alternate."""
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 3, size, size)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        y, x = torch.randint(0, size - 4, (2,), generator=g).tolist()
        masks[i, y:y + 4, x:x + 4] = True
    images[:, 0] = masks.float()
    images[:, 1] = torch.rand(n, size, size, generator=g)  # noise
    data = TensorImageDataset(images, torch.arange(n) % 2, ["even", "odd"], name="squares", split="test")
    data.masks = masks
    return data


def detector_model():
    """1x1 conv: unit 0 = red channel (the mask), unit 1 = green channel (noise), unit 2 = 1 - red."""
    model = nn.Sequential(nn.Conv2d(3, 3, 1))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.zero_()
        model[0].weight[0, 0] = 1.0
        model[0].weight[1, 1] = 1.0
        model[0].weight[2, 0] = -1.0
        model[0].bias[2] = 1.0
    return model.eval()


def test_a_unit_that_is_the_mask_has_iou_one_with_any_object(snapshot):
    data = square_dataset()
    model = detector_model()
    snap = snapshot(model)
    # the squares cover 16/256 = 6.25% of the pixels; keeping the top 10% keeps exactly them
    result = dissect(model, data, layers=["0"], quantile=0.10, progress=False, batch_size=7)
    snap.assert_unchanged()
    assert result.concepts == ["even", "odd", "any object", "background"]
    layer = result.layer("0")
    assert layer.iou[0, 2] == pytest.approx(1.0)          # unit 0 on "any object"
    assert layer.iou[0, 0] == pytest.approx(0.5)          # half the squares belong to "even" pictures
    assert layer.iou[0, 3] == 0.0
    assert layer.best[0] == 2 and layer.detector[0]
    # noise: its top 10% falls on the background (15/16 of the pixels) by chance, IoU =
    # 0.1 * 15/16 / (0.1 + 15/16 - 0.1 * 15/16) = 0.099 — above 0.04: large concepts are easy to "detect"
    assert layer.best[1] == 3 and layer.iou[1, 3] == pytest.approx(0.099, abs=0.02)
    # unit 2 (background = 1 everywhere but the square): its top 10% is a tie at 1; the threshold
    # is the top edge, nothing is above it and the IoU is 0 (ties are never split)
    assert layer.iou[2].max() == 0.0
    assert result.table()["rows"][0] == ["0", 3, 2, 2 / 3, 0, 0, 1, 1]


def test_streaming_iou_matches_the_exact_per_unit_loop_on_shapes():
    torch.manual_seed(0)
    data = shapes("test", n=20, size=32, marker_classes=[1])
    model = ng.build_model("simple-cnn", num_classes=5, in_channels=3, mean=data.mean, std=data.std,
                           channels=[4, 6, 6, 6]).eval()
    result = dissect(model, data, layers=["features.conv1", "features.conv4"], quantile=0.01, progress=False,
                     batch_size=8)
    assert result.concepts[-3:] == ["any object", "background", "marker"]
    images, _ = data.tensors()
    sources = concepts_of(data)
    masks = torch.stack([sources[c](torch.arange(len(data))) for c in result.concepts], 1)
    with Recorder(model, result.settings["layers"], grads=False) as rec:
        rec.forward(images)
        activations = dict(rec.activations)
    for layer in result.layers:
        up = F.interpolate(activations[layer.name], size=(32, 32), mode="bilinear", align_corners=False)
        for u in range(up.shape[1]):
            threshold = torch.quantile(up[:, u].double().flatten(), 0.99)
            on = (up[:, u] > threshold)[:, None]
            exact = ((on & masks).sum((0, 2, 3)) / (on | masks).sum((0, 2, 3))).numpy()
            np.testing.assert_allclose(layer.iou[u], exact, atol=0.01)  # histogram bins: see histograms.py
        values = activations[layer.name].flatten(2).amax(2)  # top pictures by peak activation
        assert np.array_equal(layer.top_values, values.T.sort(1, descending=True).values[:, :4].numpy())


def test_histograms_grow_their_range_both_ways_and_keep_counts():
    hist = UnitHistograms(2, regions=1, bins=64)
    first = torch.tensor([[[0.0, 1.0, 2.0]], [[0.5, 1.5, 0.2]]]).expand(-1, 2, -1)  # [N=2, units=2, P=3]
    hist.add(first, torch.ones(2, 1, 3, dtype=torch.bool))
    hist.add(torch.tensor([[[9.0], [-5.0]]]), torch.zeros(1, 1, 1, dtype=torch.bool))
    assert hist.counts[:, 0].sum(1).tolist() == [7.0, 7.0] and hist.counts[:, 1].sum(1).tolist() == [6.0, 6.0]
    edges = hist.edges()
    assert float(edges[0, -1]) > 9.0 and float(edges[1, 0]) <= -5.0
    threshold, first_bin = hist.top_threshold(1 / 7)
    assert hist.counts_from(first_bin)[:, 0].tolist() == [1.0, 1.0]  # unit 0 keeps 9.0 alone
    assert 2.0 < float(threshold[0]) <= 9.0


def test_no_masks_is_a_user_error():
    data = TensorImageDataset(torch.rand(4, 3, 8, 8), torch.zeros(4), ["x"], name="plain", split="test")
    with pytest.raises(DissectionError, match="no object masks"):
        dissect(detector_model(), data, progress=False)


def test_user_concepts_and_saved_artifact(tmp_path):
    data = square_dataset()
    model = detector_model()
    result = ng.dissect(model, data, layers=["0"], concepts={"square": data.masks, "left half": _left(data)},
                        quantile=0.10, progress=False)
    assert result.concepts == ["square", "left half"] and result.layer("0").iou[0, 0] == pytest.approx(1.0)
    path = result.save(tmp_path)
    saved = json.loads(path.read_text())
    assert saved["study"] == "dissection" and saved["layers"][0]["per_concept"] == {"square": 1, "left half": 1}
    assert all((tmp_path / f["file"]).is_file() for f in saved["figures"])


def _left(data):
    left = torch.zeros(len(data), 16, 16, dtype=torch.bool)
    left[:, :, :8] = True
    return left
