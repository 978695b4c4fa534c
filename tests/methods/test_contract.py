"""Every method on every model family: invariants, not only shapes."""
import functools

import pytest
import torch
import torchvision

import netgaze as ng

# family: (builder, explained layer, several layers, a narrow layer that keeps Score-CAM quick)
FAMILIES = {
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=7), "layer4", ["layer1", "layer2", "layer3", "layer4"],
                 "layer1"),
    "vgg16": (lambda: torchvision.models.vgg16(num_classes=7), "features.28", ["features.14", "features.21", "features.28"],
              "features.2"),
    "alexnet": (lambda: torchvision.models.alexnet(num_classes=7), "features.10", ["features.3", "features.8", "features.10"],
                "features.0"),
}

LAYER_METHODS = ["gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "guided_gradcam"]
INPUT_METHODS = ["saliency", "guided_backprop", "integrated_gradients", "smoothgrad"]


@functools.lru_cache(maxsize=None)
def _model(family: str):
    torch.manual_seed(0)
    return FAMILIES[family][0]()


def _call(name, model, x, layer, target=None):
    method = ng.methods.METHODS[name]
    if name in LAYER_METHODS or name == "scorecam":
        return method(model, x, layer, target)
    if name == "integrated_gradients":
        return method(model, x, target, steps=4)
    if name == "smoothgrad":
        return method(model, x, target, n=2)
    return method(model, x, target)


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("name", LAYER_METHODS + INPUT_METHODS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_method_runs_and_leaves_model_untouched(family, name, mode, snapshot):
    model = _model(family).train(mode == "train")
    layer = FAMILIES[family][1]
    x = torch.rand(2, 3, 64, 64)
    snap = snapshot(model)
    result = _call(name, model, x, layer)
    snap.assert_unchanged()
    expected = (2, 64, 64) if name in LAYER_METHODS and name != "guided_gradcam" else (2, 3, 64, 64)
    assert result.shape == expected
    assert torch.isfinite(result).all()
    if name in LAYER_METHODS[:-1]:
        assert (result >= 0).all()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_scorecam_leaves_train_mode_model_untouched(family, snapshot):
    model = _model(family).train()
    side = 64 if family == "alexnet" else 32  # alexnet's pools need 63 pixels
    x = torch.rand(1, 3, side, side)
    snap = snapshot(model)
    cam = ng.scorecam(model, x, FAMILIES[family][3], batch_size=64)
    snap.assert_unchanged()
    assert cam.shape == (1, side, side) and torch.isfinite(cam).all() and (cam >= 0).all() and cam.max() > 0


@pytest.mark.parametrize("name", LAYER_METHODS + INPUT_METHODS + ["scorecam"])
def test_every_method_leaves_model_untouched_even_when_it_raises(name, snapshot):
    """A target that fails after the forward pass (class 99 of 7): hooks, modes and grads restored."""
    from netgaze.errors import UserError

    model = _model("resnet18").train()
    x = torch.rand(2, 3, 32, 32)
    snap = snapshot(model)
    with pytest.raises(UserError, match="out of range"):
        _call(name, model, x, FAMILIES["resnet18"][3], target=ng.Class([99, 99]))
    snap.assert_unchanged()


@pytest.mark.parametrize("family", ["resnet18", "alexnet"])
def test_scorecam_on_torchvision(family, snapshot):
    model = _model(family).eval()
    x = torch.rand(1, 3, 64, 64)
    snap = snapshot(model)
    cam = ng.scorecam(model, x, FAMILIES[family][1], batch_size=128)
    snap.assert_unchanged()
    assert cam.shape == (1, 64, 64) and (cam >= 0).all()


@pytest.mark.parametrize("name", ["gradcam", "layercam", "guided_backprop", "guided_gradcam", "saliency"])
def test_batch_equals_samples_one_by_one(name):
    model = _model("resnet18").eval()
    torch.manual_seed(1)
    x = torch.rand(8, 3, 48, 48)
    batch = _call(name, model, x, "layer3")
    singles = torch.cat([_call(name, model, x[i:i + 1], "layer3") for i in range(8)])
    scale = singles.abs().max()
    assert torch.allclose(batch, singles, atol=1e-5 * float(scale) + 1e-9)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_many_layers_at_once_equal_one_at_a_time(family):
    model = _model(family).eval()
    layers = FAMILIES[family][2]
    x = torch.rand(2, 3, 64, 64)
    together = ng.gradcam(model, x, layers, target=ng.Class([1, 4]))
    assert list(together) == layers
    for layer in layers:
        alone = ng.gradcam(model, x, layer, target=ng.Class([1, 4]))
        assert torch.allclose(together[layer], alone, atol=1e-6 * float(alone.abs().max()) + 1e-12)


def test_top_k_gives_one_map_per_class_in_order():
    model = _model("resnet18").eval()
    x = torch.rand(2, 3, 48, 48)
    maps = ng.gradcam(model, x, "layer4", target=ng.TopClass(3))
    order = model(x).topk(3, dim=1).indices
    assert maps.shape == (2, 3, 48, 48)
    for k in range(3):
        assert torch.allclose(maps[:, k], ng.gradcam(model, x, "layer4", target=ng.Class(order[:, k])), atol=1e-6)


def test_default_target_is_the_top_class():
    model = _model("alexnet").eval()
    x = torch.rand(3, 3, 64, 64)
    top = model(x).argmax(1)
    assert torch.allclose(ng.gradcam(model, x, "features.10"), ng.gradcam(model, x, "features.10", target=top))


def test_in_place_relu_layer_records_the_conv_output():
    # features.28 of vgg16 is a conv followed by an in-place ReLU: the explained activation must
    # be the conv output (with negative values), not the ReLU'd tensor.
    model = _model("vgg16").eval()
    x = torch.rand(1, 3, 32, 32)
    with ng.Recorder(model, ["features.28"]) as rec:
        rec.forward(x)
        assert (rec.activations["features.28"] < 0).any()
