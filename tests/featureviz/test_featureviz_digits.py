"""Quality bar: the class images of a digits classifier look like digits to the classifier itself.

A small CNN trained for a few seconds on scikit-learn's digits (28x28) must score its own
class visualisations as the intended digit for at least 8 of the 10 classes. The images are
regularised (pixel parameterization, L1 towards a black background, total variation) so
they look like strokes on black, not adversarial noise; set NETGAZE_FEATUREVIZ_PNG=path to
write the grid and look at it.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.featureviz import l1, total_variation, visualize


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from netgaze.lab.datasets import digits
        data = digits("train")
        images = torch.stack([data[i][0] for i in range(len(data))])
        labels = torch.tensor([int(data[i][1]) for i in range(len(data))])
        return images, labels
    except ImportError:
        from sklearn.datasets import load_digits
        bunch = load_digits()
        small = torch.from_numpy(bunch.images.astype(np.float32) / 16).unsqueeze(1)
        images = F.interpolate(small, size=(28, 28), mode="bilinear", antialias=True).clamp(0, 1)
        return images, torch.from_numpy(bunch.target)


@pytest.fixture(scope="session")
def digits_classifier():
    images, labels = _digits()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images), 64):
            idx = order[start:start + 64]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9
    return model, images, labels


def test_class_images_are_recognised_as_their_class(digits_classifier, snapshot):
    model, images, labels = digits_classifier
    snap = snapshot(model)
    pictures = visualize(model, "logits", range(10), steps=128, size=28, param="pixel",
                         regularizer=30 * l1(0.0) + 30 * total_variation(),
                         out=os.environ.get("NETGAZE_FEATUREVIZ_PNG"), ncols=10)
    snap.assert_unchanged()
    assert pictures.shape == (10, 1, 28, 28)
    with torch.no_grad():
        predicted = model(pictures).argmax(1)
    assert int((predicted == torch.arange(10)).sum()) >= 8, predicted.tolist()
    # Digit-like, not noise: a mostly dark background and smooth strokes, as in the data.
    assert float(pictures.mean()) < 0.45
    tv = (pictures[..., 1:, :] - pictures[..., :-1, :]).abs().mean()
    data_tv = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    assert float(tv) < 2.5 * float(data_tv)
