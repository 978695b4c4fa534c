"""The zoo's fast subset (the whole zoo is `make zoo`): zero configuration on small models
of each layout — channels first, channels last (Swin), tokens with 1, 2 and 4 prefix tokens."""
import pytest
import timm
import torch
import torchvision

import netgaze as ng

MODELS = {
    "tv:mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(),
    "timm:vit_tiny": lambda: timm.create_model("vit_tiny_patch16_224", img_size=64),
    "timm:deit_tiny_distilled": lambda: timm.create_model("deit_tiny_distilled_patch16_224", img_size=64),
    "timm:vit_reg4": lambda: timm.create_model("vit_little_patch16_reg4_gap_256", img_size=64),
    "timm:swin_tiny": lambda: timm.create_model("swin_tiny_patch4_window7_224", img_size=64, window_size=4),
}


def _checked(m: torch.Tensor, shape: tuple) -> None:
    assert tuple(m.shape) == shape and torch.isfinite(m).all() and m.amax() > m.amin()


@pytest.mark.parametrize("key", list(MODELS))
def test_zero_configuration(key, snapshot):
    torch.manual_seed(0)
    model = MODELS[key]().eval()
    with torch.no_grad():   # timm zero-initialises heads: every score would be constant
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.normal_(0, 0.02)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    snap = snapshot(model)
    _checked(ng.gradcam(model, x), (2, 64, 64))
    three = ng.gradcam(model, x, layer=[-3, -2, -1])
    assert list(three) == ng.layer_names(model, stages=True, input_shape=x.shape)[-3:]
    for m in three.values():
        _checked(m, (2, 64, 64))
    _checked(ng.guided_backprop(model, x), (2, 3, 64, 64))
    _checked(ng.gradcam_pp(model, x), (2, 64, 64))
    snap.assert_unchanged()
