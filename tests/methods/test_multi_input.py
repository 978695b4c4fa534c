"""Models with several inputs (a tuple x) and numpy targets, on toys with hand-set weights."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import netgaze as ng

sys.path.insert(0, str(Path(__file__).parent))     # toys.py beside this file, from any working directory
from toys import set_conv1x1  # noqa: E402


class TwoPictures(nn.Module):
    """logits = [[1, 1], [1, -1]] @ [mean(2 * x1), mean(3 * x2)]; x1 is 4x4, x2 is 2x2."""

    def __init__(self):
        super().__init__()
        self.a = set_conv1x1(nn.Conv2d(1, 1, 1, bias=False), [[2.0]])
        self.b = set_conv1x1(nn.Conv2d(1, 1, 1, bias=False), [[3.0]])
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))

    def forward(self, x1, x2):
        return self.head(torch.cat([self.a(x1).mean((2, 3)), self.b(x2).mean((2, 3))], 1))


class PictureVectorCode(nn.Module):
    """logit = mean(2 * x) + v @ [1, -2, 0.5] + code (an integer input, no gradient)."""

    def __init__(self):
        super().__init__()
        self.conv = set_conv1x1(nn.Conv2d(1, 1, 1, bias=False), [[2.0]])
        self.vec = nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            self.vec.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))

    def forward(self, x, v, code):
        return self.conv(x).mean((2, 3)) + self.vec(v) + code[:, None].float()


def _pictures(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 1, 4, 4, generator=g) + 0.1, torch.rand(2, 1, 2, 2, generator=g) + 0.1


def test_gradient_methods_return_one_attribution_per_input(snapshot):
    model = TwoPictures()
    x1, x2 = _pictures()
    snap = snapshot(model)
    g1, g2 = ng.saliency(model, (x1, x2), target=1)
    assert torch.allclose(g1, torch.full_like(x1, 2 / 16)) and torch.allclose(g2, torch.full_like(x2, -3 / 4))
    b1, b2 = ng.guided_backprop(model, (x1, x2), target=0)  # no ReLU module: plain gradient
    assert torch.allclose(b1, torch.full_like(x1, 2 / 16)) and torch.allclose(b2, torch.full_like(x2, 3 / 4))
    s1, s2 = ng.smoothgrad(model, (x1, x2), target=1, n=4)  # linear model: noise changes nothing
    assert torch.allclose(s1, g1) and torch.allclose(s2, g2)
    i1, i2 = ng.integrated_gradients(model, (x1, x2), target=1, steps=3)
    assert torch.allclose(i1, x1 * 2 / 16) and torch.allclose(i2, -x2 * 3 / 4)
    logits = model(x1, x2)
    assert torch.allclose(i1.sum((1, 2, 3)) + i2.sum((1, 2, 3)), logits[:, 1], atol=1e-6)  # completeness
    snap.assert_unchanged()


def test_cam_maps_take_the_size_of_their_own_picture_input(snapshot):
    model = TwoPictures()
    x1, x2 = _pictures(1)
    snap = snapshot(model)
    maps = ng.gradcam(model, (x1, x2), ["a", "b"], target=0)
    # a: A = 2 x1, dlogit0/dA = 1/16 everywhere -> relu(2 x1 / 16); b: relu(3 x2 / 4), at x2's 2x2 size
    assert maps["a"].shape == (2, 4, 4) and torch.allclose(maps["a"], x1[:, 0] / 8)
    assert maps["b"].shape == (2, 2, 2) and torch.allclose(maps["b"], x2[:, 0] * 3 / 4)
    # Score-CAM with one channel: softmax weight 1, map = relu(A); the masks go to the right picture
    assert torch.allclose(ng.scorecam(model, (x1, x2), "b", target=0), 3 * x2[:, 0])
    gg1, gg2 = ng.guided_gradcam(model, (x1, x2), "a", target=0)
    assert gg2 is None and torch.allclose(gg1, (2 / 16) * (x1 / 8))
    snap.assert_unchanged()


def test_picture_vector_and_integer_inputs():
    model = PictureVectorCode()
    x = torch.rand(2, 1, 3, 3) + 0.1
    v = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
    code = torch.tensor([4, 7])
    gx, gv, gcode = ng.saliency(model, (x, v, code), target=0)
    assert torch.allclose(gx, torch.full_like(x, 2 / 9)) and gcode is None
    assert torch.allclose(gv, torch.tensor([[1.0, -2.0, 0.5]]).expand(2, 3))
    ix, iv, icode = ng.integrated_gradients(model, (x, v, code), target=0, steps=2)
    score, base = model(x, v, code)[:, 0], model(torch.zeros_like(x), torch.zeros_like(v), code)[:, 0]
    assert icode is None and torch.allclose(ix.sum((1, 2, 3)) + iv.sum(1), score - base, atol=1e-6)
    cam = ng.gradcam(model, (x, v, code), "conv", target=0)
    assert torch.allclose(cam, 2 * x[:, 0] / 9)  # A = 2x, weight 1/9
    smooth = ng.smoothgrad(model, (x, v, code), target=0, n=3)
    assert smooth[2] is None and torch.allclose(smooth[1], gv)


def test_numpy_targets_equal_python_ints_and_tensors():
    model = TwoPictures()
    x1, x2 = _pictures(2)
    reference = ng.saliency(model, (x1, x2), target=[0, 1])
    for target in (np.array([0, 1]), torch.tensor([0, 1]), ng.Class(np.array([0, 1], dtype=np.int32)),
                   [np.int64(0), np.int64(1)]):
        got = ng.saliency(model, (x1, x2), target=target)
        assert all(torch.equal(a, b) for a, b in zip(got, reference))
    one = ng.gradcam(model, (x1, x2), "a", target=np.int64(1))
    assert torch.equal(one, ng.gradcam(model, (x1, x2), "a", target=1))
    assert ng.Area(box=np.array([0, 0, 1, 1]), channel=np.int64(2)).channel == 2
    assert type(ng.TopClass(np.int64(2)).k) is int and ng.Latent(np.int32(1)).index == 1
    with pytest.raises(TypeError):
        ng.Class(np.float32(1.5))
    with pytest.raises(ValueError, match="one int per sample"):
        ng.Class(np.zeros((2, 2), dtype=int))


def test_batch_of_tuples_equals_samples_one_by_one():
    model = PictureVectorCode()
    x, v, code = torch.rand(3, 1, 3, 3), torch.randn(3, 3), torch.tensor([1, 2, 3])
    whole = ng.guided_backprop(model, (x, v, code), target=0)
    for i in range(3):
        alone = ng.guided_backprop(model, (x[i:i + 1], v[i:i + 1], code[i:i + 1]), target=0)
        assert torch.equal(alone[0], whole[0][i:i + 1]) and torch.equal(alone[1], whole[1][i:i + 1])


def test_bad_inputs_are_clear_errors():
    model = TwoPictures()
    x1, x2 = _pictures()
    with pytest.raises(ValueError, match="different batch sizes"):
        ng.saliency(model, (x1, x2[:1]))
    with pytest.raises(ValueError, match="several model inputs go in a tuple"):
        ng.gradcam(model, [x1, x2], "a")
