"""top_examples against a brute-force loop over every picture and channel."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

import netgaze as ng
from netgaze.analyses.top_examples import TopExamplesError, top_examples


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(5, 6, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2)).eval()


def data(n=37):
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.rand(n, 3, 16, 16, generator=g), torch.arange(n) % 2)


def test_matches_a_brute_force_loop_over_pictures_and_channels(snapshot):
    model, dataset = small_model(), data()
    snap = snapshot(model)
    result = top_examples(model, dataset, "4", k=5, batch_size=8, progress=False)
    snap.assert_unchanged()
    assert result.channels == list(range(6)) and result.feature_size == (8, 8) and result.input_size == (16, 16)
    with torch.no_grad():
        features = torch.stack([model[:5](dataset[i][0][None])[0] for i in range(len(dataset))])  # [N, 6, 8, 8]
    for c in range(6):
        peaks = features[:, c].flatten(1).amax(1)
        order = sorted(range(len(dataset)), key=lambda i: (-float(peaks[i]), i))[:5]
        assert result.indices[c].tolist() == order
        np.testing.assert_allclose(result.values[c], peaks[order].numpy(), rtol=1e-6)
        for j, i in enumerate(order):
            y, x = result.peaks[c, j]
            assert float(features[i, c, y, x]) == pytest.approx(float(peaks[i]))
            y0, x0, y1, x1 = result.boxes[c, j]
            assert (y1 - y0, x1 - x0) == (8, 8)  # default crop: 3 cells of 2 px, at least 8 px
            assert y0 <= 2 * y + 1 < y1 and x0 <= 2 * x + 1 < x1  # the crop holds the peak's centre


def test_chosen_channels_crops_and_artifact(tmp_path):
    model, dataset = small_model(), data()
    result = ng.top_examples(model, dataset, "4", channels=[5, 2], k=3, crop=6, progress=False)
    assert result.channels == [5, 2]
    full = top_examples(model, dataset, "4", k=3, progress=False)
    assert np.array_equal(result.indices[0], full.indices[5]) and np.array_equal(result.indices[1], full.indices[2])
    crops = result.crops(5)
    y0, x0, y1, x1 = result.boxes[0, 0]
    assert crops.shape == (3, 3, 6, 6) and torch.equal(crops[0], dataset[int(result.indices[0, 0])][0][:, y0:y1, x0:x1])
    path = result.save(tmp_path, maximized=torch.rand(2, 3, 16, 16))
    saved = json.loads(path.read_text())
    assert saved["study"] == "top_examples" and saved["indices"] == result.indices.tolist()
    assert all((tmp_path / f["file"]).is_file() for f in saved["figures"])


@pytest.mark.parametrize("bad", [dict(k=0), dict(k=100), dict(channels=[6])])
def test_bad_requests_are_user_errors(bad):
    with pytest.raises(TopExamplesError):
        top_examples(small_model(), data(), "4", progress=False, **bad)
