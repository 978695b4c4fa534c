"""The model registry and the classifiers: names, errors, normalisation, freezing, one training step."""
from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision

from netgaze.core.layers import conv_layer_names
from netgaze.lab.models import ModelError, Normalize, build_model, model_names
from netgaze.lab.models.classifiers import RESNET18_FILE, resnet18_weights_path

SIMPLE = ["simple-cnn", "simple-cnn-bn", "torchvision:mobilenet_v3_small", "transfer-resnet18"]


def test_registry_lists_every_family():
    names = model_names()
    for name in ["simple-cnn", "simple-cnn-bn", "transfer-resnet18", "torchvision:NAME", "timm:NAME"]:
        assert name in names


def test_unknown_name_lists_known_names():
    with pytest.raises(ModelError, match=r"did you mean simple-cnn.*known models: .*simple-cnn-bn.*transfer-resnet18"):
        build_model("simple-cnnn")
    with pytest.raises(ModelError, match="did you mean resnet"):
        build_model("torchvision:resnet")


def test_misspelt_argument_names_the_valid_ones():
    with pytest.raises(ModelError, match=r"no argument 'num_class'.*num_classes, in_channels, mean, std, channels"):
        build_model("simple-cnn", num_class=3)


def test_timm_needs_timm(monkeypatch):
    """Holds with and without timm: its absence is simulated, its presence is checked by numbers."""
    try:
        import timm
    except ImportError:
        timm = None
    if timm is not None:
        torch.manual_seed(0)
        model = build_model("timm:resnet18", num_classes=3).eval()
        reference = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
        reference.load_state_dict(model.net.state_dict())
        x = torch.rand(2, 3, 32, 32)
        mean, std = model.normalize.mean, model.normalize.std  # [1, 3, 1, 1] buffers
        with torch.no_grad():
            assert torch.allclose(model(x), reference((x - mean) / std), atol=1e-5)
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    with pytest.raises(ModelError, match="pip install timm"):
        build_model("timm:resnet18")


def test_normalize_numbers_and_gray_to_rgb():
    norm = Normalize([0.5], [0.25], out_channels=3)
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    y = norm(x)
    assert y.shape == (1, 3, 1, 3)
    assert torch.equal(y[0, :, 0], torch.tensor([[-2.0, 0.0, 2.0]] * 3))
    with pytest.raises(ValueError, match="expects pictures with 1 channel"):
        norm(torch.rand(1, 3, 2, 2))


def test_simple_cnn_layer_names_and_mean_std_inside():
    model = build_model("simple-cnn", num_classes=4, in_channels=1, mean=[0.2], std=[0.3])
    assert conv_layer_names(model) == [f"features.conv{i}" for i in range(1, 5)]
    assert model.normalize.mean.item() == pytest.approx(0.2) and model.normalize.std.item() == pytest.approx(0.3)
    bn = build_model("simple-cnn-bn", num_classes=4, dropout=0.2)
    names = dict(bn.named_modules())
    assert isinstance(names["features.bn3"], torch.nn.BatchNorm2d)
    assert isinstance(names["features.drop3"], torch.nn.Dropout2d) and names["features.drop3"].p == 0.2
    # conv4 is not pooled: 1/8 of the input resolution
    acts = model.features(model.normalize(torch.rand(1, 1, 32, 32)))
    assert acts.shape == (1, 128, 4, 4)


@pytest.mark.parametrize("name", SIMPLE)
def test_every_simple_model_trains_one_step(name):
    torch.manual_seed(0)
    args = {"num_classes": 3, "in_channels": 1}
    if name == "transfer-resnet18":
        args.update(allow_random_init=True, unfreeze=True)
    model = build_model(name, **args).train()
    x, y = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(x), y)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert conv_layer_names(model)[0] + ".weight" in changed, f"{name}: the first conv layer did not learn"
    assert "normalize.mean" not in changed and "normalize.std" not in changed


def test_transfer_resnet18_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    expected = tmp_path / "hub" / "hub" / "checkpoints" / RESNET18_FILE
    assert resnet18_weights_path() == expected
    with pytest.raises(ModelError, match=f"put {RESNET18_FILE} at {expected}.*--allow-random-init"):
        build_model("transfer-resnet18", num_classes=3)
    with pytest.raises(ModelError, match="not found"):
        build_model("transfer-resnet18", num_classes=3, weights=str(tmp_path / "missing.pth"))


def test_transfer_resnet18_loads_local_weights_and_freezes(tmp_path, monkeypatch):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    expected = tmp_path / "hub" / "hub" / "checkpoints" / RESNET18_FILE
    expected.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), expected)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    model = build_model("transfer-resnet18", num_classes=3)  # found in the hub cache
    assert torch.equal(model.net.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert model.net.fc.out_features == 3
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["net.fc.weight", "net.fc.bias"]
    # one step on the head: the backbone and its batch-norm statistics do not move
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    F.cross_entropy(model(torch.rand(4, 3, 32, 32)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"net.fc.weight", "net.fc.bias"}
    unfrozen = build_model("transfer-resnet18", num_classes=3, weights=str(expected), unfreeze=True)
    assert all(p.requires_grad for p in unfrozen.parameters())
    bad = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(2)}, bad)
    with pytest.raises(ModelError, match="not a torchvision ResNet-18 state dict"):
        build_model("transfer-resnet18", weights=str(bad))
