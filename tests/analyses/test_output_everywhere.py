"""output= in every study and analysis that runs a model (issue 23, part 4): a model whose output
is a dict that needs ``output=`` gives the same numbers as the same model returning the tensor."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

import netgaze as ng


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


class Keyed(nn.Module):
    """The same network answering {"scores": logits, "features": ...}: needs output="scores"."""

    def __init__(self, plain: Plain):
        super().__init__()
        self.features, self.head = plain.features, plain.head

    def forward(self, x):
        f = self.features(x)
        return {"features": f.mean((2, 3)), "scores": self.head(f.mean((2, 3)))}


class Pictures(Dataset):
    classes = ["a", "b", "c"]

    def __init__(self, n=18):
        g = torch.Generator().manual_seed(3)
        self.x = torch.rand(n, 3, 16, 16, generator=g)
        self.labels = torch.arange(n) % 3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.labels[i])


@pytest.fixture(scope="module")
def models():
    plain = Plain().eval()
    return plain, Keyed(plain).eval()


def test_keyed_model_needs_output(models):
    with pytest.raises(ng.RecorderError, match="output="):
        ng.gradcam(models[1], torch.rand(1, 3, 16, 16), "features.5")


def test_studies_take_output(models):
    from netgaze.studies.across_layers import compare_layers, layers_study
    from netgaze.studies.across_models import look_numbers, models_study
    from netgaze.studies.epochs import epochs_study

    plain, keyed = models
    data = Pictures()
    x, y = data.x[:6], data.labels[:6]
    a, b = compare_layers(plain, x, ["features.2", "features.5"]), \
        compare_layers(keyed, x, ["features.2", "features.5"], output="scores")
    assert torch.equal(a["target"], b["target"])
    for name in a["layers"]:
        assert torch.equal(a["gradcam"][name], b["gradcam"][name])
        assert torch.equal(a["guided_gradcam"][name], b["guided_gradcam"][name])
    assert look_numbers(plain, x, y, None) == look_numbers(keyed, x, y, None, output="scores")
    for study in (layers_study, models_study, epochs_study):      # run-folder studies pass it down
        assert "output" in inspect.signature(study).parameters


def test_analyses_take_output(models, tmp_path):
    from netgaze.analyses.dissect import dissect
    from netgaze.analyses.strategies import strategies
    from netgaze.analyses.top_examples import top_examples
    from netgaze.embed import features

    plain, keyed = models
    data = Pictures()
    s1 = strategies(plain, data, method="gradcam", layer="features.5", n_clusters=2, progress=False)
    s2 = strategies(keyed, data, method="gradcam", layer="features.5", n_clusters=2, progress=False, output="scores")
    for c in s1.maps:
        np.testing.assert_array_equal(s1.maps[c], s2.maps[c])
        np.testing.assert_array_equal(s1.predictions[c], s2.predictions[c])
    t1 = top_examples(plain, data, "features.5", k=3, progress=False)
    t2 = top_examples(keyed, data, "features.5", k=3, progress=False, output="scores")
    np.testing.assert_array_equal(t1.indices, t2.indices)
    concepts = {"left": torch.zeros(len(data), 16, 16, dtype=torch.bool).index_fill_(2, torch.arange(8), True)}
    d1 = dissect(plain, data, ["features.5"], concepts, progress=False)
    d2 = dissect(keyed, data, ["features.5"], concepts, progress=False, output="scores")
    np.testing.assert_array_equal(np.asarray(d1.layers[0].iou), np.asarray(d2.layers[0].iou))
    f1 = features(plain, data, "features.5", progress=False)
    f2 = features(keyed, data, "features.5", progress=False, output="scores")
    np.testing.assert_array_equal(f1.features, f2.features)
    np.testing.assert_array_equal(f1.predictions, f2.predictions)


def test_top_examples_on_a_token_layer():
    """A ViT's tokens are read as a map (prefix token dropped): each channel's peak over the patch tokens."""
    transformers = pytest.importorskip("transformers")
    from netgaze.analyses.top_examples import top_examples

    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=16, patch_size=4, hidden_size=8, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=16, num_labels=3)
    model = transformers.ViTForImageClassification(config).eval()
    data = Pictures(12)
    layer = "vit.layers.0.layernorm_before"
    seen = []
    handle = model.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        model(data.x)
    handle.remove()
    patches = seen[0][:, 1:, :]                                  # [12, 16, 8] without the class token
    peaks = patches.amax(1)                                      # [12, 8]
    found = top_examples(model, data, layer, channels=[0, 5], k=3, progress=False)
    assert found.feature_size == (4, 4)
    for row, c in enumerate([0, 5]):
        expected = torch.sort(peaks[:, c], descending=True, stable=True).indices[:3].tolist()
        assert found.indices[row].tolist() == expected
        np.testing.assert_allclose(found.values[row], peaks[expected, c].numpy(), rtol=1e-5)
