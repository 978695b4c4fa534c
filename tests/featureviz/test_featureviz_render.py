"""The renderer: batch equals one by one, seeded, model left as found, grey models, PNG output."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import netgaze.featureviz as fv
from netgaze.featureviz.render import image_channels
from netgaze.featureviz import channel, class_logit, render, total_variation, visualize
from netgaze.core.layers import LayerError


def _rgb_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
                         nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Dropout(0.5),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def test_batch_equals_channels_one_by_one():
    model = _rgb_model()
    together = visualize(model, "3", [0, 4, 7], steps=6, size=20)
    for i, c in enumerate([0, 4, 7]):
        alone = visualize(model, "3", [c], steps=6, size=20)
        assert torch.allclose(together[i], alone[0], atol=1e-5)
    chunked = visualize(model, "3", [0, 4, 7], steps=6, size=20, batch_size=2)
    assert torch.allclose(together, chunked, atol=1e-5)
    again = visualize(model, "3", [0, 4, 7], steps=6, size=20)
    assert torch.equal(together, again)
    other_seed = visualize(model, "3", [0, 4, 7], steps=6, size=20, random_state=1)
    assert not torch.allclose(together, other_seed)


def test_renders_raise_the_unit_and_stay_in_range():
    model = _rgb_model()
    start = visualize(model, "3", [1, 2], steps=0, size=24)
    end = visualize(model, "3", [1, 2], steps=20, size=24)
    obj = channel("3", [1, 2])
    assert (fv.objective_scores(model, obj, end) > fv.objective_scores(model, obj, start) + 1e-3).all()
    assert end.shape == (2, 3, 24, 24) and end.min() >= 0 and end.max() <= 1
    logits = visualize(model, "logits", steps=10, size=16)  # every class: found by a trial pass
    assert logits.shape == (5, 3, 16, 16)
    scores = fv.objective_scores(model, class_logit(list(range(5))), logits)
    grey = fv.objective_scores(model, class_logit(list(range(5))), torch.full_like(logits, 0.5))
    assert (scores > grey).all()


def test_model_left_as_found_also_after_an_error(snapshot):
    model = _rgb_model().train()
    model[0].weight.requires_grad_(False)
    snap = snapshot(model)
    visualize(model, "4", [0, 1], steps=3, size=16, regularizer=0.1 * total_variation())
    snap.assert_unchanged()
    with pytest.raises((IndexError, RuntimeError)):
        visualize(model, "4", [99], steps=2, size=16)
    snap.assert_unchanged()
    with pytest.raises(LayerError):
        visualize(model, "nope", [0], steps=2, size=16)
    snap.assert_unchanged()


def test_grey_models_get_one_channel_and_neuron_objective():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 10 * 10, 3))
    images = visualize(model, "0", [0, 3], steps=4, size=12, objective="neuron", param="pixel")
    assert images.shape == (2, 1, 12, 12)
    assert image_channels(model) == 1


def test_normalisation_and_png(tmp_path):
    model = _rgb_model()
    path = tmp_path / "grid.png"
    images = visualize(model, "3", range(4), steps=3, size=16, mean=fv.IMAGENET_MEAN, std=fv.IMAGENET_STD,
                       out=path)
    picture = np.asarray(Image.open(path))
    assert picture.ndim == 3 and picture.shape[0] > 2 * 16 and picture.shape[1] > 2 * 16
    assert picture.std() > 5  # not a blank grid
    with pytest.raises(ValueError, match="objective must be"):
        visualize(model, "3", [0], objective="spam")
    assert images.shape == (4, 3, 16, 16)


def test_render_accepts_composed_objective_and_keys():
    model = _rgb_model()
    obj = channel("3", [2, 2]) - 1e-2 * fv.diversity("3") - 0.1 * total_variation()
    images = render(model, obj, 2, 16, steps=4, keys=[10, 11])
    assert images.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="keys"):
        render(model, obj, 2, 16, steps=1, keys=[1])
