import pytest
import torch.nn as nn
import torchvision

import netgaze as ng
from netgaze.core.layers import resolve_layers


def test_names_modules_and_negative_indices():
    model = torchvision.models.resnet18()
    assert ng.resolve_layer(model, "layer4.1.conv2")[1] is model.layer4[1].conv2
    assert ng.resolve_layer(model, model.layer3)[0] == "layer3"
    assert ng.resolve_layer(model, -1)[0] == "layer4"      # stages, not convs inside a block
    assert ng.resolve_layer(model, -2)[0] == "layer3"
    assert ng.conv_layer_names(model)[0] == "conv1"


def test_unknown_name_lists_close_names():
    model = torchvision.models.vgg16()
    with pytest.raises(ng.LayerError) as err:
        ng.resolve_layer(model, "feature.28")
    assert "'features.28'" in str(err.value)


@pytest.mark.parametrize("ref, message", [(0, "from the end"), (-99, "out of range"), (1.5, "not float"),
                                          (nn.Conv2d(1, 1, 1), "not part of the model")])
def test_bad_references(ref, message):
    with pytest.raises(ng.LayerError, match=message):
        ng.resolve_layer(torchvision.models.alexnet(), ref)


def test_duplicates_refused():
    with pytest.raises(ng.LayerError, match="twice"):
        resolve_layers(torchvision.models.alexnet(), ["features", -1])


def test_wrapped_network_names_as_users_type_them():
    from netgaze.lab.models.classifiers import Normalized
    from netgaze.lab.models.normalize import Normalize
    from netgaze.core.layers import display_name

    inner = nn.Sequential()
    inner.add_module("stem", nn.Conv2d(3, 4, 3))
    inner.add_module("head", nn.Conv2d(4, 2, 1))
    model = Normalized(Normalize([0.5] * 3, [0.5] * 3), inner)
    assert ng.resolve_layer(model, "head") == ("net.head", inner.head)
    assert ng.resolve_layer(model, "net.head") == ("net.head", inner.head)
    assert display_name(model, "net.head") == "head" and display_name(model, "normalize") == "normalize"
    with pytest.raises(ng.LayerError) as caught:
        ng.resolve_layer(model, "haed")
    assert "closest valid names: 'head'" in str(caught.value) and "net." not in str(caught.value)
