"""The default-layer rule: the last spatial stage's output, as the peers recommend per family."""
import pytest
import timm
import torch
import torch.nn as nn
import torchvision

import netgaze as ng
from netgaze.core import stages

TORCHVISION = {  # pytorch-grad-cam's README recommendations, as module names
    "resnet18": "layer4",
    "vgg11": "features",
    "densenet121": "features",
    "convnext_tiny": "features.7",
    "swin_t": "features.7.1.norm1",
    "vit_b_32": "encoder.layers.encoder_layer_11.ln_1",
    "mobilenet_v3_small": "features.12",
}


@pytest.mark.parametrize("name", list(TORCHVISION))
def test_torchvision_last_stage(name):
    model = torchvision.models.get_model(name, weights=None)
    assert ng.resolve_layer(model, -1)[0] == TORCHVISION[name]
    assert ng.layer_names(model, stages=True)[-1] == TORCHVISION[name]


def test_timm_transformers_read_the_last_blocks_first_norm():
    vit = timm.create_model("vit_tiny_patch16_224", img_size=64)
    assert ng.layer_names(vit, stages=True, input_shape=(3, 64, 64))[-3:] == \
        ["blocks.9.norm1", "blocks.10.norm1", "blocks.11.norm1"]
    swin = timm.create_model("swin_tiny_patch4_window7_224")
    assert ng.layer_names(swin, stages=True) == [f"layers.{i}.blocks.{b}.norm1" for i, b in enumerate((1, 1, 5, 1))]


def test_negative_integers_count_stages_from_the_end():
    model = torchvision.models.resnet18()
    assert [ng.resolve_layer(model, i)[0] for i in (-1, -2, -3, -4)] == ["layer4", "layer3", "layer2", "layer1"]
    with pytest.raises(ng.LayerError, match="4 stages"):
        ng.resolve_layer(model, -5)


class UserNet(nn.Module):
    """A model the rule has never seen: a stem, two blocks, a head called differently."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.body = nn.ModuleList([nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
                                   for _ in range(2)])
        self.to_logits = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        for block in self.body:
            x = block(x)
        return self.to_logits(x.mean((2, 3)))


def test_a_users_own_module():
    model = UserNet()
    assert ng.layer_names(model, stages=True, input_shape=(3, 32, 32)) == ["stem", "body.0", "body.1"]
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(ng.gradcam(model, x), ng.gradcam(model, x, layer="body.1"))


def test_lab_models():
    from netgaze.lab.models import build_model
    cnn = build_model("simple-cnn", num_classes=3)
    assert ng.layer_names(cnn, stages=True, input_shape=(3, 64, 64))[-1] == "features"   # relu4's output
    vae = build_model("vae-conv")
    assert ng.resolve_layer(vae, -1, (1, 28, 28))[0].startswith("encoder.")   # before the latent, not the decoder


def test_cached_per_model_and_size(monkeypatch):
    model = UserNet()
    first = ng.layer_names(model, stages=True, input_shape=(3, 32, 32))
    monkeypatch.setattr(stages, "trace", lambda *a: (_ for _ in ()).throw(AssertionError("traced again")))
    assert ng.layer_names(model, stages=True, input_shape=(3, 32, 32)) == first
    ng.gradcam(model, torch.rand(2, 3, 32, 32))       # the explanation itself traces nothing


def test_no_spatial_layer_is_a_user_error():
    with pytest.raises(ng.LayerError, match="no spatial stage"):
        ng.resolve_layer(nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), -1, (3, 2, 2))
