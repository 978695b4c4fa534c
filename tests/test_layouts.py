"""Layouts: channels first, channels last and tokens read as [B, C, h, w]; never a silent guess."""
import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import netgaze as ng
from netgaze.core.layouts import LayoutError, detect


def test_swin_stage_output_is_channels_last():
    layout = detect((2, 7, 7, 768), (224, 224))
    assert (layout.kind, layout.grid) == ("nhwc", (7, 7))
    t = torch.arange(2 * 7 * 7 * 768.0).view(2, 7, 7, 768)
    assert torch.equal(layout.to_nchw(t)[1, 5, 3, 2], t[1, 3, 2, 5])


@pytest.mark.parametrize("prefix", [0, 1, 2, 5])
def test_tokens_with_any_prefix_on_a_non_square_grid(prefix):
    # 224 x 160 input, patch 16: a 14 x 10 grid after `prefix` class/distillation/register tokens
    layout = detect((2, prefix + 140, 192), (224, 160))
    assert (layout.kind, layout.grid, layout.prefix) == ("tokens", (14, 10), prefix)
    t = torch.randn(2, prefix + 140, 192)
    assert torch.equal(layout.to_nchw(t)[:, :, 3, 7], t[:, prefix + 3 * 10 + 7, :])


def test_ambiguous_shapes_name_the_override():
    with pytest.raises(LayoutError, match="layout="):
        detect((2, 7, 7, 7), (224, 224))            # 7 channels of 7x7, or 7x7 with 7 channels?
    with pytest.raises(LayoutError, match="reshape="):
        detect((2, 17, 8), (60, 60))                 # 4x4 + 1 prefix token, or 3x3 + 8? (both tile 60)
    assert detect((2, 17, 8), (64, 64)).grid == (4, 4)          # only 16-pixel patches tile 64
    assert detect((2, 16, 384), (224, 224)).prefix == 0         # LeViT's last stage: 4x4, no prefix
    assert detect((2, 7, 7, 7), (224, 224), layout="nhwc").kind == "nhwc"
    assert detect((2, 7, 7, 7), (224, 224), module=nn.Conv2d(1, 7, 1)).kind == "nchw"
    with pytest.raises(LayoutError, match="not a map"):
        detect((2, 1000), (224, 224))


def test_explicit_layout_and_reshape_on_the_methods():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 7, 3, stride=32, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(7, 3))
    x = torch.rand(2, 3, 224, 224)
    plain = ng.gradcam(model, x, layer="1")                                  # conv-only model: channels first
    assert torch.equal(ng.gradcam(model, x, layer="1", layout="nchw"), plain)
    assert torch.equal(ng.gradcam(model, x, layer="1", reshape=lambda t: t), plain)
    with pytest.raises(LayoutError, match="must return"):
        ng.gradcam(model, x, layer="1", reshape=lambda t: t.flatten(2))


def _recipe_gradcam(model, x, module, reshape, classes):
    """pytorch-grad-cam's documented recipe, by hand: reshape_transform on activations and
    gradients of the same layer, weights = mean gradient, ReLU, bilinear resize."""
    saved = {}
    handle = module.register_forward_hook(lambda m, i, o: saved.update(out=o))
    try:
        scores = model(x)[torch.arange(len(classes)), classes].sum()
        grads = torch.autograd.grad(scores, saved["out"])[0]
    finally:
        handle.remove()
    acts, grads = reshape(saved["out"].detach()), reshape(grads)
    cam = (grads.mean((2, 3), keepdim=True) * acts).sum(1).clamp(min=0)
    return F.interpolate(cam[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def test_vit_token_maps_equal_the_reshape_transform_recipe():
    torch.manual_seed(0)
    model = timm.create_model("deit_tiny_distilled_patch16_224", img_size=64).eval()   # 2 prefix tokens
    x = torch.rand(2, 3, 64, 64)
    classes = [3, 7]

    def reshape_transform(t, h=4, w=4):   # the peers' recipe, prefix tokens dropped
        return t[:, 2:, :].reshape(t.size(0), h, w, t.size(2)).transpose(2, 3).transpose(1, 2)

    ours = ng.gradcam(model, x, target=ng.Class(classes))                   # default layer: blocks.11.norm1
    theirs = _recipe_gradcam(model, x, model.blocks[-1].norm1, reshape_transform, classes)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
    score = ng.scorecam(model, x[:1], target=ng.Class([3]), batch_size=256)   # reads tokens too
    assert score.shape == (1, 64, 64) and torch.isfinite(score).all() and score.max() > score.min()


def test_swin_maps_equal_the_recipe_in_every_call():
    torch.manual_seed(0)
    model = torchvision.models.swin_t().eval()
    x = torch.rand(1, 3, 64, 64)
    layer = model.features[7][1].norm1

    def reshape_transform(t):             # channels last -> first
        return t.permute(0, 3, 1, 2)

    ours = ng.gradcam(model, x, target=ng.Class([5]))
    torch.testing.assert_close(ours, _recipe_gradcam(model, x, layer, reshape_transform, [5]), rtol=1e-5, atol=1e-7)
    many = ng.gradcam(model, x, layer=[-2, -1], target=ng.Class([5]))
    assert torch.equal(many["features.7.1.norm1"], ours)
    guided = ng.guided_gradcam(model, x, target=ng.Class([5]))
    assert guided.shape == (1, 3, 64, 64) and torch.isfinite(guided).all()
