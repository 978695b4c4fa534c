"""CAM, EigenCAM, Eigen-Grad-CAM, Grad-CAM element-wise, Ablation-CAM, SS-CAM, IS-CAM and
Smooth Grad-CAM++ on toys with hand-set weights, identities between methods, batches, seeds."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import netgaze as ng

sys.path.insert(0, str(Path(__file__).parent))     # toys.py beside this file, from any working directory
from toys import gap_classifier, relu_net, set_conv1x1  # noqa: E402

X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])      # [1, 1, 2, 2]
XS = torch.tensor([[[[1.0, -2.0], [3.0, 4.0]]]])    # with a negative value


def conv_gap_linear(seed: int = 0, channels: int = 6, classes: int = 4) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, channels, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


def tiny_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))


def two_channel_sum(bias: float = 1.0) -> nn.Sequential:
    """A1 = x, A2 = 2x -> GAP -> y = mean(A1) + mean(A2) + bias."""
    conv = set_conv1x1(nn.Conv2d(1, 2, 1, bias=False), [[1.0], [2.0]])
    head = nn.Linear(2, 1)
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.fill_(bias)
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


# -- CAM -----------------------------------------------------------------------------------------
def test_cam_by_hand():
    # W = [[2, 3], [1, -1]], A1 = x, A2 = -x: class 1 -> x + x = 2x; class 0 -> 2x - 3x = -x -> ReLU -> 0.
    assert torch.allclose(ng.cam(gap_classifier(), X, "0"), 2 * X[:, 0])
    assert torch.equal(ng.cam(gap_classifier(), X, "0", target=0), torch.zeros(1, 2, 2))


def test_cam_equals_gradcam_times_grid_on_conv_gap_linear():
    model = conv_gap_linear()
    x = torch.randn(3, 3, 9, 9)
    for c in range(4):
        cam = ng.cam(model, x, "0", target=c)
        assert torch.allclose(cam, ng.gradcam(model, x, "0", target=c) * 7 * 7, atol=1e-5)
    top = ng.cam(model, x, "0", target=ng.TopClass(2))
    order = model(x).topk(2, dim=1).indices
    assert top.shape == (3, 2, 9, 9)
    for k in range(2):
        assert torch.allclose(top[:, k], ng.cam(model, x, "0", target=order[:, k]), atol=1e-6)


def test_cam_refuses_a_model_without_a_linear_head_after_pooling():
    with pytest.raises(ng.UserError, match="nn.Linear head.*gradcam"):
        ng.cam(relu_net(), torch.rand(1, 1, 1, 2), "0", target=0)
    torch.manual_seed(0)
    deep_head = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4), nn.ReLU(),
                              nn.Linear(4, 4))
    with pytest.raises(ng.UserError, match="not W mean\\(A\\) \\+ b"):
        ng.cam(deep_head, torch.rand(2, 3, 6, 6), "0")
    with pytest.raises(ng.UserError, match="class logits"):
        ng.cam(gap_classifier(), X, "0", target=ng.Latent(0))


# -- EigenCAM family ------------------------------------------------------------------------------
@pytest.mark.parametrize("a", [[1.0, 2.0, -0.5], [-1.0, -2.0, 0.5]])
def test_eigencam_of_a_rank_one_activation_is_its_centred_pattern(a):
    # A_c = a_c * x: rank one, pattern x. Centred, its first component is |a| (x - mean x),
    # signed so that the direction's entries sum to >= 0.
    conv = set_conv1x1(nn.Conv2d(1, 3, 1, bias=False), [[v] for v in a])
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.rand(2, 1, 4, 5)
    pattern = x[:, 0] - x[:, 0].mean(dim=(1, 2), keepdim=True)
    norm = torch.tensor(a).norm()
    sign = 1.0 if sum(a) > 0 else -1.0
    expected = (sign * norm * pattern).clamp(min=0)
    assert torch.allclose(ng.eigencam(model, x, "0"), expected, atol=1e-6)


def test_eigen_gradcam_and_gradcam_elementwise_by_hand():
    # gap_classifier, top class 1: g = [0.25, -0.25] per pixel; g * A = [0.25 x, 0.25 x]: rank one,
    # a = [0.25, 0.25] (|a| = 0.25 sqrt 2), pattern x.
    model = gap_classifier()
    expected = (0.25 * 2 ** 0.5 * (X[:, 0] - 2.5)).clamp(min=0)
    assert torch.allclose(ng.eigen_gradcam(model, X, "0"), expected, atol=1e-6)
    # element-wise: relu(0.25 x) + relu(0.25 x); class 0 (g = [0.5, 0.75]): relu(0.5 x) + relu(-0.75 x)
    assert torch.allclose(ng.gradcam_elementwise(model, XS, "0", target=1), 0.5 * XS[:, 0].clamp(min=0))
    expected0 = (0.5 * XS[:, 0]).clamp(min=0) + (-0.75 * XS[:, 0]).clamp(min=0)
    assert torch.allclose(ng.gradcam_elementwise(model, XS, "0", target=0), expected0)


# -- Ablation-CAM ---------------------------------------------------------------------------------
def test_ablationcam_by_hand():
    # y = mean(x) + 2 mean(x) + 1 = 8.5 for x = 1..4. Zeroing A1: y = 6 -> w1 = 2.5 / 8.5;
    # zeroing A2: y = 3.5 -> w2 = 5 / 8.5. Map = (2.5 x + 5 * 2x) / 8.5.
    cam = ng.ablationcam(two_channel_sum(), X, "0", target=0)
    assert torch.allclose(cam, 12.5 / 8.5 * X[:, 0])


class Untraceable(nn.Module):
    """torch.fx cannot trace a branch on a tensor's value: Ablation-CAM runs the whole model."""

    def __init__(self):
        super().__init__()
        self.net = two_channel_sum()

    def forward(self, x):
        if x.sum() > -1e9:
            return self.net(x)
        return -self.net(x)


def test_ablationcam_falls_back_to_whole_passes_when_the_model_does_not_trace(snapshot):
    model = Untraceable()
    snap = snapshot(model)
    assert torch.allclose(ng.ablationcam(model, X, "net.0", target=0, batch_size=1), 12.5 / 8.5 * X[:, 0])
    snap.assert_unchanged()


def test_ablationcam_tail_equals_whole_passes_with_skip_connections(monkeypatch):
    import torchvision
    module = sys.modules["netgaze.methods.ablationcam"]

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.rand(1, 3, 64, 64)
    layers = ["layer4.0.conv1", "layer4"]        # inside a block (the skip comes from before) and a stage
    fast = ng.ablationcam(model, x, layers, target=[1])
    monkeypatch.setattr(module.tails, "build", lambda *args: None)
    slow = ng.ablationcam(model, x, layers, target=[1])
    for name in layers:   # score drops cancel digits: float noise of the prefix's convolutions shows
        assert torch.allclose(fast[name], slow[name], atol=1e-4 * float(slow[name].abs().max()) + 1e-7)


# -- SS-CAM, IS-CAM ------------------------------------------------------------------------------
def score_toy() -> nn.Sequential:
    conv = set_conv1x1(nn.Conv2d(1, 2, 1, bias=False), [[1.0], [2.0]])
    model = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 1, bias=False))
    nn.init.ones_(model[3].weight)
    return model


def test_iscam_by_hand_and_one_step_is_scorecam():
    # Both channels have the same mask, so every step scores them alike: weights 0.5 / 0.5 -> 1.5 x.
    assert torch.allclose(ng.iscam(score_toy(), X, "0", target=0, n=5), 1.5 * X[:, 0])
    model = tiny_net()
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(ng.iscam(model, x, "2", n=1), ng.scorecam(model, x, "2"), atol=1e-6)


def test_sscam_without_noise_is_scorecam_and_is_seeded():
    model = tiny_net()
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(ng.sscam(model, x, "2", n=3, sigma=0.0), ng.scorecam(model, x, "2"), atol=1e-6)
    a = ng.sscam(model, x, "2", n=3, seed=4)
    assert torch.equal(a, ng.sscam(model, x, "2", n=3, seed=4))
    assert torch.equal(a, ng.sscam(model, x, "2", n=3, seed=None, generator=torch.Generator().manual_seed(4)))
    assert not torch.allclose(a, ng.sscam(model, x, "2", n=3, seed=5))


def test_sscam_by_hand_with_noise():
    # Mask noise d_k adds d_k * x to the masked input: score_k = 3 mean((m + d_k) x), m = (x - 1) / 3.
    model, n, sigma, seed = score_toy(), 2, 0.5, 3
    g = torch.Generator().manual_seed(seed)
    noises = [torch.randn(2, 2, 2, generator=g) * sigma for _ in range(n)]
    m = (X[0, 0] - 1) / 3
    scores = torch.stack([torch.stack([3 * ((m + d[k]) * X[0, 0]).mean() for k in range(2)]) for d in noises]).mean(0)
    w = scores.softmax(0)
    expected = (w[0] * X[0, 0] + w[1] * 2 * X[0, 0])[None]
    assert torch.allclose(ng.sscam(model, X, "0", target=0, n=n, sigma=sigma, seed=seed), expected, atol=1e-6)


# -- Smooth Grad-CAM++ ---------------------------------------------------------------------------
def test_smoothgradcam_pp_without_noise_is_gradcam_pp_and_is_seeded():
    model = tiny_net()
    x = torch.rand(3, 3, 8, 8)
    assert torch.allclose(ng.smoothgradcam_pp(model, x, "2", sigma=0.0), ng.gradcam_pp(model, x, "2"), atol=1e-6)
    a = ng.smoothgradcam_pp(model, x, "2", n=5, seed=1, batch_size=6)
    assert torch.allclose(a, ng.smoothgradcam_pp(model, x, "2", n=5, seed=1, batch_size=64), atol=1e-6)
    assert not torch.allclose(a, ng.smoothgradcam_pp(model, x, "2", n=5, seed=2))


def test_smoothgradcam_pp_by_hand_on_a_linear_head():
    # On conv -> GAP -> linear the layer's gradient does not depend on the input: noise changes nothing.
    model = gap_classifier()
    assert torch.allclose(ng.smoothgradcam_pp(model, X, "0", n=3, sigma=0.5), ng.gradcam_pp(model, X, "0"))


# -- every new CAM method: batch, layers, layouts, model untouched --------------------------------
QUICK = {
    "cam": {}, "eigencam": {}, "eigen_gradcam": {}, "gradcam_elementwise": {}, "ablationcam": {},
    "sscam": {"n": 2}, "iscam": {"n": 2}, "smoothgradcam_pp": {"n": 2},
}


def _run(name, model, x, layer, target=None, **extra):
    return ng.methods.METHODS[name](model, x, layer, target, **QUICK[name], **extra)


@pytest.mark.parametrize("name", list(QUICK))
def test_batch_equals_samples_and_many_layers_equal_one_at_a_time(name):
    model = tiny_net()
    x = torch.rand(3, 3, 8, 8)
    layer = "3"
    batch = _run(name, model, x, layer, target=[0, 2, 4])
    singles = torch.cat([_run(name, model, x[i:i + 1], layer, target=[c]) for i, c in enumerate([0, 2, 4])])
    assert batch.shape == (3, 8, 8) and (batch >= 0).all()
    assert torch.allclose(batch, singles, atol=1e-5 * float(singles.abs().max()) + 1e-9)
    if name == "cam":
        return                                   # only the last layer has a linear head
    together = _run(name, model, x, ["1", "3"], target=[0, 2, 4])
    assert list(together) == ["1", "3"]
    for one in ["1", "3"]:
        alone = _run(name, model, x, one, target=[0, 2, 4])
        assert torch.allclose(together[one], alone, atol=1e-5 * float(alone.abs().max()) + 1e-9)


class ChannelsLast(nn.Module):
    """The tiny net with its explained layer's output laid out [B, h, w, C]."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.last = nn.Identity()

    def forward(self, x):
        a = self.net[3](self.net[2](self.net[1](self.net[0](x))))
        a = self.last(a.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.net[6](self.net[5](self.net[4](a)))


@pytest.mark.parametrize("name", list(QUICK))
def test_channels_last_layer_equals_channels_first(name):
    net = tiny_net()
    x = torch.rand(2, 3, 8, 8)
    first = _run(name, net, x, "3", target=[1, 3])
    last = _run(name, ChannelsLast(net), x, "last", target=[1, 3], layout="nhwc")
    assert torch.allclose(first, last, atol=1e-5 * float(first.abs().max()) + 1e-9)


class Tokens(nn.Module):
    """The tiny net with its explained layer's output as tokens [B, 1 + h w, C] (a class token first)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.tokens = nn.Identity()

    def forward(self, x):
        a = self.net[3](self.net[2](self.net[1](self.net[0](x))))
        b, c, h, w = a.shape
        t = self.tokens(torch.cat([a.mean((2, 3))[:, None], a.flatten(2).transpose(1, 2)], 1))
        a = t[:, 1:].transpose(1, 2).reshape(b, c, h, w)
        return self.net[6](self.net[5](self.net[4](a)))


@pytest.mark.parametrize("name", list(QUICK))
def test_token_layer_equals_channels_first(name):
    net = tiny_net()
    x = torch.rand(2, 3, 8, 8)
    first = _run(name, net, x, "3", target=[1, 3])
    tokens = _run(name, Tokens(net), x, "tokens", target=[1, 3], layout="tokens")
    assert torch.allclose(first, tokens, atol=1e-5 * float(first.abs().max()) + 1e-9)


@pytest.mark.parametrize("name", ["cam", "eigencam", "eigen_gradcam", "gradcam_elementwise", "ablationcam",
                                  "smoothgradcam_pp", "input_x_gradient", "deconvolution", "occlusion", "rise"])
def test_on_resnet18_in_train_mode(name, snapshot):
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=7).train()
    x = torch.rand(2, 3, 64, 64)
    snap = snapshot(model)
    method = ng.methods.METHODS[name]
    extra = {"smoothgradcam_pp": {"n": 2}, "occlusion": {"window": (32, 32)}, "rise": {"n": 8}}.get(name, {})
    result = method(model, x, "layer4", **extra) if name in ng.methods.LAYER_METHODS else method(model, x, **extra)
    snap.assert_unchanged()
    assert result.shape in ((2, 64, 64), (2, 3, 64, 64), (2, 1, 64, 64)) and torch.isfinite(result).all()


@pytest.mark.parametrize("name", list(QUICK))
def test_model_left_untouched_also_when_the_call_raises(name, snapshot):
    model = tiny_net().train()
    x = torch.rand(2, 3, 8, 8)
    snap = snapshot(model)
    result = _run(name, model, x, "3")
    snap.assert_unchanged()
    assert torch.isfinite(result).all()
    if name != "eigencam":                       # EigenCAM is class-agnostic: no target is read
        with pytest.raises(ng.UserError, match="out of range"):
            _run(name, model, x, "3", target=ng.Class([9, 9]))
        snap.assert_unchanged()


def test_new_methods_are_registered_for_the_cli_and_the_explorer():
    from netgaze.methods import CAM_METHODS, LAYER_METHODS, METHODS

    for name in QUICK:
        assert METHODS[name] is getattr(ng, name) and name in CAM_METHODS and name in LAYER_METHODS


def test_several_inputs_by_hand():
    # TwoPictures: logits = [[1, 1], [1, -1]] @ [mean(2 x1), mean(3 x2)], x1 4x4 and x2 2x2; layer "a" = 2 x1.
    from test_multi_input import TwoPictures, _pictures

    model, (x1, x2) = TwoPictures(), _pictures()
    a = 2 * x1[:, 0]
    score = a.mean((1, 2)) + 3 * x2[:, 0].mean((1, 2))
    got = {name: ng.methods.METHODS[name](model, (x1, x2), ["a", "b"], target=0, **QUICK[name])
           for name in QUICK if name != "cam"}
    for name, maps in got.items():
        assert maps["a"].shape == (2, 4, 4) and maps["b"].shape == (2, 2, 2), name
    assert torch.allclose(got["gradcam_elementwise"]["a"], a / 16)                    # g = 1/16 per pixel
    assert torch.allclose(got["eigencam"]["a"], (a - a.mean((1, 2), keepdim=True)).clamp(min=0), atol=1e-6)
    drop = a.mean((1, 2)) / score                                                      # zeroing "a" leaves 3 mean(x2)
    assert torch.allclose(got["ablationcam"]["a"], drop[:, None, None] * a, atol=1e-6)
    for name in ("sscam", "iscam"):                                                    # one channel: softmax weight 1
        assert torch.allclose(got[name]["a"], a, atol=1e-6), name
    assert torch.allclose(got["smoothgradcam_pp"]["a"], ng.gradcam_pp(model, (x1, x2), "a", target=0), atol=1e-6)
