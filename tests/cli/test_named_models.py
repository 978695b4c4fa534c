"""--model torchvision:NAME | timm:NAME: weights, number of classes, class names, random-weights warning."""
from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from netgaze.studies.explain_files import ModelInputError
from netgaze.zoo.named import load_named_model


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("named")
    torch.manual_seed(0)
    r18 = torchvision.models.resnet18().state_dict()
    torch.save(r18, root / "resnet18-f37072fd.pth")                  # torchvision's own file name
    save_file(r18, str(root / "mine.safetensors"))                     # any other name, 1,000 classes
    ten = dict(r18, **{"fc.weight": r18["fc.weight"][:10].clone(), "fc.bias": r18["fc.bias"][:10].clone()})
    torch.save(ten, root / "ten.pth")                                  # a fine-tuned 10-class head
    torch.save(torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=4).state_dict(), root / "lraspp4.pth")
    torch.save(torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=5).state_dict(), root / "ssd5.pth")
    (root / "ten.txt").write_text("\n".join(f"thing{i}" for i in range(10)) + "\n\n")
    return root


def test_torchvision_classifier_names_come_from_the_weights_enum(weights, one_thread):
    imagenet = list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    by_file = load_named_model("torchvision:resnet18", weights / "resnet18-f37072fd.pth", size=32)
    assert by_file.classes == imagenet and by_file.task == "classify" and not by_file.random_weights
    by_count = load_named_model("torchvision:resnet18", weights / "mine.safetensors", size=32)
    assert by_count.classes[0] == "tench"
    explicit = load_named_model("torchvision:resnet18", weights / "mine.safetensors", weights_enum="ResNet18_Weights.IMAGENET1K_V1")
    assert explicit.classes == imagenet
    # the loaded weights are used, behind ImageNet normalisation
    x = torch.rand(1, 3, 32, 32)
    reference = torchvision.models.resnet18().eval()
    reference.load_state_dict(torch.load(weights / "resnet18-f37072fd.pth", weights_only=True))
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(by_file.model(x), reference((x - mean) / std), atol=1e-5)


def test_random_weights_give_indices_and_a_fine_tuned_head_its_own_size(weights, one_thread):
    random = load_named_model("torchvision:resnet18", None, size=32)
    assert random.random_weights and random.classes[:3] == ["0", "1", "2"] and len(random.classes) == 1000
    ten = load_named_model("torchvision:resnet18", weights / "ten.pth")
    assert ten.model.net.fc.out_features == 10 and ten.classes == [str(i) for i in range(10)]
    named = load_named_model("torchvision:resnet18", weights / "ten.pth", labels=weights / "ten.txt")
    assert named.classes[9] == "thing9"
    with pytest.raises(ModelInputError, match="has 10 names but the model scores 1000"):
        load_named_model("torchvision:resnet18", weights / "mine.safetensors", labels=weights / "ten.txt")
    with pytest.raises(ModelInputError, match="IMAGENET1K_V1"):
        load_named_model("torchvision:resnet18", weights / "ten.pth", weights_enum="IMAGENET1K_V9")
    with pytest.raises(ModelInputError, match="do not fit"):
        load_named_model("torchvision:resnet18", weights / "ten.pth", weights_enum="IMAGENET1K_V1")
    with pytest.raises(ModelInputError, match="does not fit torchvision:resnet34"):
        load_named_model("torchvision:resnet34", weights / "ten.pth")
    with pytest.raises(ModelInputError, match="did you mean resnet18"):
        load_named_model("torchvision:resnet81", None)
    with pytest.raises(ModelInputError, match="torchvision:NAME or timm:NAME"):
        load_named_model("hub:resnet18", None)


def test_segmenter_and_detector_class_counts_from_the_weights(weights, one_thread):
    seg = load_named_model("torchvision:lraspp_mobilenet_v3_large", weights / "lraspp4.pth", size=32)
    assert seg.task == "segment" and len(seg.classes) == 4 and seg.classes == ["0", "1", "2", "3"]
    with torch.no_grad():
        assert seg.model(torch.rand(1, 3, 32, 32))["out"].shape == (1, 4, 32, 32)
    det = load_named_model("torchvision:ssdlite320_mobilenet_v3_large", weights / "ssd5.pth")
    assert det.task == "detect" and len(det.classes) == 5 and det.model.head.classification_head.num_columns == 5
    coco = load_named_model("torchvision:ssdlite320_mobilenet_v3_large", None)
    assert coco.random_weights and coco.classes[1] == "1"  # no COCO names for random weights


def test_timm_models_with_timm_names_and_normalisation(weights, one_thread):
    pytest.importorskip("timm")
    from timm.data import ImageNetInfo

    import timm
    net = timm.create_model("resnet18", pretrained=False)
    torch.save(net.state_dict(), weights / "timm-r18.pth")
    loaded = load_named_model("timm:resnet18", weights / "timm-r18.pth", size=32)
    assert loaded.classes[1] == ImageNetInfo().index_to_description(1).split(",")[0] == "goldfish"
    assert torch.allclose(loaded.model.normalize.mean.flatten(), torch.tensor(timm.get_pretrained_cfg("resnet18").mean))
    ten = load_named_model("timm:resnet18", weights / "ten.pth")  # timm's resnet keeps torchvision's key names
    assert ten.model.net.fc.out_features == 10
    with pytest.raises(ModelInputError, match="does not fit timm:resnet18"):
        load_named_model("timm:resnet18", weights / "lraspp4.pth")
