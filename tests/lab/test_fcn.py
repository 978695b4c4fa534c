"""FCN decoders: sizes for any input, bilinear initialisation, ImageNet weight mapping."""
import pytest
import torch
import torch.nn.functional as F

from netgaze.core.layers import resolve_layer
from netgaze.lab.models import ModelError, build_model
from netgaze.lab.models.fcn import DECODERS, bilinear_kernel, upsampler
from netgaze.lab.models.fcn_encoders import alexnet_encoder, classifier_head, load_imagenet, vgg16_encoder


def _fcn(decoder, encoder, classes=3, **args):
    if encoder != "simple":
        args = {"allow_random_init": True, "fc_channels": 16, "weights": None, **args}
    return build_model(decoder, encoder=encoder, num_classes=classes, **args)


@pytest.mark.parametrize("encoder", ["simple", "alexnet", "vgg16"])
@pytest.mark.parametrize("decoder", list(DECODERS))
def test_output_size_equals_input_size_for_odd_sizes(decoder, encoder, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no weights file anywhere
    torch.manual_seed(0)
    model = _fcn(decoder, encoder).eval()
    for size in [(61, 75), (1, 1), (33, 8)]:
        with torch.no_grad():
            out = model(torch.rand(1, 3, *size))
        assert out.shape == (1, 3, *size)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("factor", [2, 8, 32])
def test_transposed_conv_starts_as_bilinear_interpolation(factor):
    """Exact relation: upsampler(x) == interpolate(zero-pad(x, 1))[f:-f, f:-f] (align_corners=False)
    on every pixel; hence == interpolate(x) on all pixels at least f/2 from the border (the interior),
    where a constant stays constant and a linear ramp stays a linear ramp."""
    f, h = factor, factor // 2
    up = upsampler(2, f)
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 7)
    with torch.no_grad():
        out = up(x)
    padded = F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=f, mode="bilinear", align_corners=False)
    assert torch.allclose(out, padded[..., f:-f, f:-f], atol=1e-5)
    plain = F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)
    assert torch.allclose(out[..., h:-h, h:-h], plain[..., h:-h, h:-h], atol=1e-5)

    constant = torch.full((1, 2, 4, 6), 3.0)
    ramp = torch.arange(6.0).expand(1, 2, 4, 6) * 2 + 1      # x -> 2x + 1 along the width
    with torch.no_grad():
        up_constant, up_ramp = up(constant), up(ramp)
    assert torch.allclose(up_constant[..., h:-h, h:-h], torch.tensor(3.0))
    # source coordinate of output column o is (o + 0.5) / f - 0.5, so the ramp reads 2 * that + 1
    cols = torch.arange(6 * f, dtype=torch.float32)
    expected = 2 * ((cols + 0.5) / f - 0.5) + 1
    assert torch.allclose(up_ramp[0, 1, h, h:-h], expected[h:-h], atol=1e-5)
    assert up_constant[0, 0, 0, 0] < 3.0                      # the border sees the zero padding


def test_initialisation_follows_the_paper():
    torch.manual_seed(0)
    model = _fcn("fcn8", "vgg16")
    for name in ["score_fr", "score_pool4", "score_pool3"]:
        layer = getattr(model, name)
        assert layer.weight.abs().sum() == 0 and layer.bias.abs().sum() == 0
    assert torch.equal(model.upscore2.weight, bilinear_kernel(3, 2)) and model.upscore2.weight.requires_grad
    assert torch.equal(model.upscore_pool4.weight, bilinear_kernel(3, 2))
    assert torch.equal(model.upscore.weight, bilinear_kernel(3, 8)) and not model.upscore.weight.requires_grad
    assert bilinear_kernel(2, 2)[0, 1].abs().sum() == 0          # channels are not mixed
    assert torch.allclose(bilinear_kernel(1, 2)[0, 0, 1], torch.tensor([0.1875, 0.5625, 0.5625, 0.1875]))
    assert model.stride == 8 and _fcn("fcn32", "vgg16").stride == 32 and _fcn("fcn8", "simple").stride == 2


def _output_channels_and_sizes(model, names, size=64):
    shapes, handles = {}, []
    for name in names:
        module = resolve_layer(model, name)[1]
        handles.append(module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape)))
    try:
        with torch.no_grad():
            model.eval()(torch.rand(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    return {name: (shapes[name][1], shapes[name][-1]) for name in names}


def test_layer_names_for_explanations():
    """Each documented name resolves to the layer it says: its channel count and its stride."""
    vgg, alex, simple = _fcn("fcn8", "vgg16"), _fcn("fcn16", "alexnet"), _fcn("fcn8", "simple")
    found = _output_channels_and_sizes(vgg, ["encoder.pool3", "encoder.pool4", "encoder.pool5", "encoder.conv5_3",
                                             "head.fc7", "score_fr", "score_pool4", "score_pool3", "upscore2",
                                             "upscore_pool4", "upscore"])
    channels = {name: c for name, (c, _) in found.items()}
    assert channels == {"encoder.pool3": 256, "encoder.pool4": 512, "encoder.pool5": 512, "encoder.conv5_3": 512,
                        "head.fc7": 16, "score_fr": 3, "score_pool4": 3, "score_pool3": 3, "upscore2": 3,
                        "upscore_pool4": 3, "upscore": 3}
    widths = {name: w for name, (_, w) in found.items()}
    # each pool halves the map (FCN pads the input by 100, so compare pools with each other)
    assert abs(widths["encoder.pool3"] - 2 * widths["encoder.pool4"]) <= 1
    assert abs(widths["encoder.pool4"] - 2 * widths["encoder.pool5"]) <= 1
    assert widths["encoder.conv5_3"] == 2 * widths["encoder.pool5"] or widths["encoder.conv5_3"] == 2 * widths[
        "encoder.pool5"] - 1
    found = _output_channels_and_sizes(alex, ["encoder.pool1", "encoder.pool2", "encoder.pool5", "score_pool2",
                                              "upscore2"])
    assert {n: c for n, (c, _) in found.items()} == {"encoder.pool1": 64, "encoder.pool2": 192, "encoder.pool5": 256,
                                                      "score_pool2": 3, "upscore2": 3}
    found = _output_channels_and_sizes(simple, ["encoder.pool1", "encoder.pool2", "encoder.pool3", "score_pool2",
                                                "score_pool1"])
    assert [found[n][1] for n in ("encoder.pool1", "encoder.pool2", "encoder.pool3")] == [32, 16, 8]
    assert found["score_pool2"][0] == found["score_pool1"][0] == 3


def test_vgg16_weights_map_onto_torchvision_numerically(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.randn(16, 512 * 7 * 7) * 0.01   # a narrow fake classifier
    state["classifier.0.bias"] = torch.randn(16)
    state["classifier.3.weight"] = torch.randn(16, 16)
    state["classifier.3.bias"] = torch.randn(16)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = build_model("fcn8", encoder="vgg16", num_classes=3, weights=str(path), fc_channels=16).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ours = model.encoder(model.normalize(x))[-1]
        theirs = features.eval()(model.normalize(x))
        assert torch.allclose(ours, theirs, atol=1e-5)
        # fc6 as a 7x7 conv: its centre pixel on a 7x7 map is the linear layer on the flattened map
        pool5 = torch.randn(1, 512, 7, 7)
        fc6 = model.head.fc6(model.head.pad6(pool5))[0, :, 3, 3]
        assert torch.allclose(fc6, F.linear(pool5.flatten(1), state["classifier.0.weight"],
                                            state["classifier.0.bias"])[0], atol=1e-4)
    assert torch.equal(model.head.fc7.weight[:, :, 0, 0], state["classifier.3.weight"])


def test_alexnet_weights_and_missing_file_message(tmp_path, monkeypatch):
    from torchvision.models import alexnet

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    torch.manual_seed(0)
    net = alexnet(weights=None)
    state = {k: v for k, v in net.state_dict().items() if k.startswith("features.")}
    fc6 = torch.nn.Linear(256 * 6 * 6, 16)          # a narrow stand-in for the 4096-unit classifier
    state.update({"classifier.1.weight": fc6.weight.detach(), "classifier.1.bias": fc6.bias.detach(),
                  "classifier.4.weight": torch.randn(16, 16), "classifier.4.bias": torch.randn(16)})
    encoder = alexnet_encoder()
    head = classifier_head(encoder, 16)
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    assert load_imagenet(encoder, head, str(path), allow_random_init=False)
    assert torch.equal(encoder.conv1.weight, net.features[0].weight)
    assert torch.equal(encoder.conv5.weight, net.features[10].weight)
    pool5 = torch.randn(1, 256, 6, 6)
    with torch.no_grad():   # fc6 as a 6x6 conv (padded 2 before, 3 after): pixel (2, 2) sees the whole map
        assert torch.allclose(head.fc6(head.pad6(pool5))[0, :, 2, 2], fc6(pool5.flatten(1))[0], atol=1e-4)
    assert not load_imagenet(alexnet_encoder(), classifier_head(encoder, 16), None, allow_random_init=True)

    with pytest.raises(ModelError, match=r"put alexnet-owt-7be5be79.pth at .*hub/checkpoints.*allow_random_init"):
        build_model("fcn32", encoder="alexnet", num_classes=3)
    with pytest.raises(ModelError, match="not found"):
        build_model("fcn32", encoder="alexnet", num_classes=3, weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ModelError, match="not a torchvision vgg16"):
        build_model("fcn32", encoder="vgg16", num_classes=3, weights=str(path), fc_channels=8)
    with pytest.raises(ModelError, match="simple, vgg16, alexnet"):
        build_model("fcn8", encoder="resnet", num_classes=3)


@pytest.mark.parametrize("bad", [0, -4, 2.5])
def test_fc_channels_must_be_positive(bad):
    with pytest.raises(ModelError, match="fc_channels must be a whole number"):
        _fcn("fcn8", "alexnet", fc_channels=bad)
