"""S1: stages of known architectures, Grad-CAM across layers, the study's files and numbers."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torchvision

import netgaze as ng
from netgaze.metrics import energy_inside
from netgaze.studies import compare_layers, layers_study, pick_indices, stage_names
from netgaze.studies.across_layers import coverage
from tiny_runs import tiny_run


def test_stage_names_of_known_families():
    # the core rule (netgaze.core.stages): one stage per resolution, the last is layer=-1
    assert stage_names(torchvision.models.resnet18()) == ["layer1", "layer2", "layer3", "layer4"]
    # VGG11: the output at each resolution; the last (after the final pool) is `features`.
    assert stage_names(torchvision.models.vgg11()) == ["features.1", "features.4", "features.9",
                                                       "features.14", "features.19", "features"]
    assert stage_names(torchvision.models.alexnet()) == ["features.1", "features.4", "features.11", "features"]
    blocks = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Sequential(nn.Conv2d(4, 4, 3), nn.ReLU()),
                           nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert stage_names(blocks, (3, 32, 32)) == ["0", "1"]
    with pytest.raises(ng.LayerError):
        stage_names(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), (1, 2, 2))


def test_many_stages_are_thinned_to_six_ending_with_the_last():
    vgg = torchvision.models.vgg16()  # 6 resolutions -> 6 stages
    assert len(stage_names(vgg)) == 6
    deep = nn.Sequential(*[m for _ in range(7) for m in (nn.Conv2d(2, 2, 3, padding=1), nn.MaxPool2d(2))])
    full = ng.layer_names(deep, stages=True, input_shape=(2, 256, 256))   # 256, 128, ..., 2: 8 stages
    assert full == ["0", "2", "4", "6", "8", "10", "12", "13"]
    names = stage_names(deep, (2, 256, 256))
    assert len(names) == 6 and names[0] == "0" and names[-1] == "13"


def test_energy_inside_hand_values():
    maps = torch.tensor([[[1.0, 3.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]])
    masks = torch.tensor([[[False, True], [False, False]], [[True, True], [True, True]], [[True, False], [False, False]]])
    # an all-zero map says nothing: it scores the object's area share, like a flat map
    assert energy_inside(maps, masks).tolist() == [0.75, 1.0, 0.25]
    assert coverage(maps).tolist() == [0.25, 0.0, 0.0]  # a constant map normalises to zeros


def test_pick_indices_round_robin_and_seeded():
    labels = [0, 0, 0, 1, 1, 2]
    picked = pick_indices(labels, 5, seed=3)
    assert picked == pick_indices(labels, 5, seed=3)
    assert [labels[i] for i in picked[:3]] == [0, 1, 2]  # one per class first, in class order
    assert len(set(picked)) == 5
    assert sorted(pick_indices(labels, 10)) == list(range(6))


def test_guided_gradcam_per_layer_equals_the_method(snapshot):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(6, 3))
    x = torch.rand(2, 3, 8, 8)
    snap = snapshot(model)
    result = compare_layers(model, x, target=[2, 1])
    assert result["layers"] == ["1", "4"]      # each resolution's output: after the ReLUs
    assert result["target"].tolist() == [2, 1]
    for name in result["layers"]:
        expected = ng.guided_gradcam(model, x, layer=name, target=ng.Class([2, 1]))
        assert torch.allclose(result["guided_gradcam"][name], expected, atol=1e-7)
        assert torch.allclose(result["gradcam"][name], ng.gradcam(model, x, layer=name, target=ng.Class([2, 1])))
    snap.assert_unchanged()


def test_layers_study_on_a_run_writes_numbers_that_match_a_recomputation(tmp_path):
    from netgaze.lab.runs import load_run

    run = load_run(tiny_run())
    result = layers_study(run, n_images=3, out=tmp_path)
    manifest = json.loads((tmp_path / "layers.json").read_text())
    assert manifest["study"] == "layers" and manifest["model"] == "simple-cnn" and manifest["epoch"] == 2
    assert manifest["layers"] == ["features.relu1", "features.relu2", "features.relu3", "features"]
    assert (tmp_path / "layers.png").is_file()
    test = run.dataset("test")
    x = torch.stack([test[i][0] for i in manifest["images"]])
    masks = torch.stack([torch.as_tensor(test.mask(i)) for i in manifest["images"]])
    pred = run.model(x).argmax(1)
    cam = ng.gradcam(run.model, x, layer="features", target=ng.Class(pred.tolist()))
    expected = float(energy_inside(cam, masks).mean())
    assert manifest["numbers"]["per_layer"]["features"]["energy_in_mask"] == pytest.approx(expected, abs=1e-5)
    assert result.path == tmp_path / "layers.json"
