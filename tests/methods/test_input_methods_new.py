"""Input x gradient, deconvolution, occlusion, RISE and the SmoothGrad kinds on toys with hand-set
weights, identities between methods, batches, seeds, and the model left as found."""
from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import netgaze as ng

sys.path.insert(0, str(Path(__file__).parent))     # toys.py beside this file, from any working directory
from toys import relu_net, scaled_image_model  # noqa: E402


def tiny_net(seed: int = 0, inplace: bool = False) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.Conv2d(4, 6, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))


def whole(x: torch.Tensor) -> ng.Area:
    return ng.Area(box=(0, 0, x.shape[-2], x.shape[-1]))


# -- input x gradient, deconvolution --------------------------------------------------------------
def test_input_x_gradient_by_hand_and_equals_x_times_saliency():
    # relu_net at x = [1, -1]: gradient [1, 1.5] (see test_hand_values) -> x * gradient = [1, -1.5].
    x = torch.tensor([[[[1.0, -1.0]]]])
    assert torch.allclose(ng.input_x_gradient(relu_net(), x, target=0), torch.tensor([[[[1.0, -1.5]]]]))
    model = tiny_net()
    xs = torch.randn(3, 3, 6, 6)
    expected = xs * ng.saliency(model, xs, target=[0, 1, 2])
    assert torch.allclose(ng.input_x_gradient(model, xs, target=[0, 1, 2]), expected)
    # linear without bias: the attributions sum to the score
    img = torch.rand(2, 1, 3, 4)
    attr = ng.input_x_gradient(scaled_image_model(3.0), img, target=whole(img))
    assert torch.allclose(attr.flatten(1).sum(1), 3.0 * img.flatten(1).sum(1))


def test_input_x_gradient_of_several_inputs():
    class PictureAndCode(nn.Module):
        def forward(self, x, code):
            return x.mean((2, 3)) * 2 + code[:, None].float()

    x, code = torch.rand(2, 1, 2, 2), torch.tensor([1, 2])
    attr, none = ng.input_x_gradient(PictureAndCode(), (x, code), target=0)
    assert none is None and torch.allclose(attr, x * 0.5)


@pytest.mark.parametrize("inplace", [False, True])
def test_deconvolution_by_hand(inplace):
    # score = mean(2 h1 - 3 h2), h = relu([x, -x]) at x = [1, -1]: d/dh = [1, -1.5] per pixel.
    # Deconvolution passes relu(gradient) whatever the input: [1, 0] -> through [1, -1] -> 1 at both pixels.
    x = torch.tensor([[[[1.0, -1.0]]]])
    assert torch.allclose(ng.deconvolution(relu_net(inplace), x, target=0), torch.tensor([[[[1.0, 1.0]]]]))


def test_deconvolution_without_relu_modules_is_the_gradient():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 16, 5))
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(ng.deconvolution(model, x, target=[1, 3]), ng.saliency(model, x, target=[1, 3]))


def test_deconvolution_through_a_relu_module_used_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1, bias=False)
            nn.init.constant_(self.conv.weight, -1.0)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.relu(self.conv(self.relu(x))).mean((2, 3))

    # x = [2]: relu -> 2, conv -> -2, relu -> 0, score 0. Backward: d/d(out) = 1 -> relu -> 1 -> conv -> -1
    # -> relu(-1) = 0 at the first ReLU: deconvolution gives 0; at x = [-2]: same path, also 0.
    # With weight +1 the gradient stays 1 at both ReLUs: deconvolution gives 1 whatever the sign of x.
    model = Twice()
    x = torch.tensor([[[[2.0]]], [[[-2.0]]]])
    assert torch.equal(ng.deconvolution(model, x, target=0), torch.zeros_like(x))
    with torch.no_grad():
        model.conv.weight.fill_(1.0)
    assert torch.equal(ng.deconvolution(model, x, target=0), torch.ones_like(x))


# -- occlusion -----------------------------------------------------------------------------------
def naive_occlusion(model, x, target, window, strides, baseline):
    """Captum's rule written out: every window position, clipped at the border, one at a time."""
    c, h, w = x.shape[1:]
    total, count = torch.zeros_like(x), torch.zeros(c, h, w)
    with torch.no_grad():
        clean = target(model(x))
        ranges = [range(0, s * (math.ceil((n - k) / s) + 1), s) for n, k, s in zip((c, h, w), window, strides)]
        for c0, y0, x0 in itertools.product(*ranges):
            mask = torch.zeros(c, h, w)
            mask[c0:c0 + window[0], y0:y0 + window[1], x0:x0 + window[2]] = 1
            drop = clean - target(model(x * (1 - mask) + baseline * mask))
            total += drop[:, None, None, None] * mask
            count += mask
    return total / count


def test_occlusion_of_a_linear_model_by_hand():
    # score = 2 sum(x): a 1x1 window with baseline 0 drops 2 x at each pixel.
    x = torch.rand(2, 1, 3, 4)
    model = scaled_image_model(2.0)
    assert torch.allclose(ng.occlusion(model, x, whole(x), window=(1, 1)), 2 * x, atol=1e-6)


@pytest.mark.parametrize("window,strides", [((2, 2), (1, 1)), ((2, 3), (2, 2)), ((1, 2, 2), (1, 2, 1))])
def test_occlusion_follows_captums_windows(window, strides):
    model = tiny_net()
    x = torch.rand(2, 3, 5, 6)
    target = ng.Class([1, 3])
    full_window = window if len(window) == 3 else (3, *window)
    full_strides = strides if len(strides) == 3 else (3, *strides)
    expected = naive_occlusion(model, x, target, full_window, full_strides, 0.5)
    got = ng.occlusion(model, x, target, window=window, strides=strides, baseline=0.5, batch_size=7)
    assert torch.allclose(got, expected, atol=1e-6)


def test_occlusion_of_the_whole_picture_is_the_score_drop():
    model = tiny_net()
    x = torch.rand(2, 3, 6, 6)
    baseline = torch.rand(3, 6, 6)
    got = ng.occlusion(model, x, [2, 4], window=(6, 6), baseline=baseline)
    with torch.no_grad():
        drop = ng.Class([2, 4])(model(x)) - ng.Class([2, 4])(model(baseline[None].expand_as(x)))
    assert torch.allclose(got, drop[:, None, None, None].expand_as(x), atol=1e-6)


def test_occlusion_refuses_bad_windows():
    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(ng.UserError, match="larger than the picture"):
        ng.occlusion(tiny_net(), x, window=(5, 5))
    with pytest.raises(ng.UserError, match="skip pixels"):
        ng.occlusion(tiny_net(), x, window=(1, 1), strides=2)


# -- RISE ----------------------------------------------------------------------------------------
def test_rise_by_hand_on_a_linear_model():
    from netgaze.methods.rise import rise_masks

    x = torch.rand(2, 1, 5, 5)
    model = scaled_image_model(2.0)
    n, p = 30, 0.4
    masks = rise_masks(n, (5, 5), 3, p, torch.Generator().manual_seed(9))
    scores = 2 * torch.einsum("bhw,khw->kb", x[:, 0], masks)
    expected = torch.einsum("kb,khw->bhw", scores, masks) / (n * p)
    got = ng.rise(model, x, whole(x), n=n, grid=3, p=p, seed=9)
    assert torch.allclose(got, expected[:, None], atol=1e-5)
    # keeping every cell (p = 1): every mask is 1 and the map is the score everywhere
    kept = ng.rise(model, x, whole(x), n=4, grid=3, p=1.0)
    assert torch.allclose(kept, (2 * x.sum((1, 2, 3)))[:, None, None, None].expand(2, 1, 5, 5), atol=1e-5)


def test_rise_masks_are_smooth_and_in_range():
    from netgaze.methods.rise import rise_masks

    masks = rise_masks(20, (16, 12), 4, 0.5, torch.Generator().manual_seed(0))
    assert masks.shape == (20, 16, 12) and masks.min() >= 0 and masks.max() <= 1
    assert ((masks > 0) & (masks < 1)).any()     # bilinear edges, not a blocky grid


def test_rise_is_seeded_and_a_batch_equals_its_pictures():
    model = tiny_net()
    x = torch.rand(3, 3, 8, 8)
    a = ng.rise(model, x, [0, 1, 2], n=40, seed=3, batch_size=12)
    assert torch.allclose(a, ng.rise(model, x, [0, 1, 2], n=40, seed=3, batch_size=64), atol=1e-6)
    assert torch.allclose(a, ng.rise(model, x, [0, 1, 2], n=40, seed=None,
                                     generator=torch.Generator().manual_seed(3)), atol=1e-6)
    assert not torch.allclose(a, ng.rise(model, x, [0, 1, 2], n=40, seed=4))
    singles = torch.cat([ng.rise(model, x[i:i + 1], [i], n=40, seed=3) for i in range(3)])
    assert torch.allclose(a, singles, atol=1e-6)


# -- SmoothGrad kinds ----------------------------------------------------------------------------
def test_smoothgrad_kinds():
    model = tiny_net()
    x = torch.rand(2, 3, 6, 6)
    mean = ng.smoothgrad(model, x, n=5, random_state=1)
    squares = ng.smoothgrad(model, x, n=5, random_state=1, kind="smoothgrad_sq")
    assert torch.equal(squares, ng.smoothgrad(model, x, n=5, random_state=1, squared=True))
    var = ng.smoothgrad(model, x, n=5, random_state=1, kind="vargrad")
    assert torch.allclose(var, squares - mean.pow(2), atol=1e-7) and (var >= -1e-7).all() and var.abs().max() > 0
    plain = ng.saliency(model, x)
    assert torch.allclose(ng.smoothgrad(model, x, n=3, sigma=0.0, kind="smoothgrad_sq"), plain.pow(2), atol=1e-7)
    assert torch.allclose(ng.smoothgrad(model, x, n=3, sigma=0.0, kind="vargrad"), torch.zeros_like(x), atol=1e-7)
    # a linear model's gradient does not depend on the noise: no variance
    img = torch.rand(1, 1, 3, 3)
    assert torch.allclose(ng.smoothgrad(scaled_image_model(), img, whole(img), n=4, kind="vargrad"),
                          torch.zeros_like(img), atol=1e-6)
    with pytest.raises(ng.UserError, match="kind="):
        ng.smoothgrad(model, x, kind="var")


# -- every new input method: batch == samples, model untouched -----------------------------------
QUICK = {"input_x_gradient": {}, "deconvolution": {}, "occlusion": {"window": (4, 4)}, "rise": {"n": 16}}


@pytest.mark.parametrize("name", list(QUICK))
@pytest.mark.parametrize("inplace", [False, True])
def test_batch_equals_samples_and_model_untouched(name, inplace, snapshot):
    model = tiny_net(inplace=inplace).train()
    x = torch.rand(3, 3, 8, 8)
    snap = snapshot(model)
    method = ng.methods.METHODS[name]
    batch = method(model, x, [0, 2, 4], **QUICK[name])
    snap.assert_unchanged()
    singles = torch.cat([method(model, x[i:i + 1], [c], **QUICK[name]) for i, c in enumerate([0, 2, 4])])
    assert torch.allclose(batch, singles, atol=1e-5 * float(singles.abs().max()) + 1e-9)
    with pytest.raises(ng.UserError, match="out of range"):
        method(model, x, ng.Class([9, 9, 9]), **QUICK[name])
    snap.assert_unchanged()
    assert method is getattr(ng, name)
