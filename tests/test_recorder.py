"""The recorder's promises: refusals with clear messages, and the model left as found."""
import pytest
import torch
import torch.nn as nn

import netgaze as ng
from methods.toys import SharedTwice, gap_classifier


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         nn.Dropout(0.5), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def test_layer_that_runs_twice_is_refused_and_hooks_are_removed(snapshot):
    model = SharedTwice()
    snap = snapshot(model)
    with pytest.raises(ng.RecorderError, match="runs more than once"):
        ng.gradcam(model, torch.rand(1, 3, 8, 8), "conv")
    snap.assert_unchanged()


def test_inference_mode_input_is_refused():
    with torch.inference_mode():
        x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ng.RecorderError, match="inference_mode"):
        ng.gradcam(small_cnn(), x, "4")


def test_works_inside_no_grad_and_restores_the_mode():
    model = small_cnn().eval()
    x = torch.rand(2, 3, 8, 8)
    expected = ng.gradcam(model, x, "4")
    with torch.no_grad():
        got = ng.gradcam(model, x, "4")
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()
    assert torch.equal(got, expected)


def test_train_mode_model_is_explained_in_eval_mode_and_restored(snapshot):
    model = small_cnn()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
    x = torch.rand(2, 3, 8, 8)
    expected = ng.gradcam(model.eval(), x, "4")
    model.train()
    snap = snapshot(model)
    assert torch.equal(ng.gradcam(model, x, "4"), expected)
    snap.assert_unchanged()
    assert model.training and model[3].training


def test_frozen_parameters_still_give_gradients(snapshot):
    model = small_cnn().eval()
    x = torch.rand(2, 3, 8, 8)
    expected = ng.gradcam(model, x, "0")
    for p in model.parameters():
        p.requires_grad_(False)
    snap = snapshot(model)
    assert torch.equal(ng.gradcam(model, x, "0"), expected)
    assert torch.allclose(ng.saliency(model, x), ng.saliency(small_cnn().eval(), x))
    snap.assert_unchanged()


def test_parameter_grads_are_untouched(snapshot):
    model = small_cnn().eval()
    model(torch.rand(1, 3, 8, 8)).sum().backward()
    snap = snapshot(model)
    ng.gradcam(model, torch.rand(2, 3, 8, 8), ["0", "4"])
    ng.guided_backprop(model, torch.rand(2, 3, 8, 8))
    snap.assert_unchanged()


@pytest.mark.parametrize("bad", [ng.Class([1, 2, 3]), ng.Class(99), ng.Area(box=(0, 0, 2, 2)), ng.TopClass(9)])
def test_bad_targets_raise_and_leave_the_model_untouched(bad, snapshot):
    model = small_cnn().train()
    snap = snapshot(model)
    with pytest.raises((ValueError, ng.RecorderError)):
        ng.gradcam(model, torch.rand(2, 3, 8, 8), "4", target=bad)
    snap.assert_unchanged()


def test_target_count_must_match_batch():
    with pytest.raises(ValueError, match="3 targets given for a batch of 2"):
        ng.saliency(small_cnn(), torch.rand(2, 3, 8, 8), target=[0, 1, 2])


def test_unconnected_layer_is_refused():
    class Detached(nn.Module):
        def __init__(self):
            super().__init__()
            self.side = nn.Conv2d(3, 3, 1)
            self.main = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            self.side(x)
            return self.main(x).mean(dim=(2, 3))

    with pytest.raises(ng.RecorderError, match="not connected"):
        ng.gradcam(Detached(), torch.rand(1, 3, 4, 4), "side")


def test_output_selectors():
    from methods.toys import TwoHeads
    model, x = TwoHeads(), torch.rand(1, 1, 2, 2)
    area = ng.Area(box=(0, 0, 1, 2))
    # A tuple output explains its first element by default (a VAE's reconstruction).
    assert torch.equal(ng.saliency(model, x, target=area), ng.saliency(model, x, target=area, output=0))
    assert torch.equal(ng.saliency(model, x, target=ng.Latent(0), output=lambda out: out[1]),
                       ng.saliency(model, x, target=ng.Latent(0), output=1))
    with pytest.raises(ng.RecorderError, match="valid"):
        ng.gradcam(model, x, "encoder", output=5)

    class DictOut(torch.nn.Module):
        def forward(self, x):
            return {"logits": x.mean(dim=(2, 3))}

    # A "logits" entry (Hugging Face's ModelOutput, a dict) is explained without output=.
    x = torch.rand(1, 3, 2, 2)
    assert torch.equal(ng.saliency(DictOut(), x, target=0), ng.saliency(DictOut(), x, target=0, output="logits"))

    class OtherDict(torch.nn.Module):
        def forward(self, x):
            return {"scores": x.mean(dim=(2, 3))}

    with pytest.raises(ng.RecorderError, match="keys \\['scores'\\]"):
        ng.saliency(OtherDict(), x)
    assert ng.saliency(OtherDict(), x, target=0, output="scores").shape == (1, 3, 2, 2)


def test_recorder_outside_context_refuses():
    rec = ng.Recorder(gap_classifier(), ["0"])
    with pytest.raises(ng.RecorderError, match="inside"):
        rec.forward(torch.rand(1, 1, 2, 2))


@pytest.mark.parametrize("passthrough", [nn.Identity(), nn.Dropout(0.5), nn.Flatten(1, 1)],
                         ids=["identity", "dropout-eval", "noop-flatten"])
def test_pass_through_layer_with_an_input_that_requires_grad(passthrough, snapshot):
    """Captum's pass-through case: the layer returns the (grad-requiring) input tensor itself.

    Model: pass -> 1x1 conv W -> global average pool -> linear V. Grad-CAM at ``pass``
    weights input channel k by alpha_k = sum_j V[c, j] W[j, k] / (H W).
    """
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("pass", passthrough)
    model.add_module("conv", nn.Conv2d(3, 4, 1))
    model.add_module("pool", nn.AdaptiveAvgPool2d(1))
    model.add_module("flat", nn.Flatten())
    model.add_module("fc", nn.Linear(4, 2))
    model.eval()
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    snap = snapshot(model)
    maps = ng.gradcam(model, x, "pass", target=ng.Class([1, 0]))
    W, V = model.conv.weight[:, :, 0, 0], model.fc.weight
    for i, c in enumerate([1, 0]):
        alpha = (V[c] @ W) / 25
        expected = torch.relu((alpha[:, None, None] * x[i]).sum(0))
        assert torch.allclose(maps[i], expected.detach(), atol=1e-6)
    assert torch.equal(maps, ng.gradcam(model, x.detach(), "pass", target=ng.Class([1, 0])))
    assert x.grad is None
    snap.assert_unchanged()
