"""Class units and layer channels: receptive fields by hand, recognition counted against the model itself."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from netgaze.lab.models import build_model
from netgaze.lab.models.registry import ModelError
from netgaze.studies.units import class_units_study, layer_channels_study, receptive_field, spread_conv_layers


def _fake_run(tmp_path, model, classes, size=12):
    """Enough of a Run for the studies: a model, classes, a folder, a tiny test split."""
    images = torch.rand(6, 1, size, size, generator=torch.Generator().manual_seed(0))
    data = [(images[i], i % len(classes)) for i in range(6)]
    return SimpleNamespace(model=model.eval(), path=tmp_path / "run", artifacts=tmp_path / "run" / "artifacts",
                           config={"task": "classify", "model": "toy", "data": "digits",
                                   "data_options": {"size": size}},
                           classes=list(classes), checkpoints=[], epoch=3, dataset=lambda split: data)


def test_receptive_field_by_hand():
    torch.manual_seed(1)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 2, 5, padding=2))
    # 3x3 conv: 3; + 2x2 pool: 4; + 3x3 conv on a stride-2 grid: 4 + 2*2 = 8; + pool: 10; + 5x5 conv at stride 4: 10 + 4*4
    assert [receptive_field(conv, name, 32, 1) for name in ("0", "3", "6")] == [3, 8, 26]
    assert spread_conv_layers(conv) == ["0", "3", "6"]
    assert spread_conv_layers(conv, most=2) == ["0", "6"]


def test_class_units_count_what_the_model_reads(tmp_path, snapshot):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 3))
    run = _fake_run(tmp_path, model, ["a", "b", "c"])
    snap = snapshot(model)
    result = class_units_study(run, steps=6, size=12)
    snap.assert_unchanged()
    pictures = result.maps["pictures"]
    assert pictures.shape == (3, 1, 12, 12)
    with torch.no_grad():
        read = model(pictures).argmax(1)
    manifest = json.loads(result.path.read_text())
    assert manifest["numbers"]["recognised"] == int((read == torch.arange(3)).sum())
    assert manifest["numbers"]["predicted"] == [["a", "b", "c"][int(k)] for k in read]
    assert f"reads {manifest['numbers']['recognised']} of 3" in manifest["figures"][0]["caption"]
    assert manifest["numbers"]["param"] == "pixel"  # a grey model: strokes on black


def test_layer_channels_pick_the_most_active_channels(tmp_path):
    conv1 = nn.Conv2d(1, 3, 3, padding=1)
    with torch.no_grad():  # channel 2 strongly on, channel 0 off, channel 1 weak
        conv1.weight.fill_(0.01)
        conv1.bias.copy_(torch.tensor([-1.0, 0.1, 2.0]))
    model = nn.Sequential(conv1, nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 1, 12, 12))
    run = _fake_run(tmp_path, model, ["a", "b"])
    result = layer_channels_study(run, channels=2, steps=3, size=12)
    per_layer = result.manifest["numbers"]["per_layer"]
    assert per_layer["0"]["channels"] == [2, 1]
    assert per_layer["0"]["receptive_field"] == 3 and per_layer["2"]["receptive_field"] == 5
    assert result.maps["0"].shape == (2, 1, 12, 12)
    assert result.figures[0].is_file()


def test_simple_cnn_pool_grid():
    gap = build_model("simple-cnn", num_classes=10, in_channels=1, channels=[4, 4, 4, 8])
    grid = build_model("simple-cnn", num_classes=10, in_channels=1, channels=[4, 4, 4, 8], pool_grid=3)
    assert gap.classifier.in_features == 8 and grid.classifier.in_features == 72
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        features = grid.features(grid.normalize(x))  # 28 -> 3x3 after three pools: the grid keeps every cell
        assert features.shape[-2:] == (3, 3)
        assert torch.allclose(grid(x), grid.classifier(features.flatten(1)), atol=1e-6)
    with pytest.raises(ModelError, match="pool_grid"):
        build_model("simple-cnn", num_classes=10, in_channels=1, pool_grid=0)


def test_pixel_neuron_pictures_change_only_inside_the_receptive_field(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1))
    run = _fake_run(tmp_path, model, ["a", "b"], size=16)
    result = layer_channels_study(run, layers=["0"], channels=1, steps=4, size=16)
    assert result.manifest["numbers"]["per_layer"]["0"]["receptive_field"] == 3
    from netgaze.featureviz import make_image

    start = make_image("pixel", result.manifest["numbers"]["per_layer"]["0"]["channels"], 1, (16, 16),
                       random_state=0)().detach()
    changed = (result.maps["0"] - start).abs()[0, 0] > 1e-6
    rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
    # the centre unit sees 3x3 pixels; jitter moves the picture by a few pixels between steps
    assert 0 < rows.max() - rows.min() + 1 <= 3 + 2 * 8 and 0 < cols.max() - cols.min() + 1 <= 3 + 2 * 8
    assert not changed[0].any() and not changed[:, 0].any()  # the border stays as it started
