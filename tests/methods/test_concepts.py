"""ng.concepts and ng.channel_relevance: hand-computed values, identities, layouts, errors, the model left alone."""
from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn as nn

import netgaze as ng
from netgaze.errors import UserError

from toys import set_conv1x1

concepts_module = importlib.import_module("netgaze.methods.concepts")


def hand_net() -> nn.Sequential:
    """x [B,1,1,2] -> conv1x1 (2x, -x) -> ReLU (the layer, "1") -> mean over space -> linear [[3, 1], [-1, 2]]."""
    conv = set_conv1x1(nn.Conv2d(1, 2, 1), [[2.0], [-1.0]])
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, 1.0], [-1.0, 2.0]]))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()


X = torch.tensor([[[[1.0, -2.0]]]])          # A0 = relu(2x) = [2, 0], A1 = relu(-x) = [0, 2]


class EveryClass(ng.Target):
    """Every logit, in class order: scores [B, classes]."""

    def __call__(self, output):
        return output


def test_hand_values_class_0():
    # dY0/dA0 = 3/2, dY0/dA1 = 1/2 at both positions: relevance 2 * 1.5 = 3 and 2 * 0.5 = 1, total 4 = Y0.
    # maps="gradient", channel 0: dY/dx = 1.5 * 2 at the first pixel (ReLU open), 0 at the second; times x: [3, 0].
    # Channel 1: 0.5 * (-1) at the second pixel; times x = -2: [0, 1]. The two add up to x * dY/dx.
    found = ng.concepts(hand_net(), X, layer="1", target=0, k=2, maps="gradient")
    assert found.layer == "1"
    assert found.channels.tolist() == [[0, 1]] and found.channels.dtype == torch.long
    assert torch.allclose(found.relevance, torch.tensor([[3.0, 1.0]]))
    assert torch.allclose(found.total, torch.tensor([4.0])) and torch.allclose(found.scores, torch.tensor([4.0]))
    assert torch.allclose(found.shares, torch.tensor([[0.75, 0.25]]))
    assert found.maps.shape == (1, 2, 1, 2)
    assert torch.allclose(found.maps, torch.tensor([[[[3.0, 0.0]], [[0.0, 1.0]]]]))
    # maps="relevance" starts from A * G instead of G: channel 0's relevance map [2 * 1.5, 0] = [3, 0] goes back
    # through dA0/dx = 2 (times x = 1): [6, 0]; channel 1's [0, 2 * 0.5] = [0, 1] through dA1/dx = -1 (times x = -2): [0, 2]
    relevance = ng.concepts(hand_net(), X, layer="1", target=0, k=2)
    assert torch.allclose(relevance.maps, torch.tensor([[[[6.0, 0.0]], [[0.0, 2.0]]]]))
    for field in ("channels", "shares", "relevance", "total", "scores"):
        assert torch.equal(getattr(relevance, field), getattr(found, field)), field


def test_hand_values_class_1_with_a_channel_against_the_target():
    # dY1/dA0 = -1/2, dY1/dA1 = 1: relevance -1 and 2, total 1, so the shares are 2 and -1 (they add up to 1).
    found = ng.concepts(hand_net(), X, layer="1", target=ng.Class(1), k=2, maps="gradient")
    assert found.channels.tolist() == [[1, 0]]
    assert torch.allclose(found.relevance, torch.tensor([[2.0, -1.0]]))
    assert torch.allclose(found.shares, torch.tensor([[2.0, -1.0]]))
    assert torch.allclose(found.maps, torch.tensor([[[[0.0, 2.0]], [[-1.0, 0.0]]]]))
    # relevance maps [0, 2] and [-1, 0] back through dA1/dx = -1 and dA0/dx = 2, times x: [0, 4] and [-2, 0]
    relevance = ng.concepts(hand_net(), X, layer="1", target=ng.Class(1), k=2, maps="relevance")
    assert torch.allclose(relevance.maps, torch.tensor([[[[0.0, 4.0]], [[-2.0, 0.0]]]]))
    relevance = ng.channel_relevance(hand_net(), X, "1", target=1)
    assert torch.allclose(relevance, torch.tensor([[-1.0, 2.0]]))
    every_class = ng.channel_relevance(hand_net(), X, "1", target=EveryClass())
    assert torch.allclose(every_class, torch.tensor([[[3.0, 1.0], [-1.0, 2.0]]]))


def test_zero_total_gives_zero_shares():
    found = ng.concepts(hand_net(), torch.zeros(1, 1, 1, 2), layer="1", target=0, k=2)
    assert torch.equal(found.shares, torch.zeros(1, 2)) and torch.equal(found.total, torch.zeros(1))


class Trunk(nn.Module):
    """A small CNN with biases and a global-average-pool head: ``features`` is the last stage."""

    def __init__(self, width: int = 6, classes: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(5, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def _x(n: int = 3, size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def single_channel_map(model, x, layer, target, channel: int, mask_raw=None, maps: str = "relevance") -> torch.Tensor:
    """The conditional map of one channel, computed on its own, in the layer's own layout: the target's
    gradient at the layer's output, kept on channel ``channel`` (``mask_raw(grad, channel)`` for other
    layouts), times the layer's output for ``maps="relevance"``, taken on from the layer's output to
    the input (paths parallel to the layer, such as a transformer block's residual stream, left out,
    as CRP's ``exclude_parallel=True`` does)."""
    mask_raw = mask_raw or (lambda grad, c: grad * (torch.arange(grad.shape[1]) == c).view(1, -1, 1, 1))
    seen = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda m, inputs, out: seen.setdefault("out", out))
    try:
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out = getattr(out, "logits", out)
        (grad,) = torch.autograd.grad(out[torch.arange(len(x)), target].sum(), seen["out"], retain_graph=True)
        start = grad * seen["out"].detach() if maps == "relevance" else grad
        (grad,) = torch.autograd.grad(seen["out"], xi, grad_outputs=mask_raw(start, channel))
    finally:
        handle.remove()
    return (xi * grad).sum(1).detach()


def test_all_channels_add_up_to_the_decomposition():
    model, x = Trunk().eval(), _x()
    c = 6
    found = ng.concepts(model, x, layer="features", k=c, maps="gradient")
    classes = model(x).argmax(1)
    # k = C covers every channel once, and the shares of all channels add up to 1
    assert sorted(found.channels[0].tolist()) == list(range(c))
    assert torch.allclose(found.shares.sum(1), torch.ones(3), atol=1e-5)
    assert torch.allclose(found.relevance.sum(1), found.total, atol=1e-5)
    # the total is the target's first-order term at the layer: the logit minus its bias (GAP + linear head),
    # which is also the spatial sum of the map the gradient times activation make (HiResCAM before ReLU)
    logits = model(x)[torch.arange(3), classes]
    assert torch.allclose(found.total, logits - model.head.bias[classes], atol=1e-5)
    with ng.Recorder(model, ["features"]) as rec:
        out = rec.forward(x)
        grads = rec.gradients(ng.Class(classes.tolist())(out))["features"]
        elementwise = (rec.activations["features"] * grads).sum(1).detach()
    assert torch.allclose(elementwise.sum((1, 2)), found.total, atol=1e-5)
    # Grad-CAM's map with this head (constant gradient over space) is the same sum before its ReLU
    # the conditional maps of all channels add up to input x gradient, summed over colours
    ixg = ng.input_x_gradient(model, x, target=classes.tolist()).sum(1)
    assert torch.allclose(found.maps.sum(1), ixg, atol=1e-5)
    # most relevant first
    assert (found.relevance[:, :-1] >= found.relevance[:, 1:]).all()


@pytest.mark.parametrize("maps", ["relevance", "gradient"])
def test_conditional_map_equals_a_single_channel_computation(maps):
    model, x = Trunk().eval(), _x()
    found = ng.concepts(model, x, layer="features", k=3, maps=maps)
    classes = model(x).argmax(1)
    for j in range(3):
        for b in range(3):
            channel = int(found.channels[b, j])
            alone = single_channel_map(model, x[b:b + 1], "features", classes[b:b + 1], channel, maps=maps)
            assert torch.allclose(found.maps[b, j], alone[0], atol=1e-6), (b, j)


def test_a_batch_equals_its_pictures_one_by_one():
    model, x = Trunk().eval(), _x(4)
    together = ng.concepts(model, x, k=3)
    for b in range(4):
        alone = ng.concepts(model, x[b:b + 1], k=3)
        assert torch.equal(together.channels[b], alone.channels[0])
        for field in ("shares", "relevance", "total", "scores"):
            assert torch.allclose(getattr(together, field)[b], getattr(alone, field)[0], atol=1e-6), field
        assert torch.allclose(together.maps[b], alone.maps[0], atol=1e-6)


def test_default_layer_is_the_last_stage_and_channel_relevance_agrees():
    model, x = Trunk().eval(), _x()
    found = ng.concepts(model, x, k=6)
    assert found.layer == ng.stage_names(model, x.shape)[-1] and found.k == 6
    relevance = ng.channel_relevance(model, x)
    assert relevance.shape == (3, 6)
    assert torch.allclose(relevance.gather(1, found.channels), found.relevance, atol=1e-6)
    per_class = ng.channel_relevance(model, x, target=ng.TopClass(2))
    assert per_class.shape == (3, 2, 6) and torch.allclose(per_class[:, 0], relevance, atol=1e-6)


def test_one_batched_backward_pass_whatever_k(monkeypatch):
    calls = []
    grad = torch.autograd.grad

    def counting(*args, **kwargs):
        calls.append(kwargs.get("is_grads_batched", False))
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting)
    ng.concepts(Trunk().eval(), _x(), k=5)
    assert calls == [False, True]      # the target's gradient at the layer, then the k maps at once


def test_without_a_batching_rule_it_falls_back_to_one_pass_per_channel(monkeypatch):
    model, x = Trunk().eval(), _x()
    expected = ng.concepts(model, x, k=3)
    grad = torch.autograd.grad

    def no_vmap(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("Batching rule not implemented for aten::something")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_vmap)
    with pytest.warns(RuntimeWarning, match="one pass each"):
        found = ng.concepts(model, x, k=3)
    assert torch.allclose(found.maps, expected.maps, atol=1e-6)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_the_model_is_left_as_found(mode, snapshot):
    model = Trunk().train(mode == "train")
    model.features[0].weight.requires_grad_(False)       # a mix of frozen and trainable parameters
    snap = snapshot(model)
    ng.concepts(model, _x(), k=2)
    snap.assert_unchanged()
    with pytest.raises(UserError):
        ng.concepts(model, _x(), k=99)
    snap.assert_unchanged()
    ng.channel_relevance(model, _x())
    snap.assert_unchanged()
    assert torch.is_grad_enabled()


def test_under_no_grad():
    model, x = Trunk().eval(), _x()
    with torch.no_grad():
        found = ng.concepts(model, x, k=2)
        assert not torch.is_grad_enabled()            # the caller's mode is restored
    assert torch.allclose(found.maps, ng.concepts(model, x, k=2).maps)
    assert not found.maps.requires_grad and not found.shares.requires_grad


@pytest.mark.parametrize("k", [0, 7, -1])
def test_a_bad_k_names_the_valid_range(k):
    with pytest.raises(UserError, match=r"k must be a whole number from 1 to 6 \(the channels of layer 'features'\)"):
        ng.concepts(Trunk().eval(), _x(), layer="features", k=k)


@pytest.mark.parametrize("k", [2.5, True, "3"])
def test_a_k_of_the_wrong_type_is_refused(k):
    with pytest.raises(UserError, match="k must be a whole number"):
        ng.concepts(Trunk().eval(), _x(), k=k)


def test_a_bad_layer_names_valid_layers():
    with pytest.raises(UserError, match=r"unknown layer 'featurs'; closest valid names: 'features'"):
        ng.concepts(Trunk().eval(), _x(), layer="featurs")
    with pytest.raises(UserError, match="one layer at a time"):
        ng.concepts(Trunk().eval(), _x(), layer=["features", "head"])
    with pytest.raises(UserError, match="one class per sample"):
        ng.concepts(Trunk().eval(), _x(), target=ng.TopClass(2))
    with pytest.raises(UserError, match="maps must be one of 'relevance', 'gradient', got 'lrp'"):
        ng.concepts(Trunk().eval(), _x(), maps="lrp")
    with pytest.raises(UserError, match=r"image batch \[B, C, H, W\]"):
        ng.concepts(Trunk().eval(), torch.rand(3, 16, 16))


# -- layouts: channels last (Swin), tokens (timm and Hugging Face ViTs) --------------------------

def _swin():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=3, img_size=64,
                             window_size=4, embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)).eval()


def _timm_vit():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3, img_size=32, depth=2).eval()


def _hf_vit():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=32, num_labels=3)
    return transformers.ViTForImageClassification(config).eval()


def _mask_last(prefix: int):
    """Keep channel c (the last axis) of the patch tokens / positions; prefix tokens get nothing."""
    def mask(grad, c):
        keep = torch.zeros_like(grad)
        if grad.dim() == 3:
            keep[:, prefix:, c] = 1
        else:
            keep[..., c] = 1
        return grad * keep
    return mask


@pytest.mark.parametrize("maps", ["relevance", "gradient"])
@pytest.mark.parametrize("family,build,size,prefix", [
    ("timm swin (channels last)", _swin, 64, 0),
    ("timm vit (tokens)", _timm_vit, 32, 1),
    ("hugging face vit (tokens)", _hf_vit, 32, 1),
])
def test_layouts(family, build, size, prefix, maps, snapshot):
    model = build()
    x = _x(2, size)
    snap = snapshot(model)
    found = ng.concepts(model, x, k=3, maps=maps)
    snap.assert_unchanged()
    assert found.maps.shape == (2, 3, size, size) and torch.isfinite(found.maps).all()
    out = model(x)
    out = getattr(out, "logits", out)
    top = out.argmax(1)
    for b in range(2):
        for j in range(3):
            alone = single_channel_map(model, x[b:b + 1], found.layer, top[b:b + 1], int(found.channels[b, j]),
                                       _mask_last(prefix), maps=maps)
            assert torch.allclose(found.maps[b, j], alone[0], atol=1e-5 * float(alone.abs().max()) + 1e-7), (b, j)
    relevance = ng.channel_relevance(model, x, found.layer)
    assert torch.allclose(relevance.gather(1, found.channels), found.relevance, rtol=1e-4, atol=1e-6)
    assert torch.allclose(relevance.sum(1), found.total, rtol=1e-4, atol=1e-5)


def test_torchvision_resnet_in_train_mode(snapshot):
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).train()
    snap = snapshot(model)
    found = ng.concepts(model, _x(2, 64), k=4)
    snap.assert_unchanged()
    assert found.layer == "layer4" and found.maps.shape == (2, 4, 64, 64)
    model.eval()                     # the reference below runs the model as concepts does: in eval mode
    top = model(_x(2, 64)).argmax(1)
    for j in (0, 3):
        alone = single_channel_map(model, _x(2, 64)[1:], "layer4", top[1:], int(found.channels[1, j]))
        assert torch.allclose(found.maps[1, j], alone[0], atol=1e-5 * float(alone.abs().max()))


def test_public_names():
    assert ng.concepts is concepts_module.concepts and ng.channel_relevance is concepts_module.channel_relevance
    assert "concepts" in ng.__all__ and "channel_relevance" in ng.__all__
