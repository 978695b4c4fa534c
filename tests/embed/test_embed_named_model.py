"""`netgaze embed --model torchvision:NAME --data SPEC`: a named model's features of any picture dataset."""
from __future__ import annotations

import numpy as np
import torch
import torchvision

from netgaze.cli import main
from netgaze.embed.model_on_data import ResizedPictures
from netgaze.lab.datasets import load_dataset


def test_embed_a_named_model_over_digits(tmp_path, capsys, one_thread):
    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval()
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    code = main(["embed", "--model", "torchvision:resnet18", "--weights", str(tmp_path / "r18.pth"), "--data", "digits",
                 "--size", "32", "--limit", "12", "--method", "pca", "--no-progress", "--out", str(tmp_path / "e")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == "" and "by net.avgpool (512 features)" in captured.out
    saved = np.load(tmp_path / "e" / "embedding.npz")
    # the first embedded picture: the digit resized to 32x32, 3 channels, ImageNet-normalised, pooled by layer4
    pictures = ResizedPictures(load_dataset("digits", "test"), 32)
    image, label = pictures[int(saved["indices"][0])]
    assert image.shape == (3, 32, 32) and int(saved["labels"][0]) == label
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    body = torch.nn.Sequential(*list(net.children())[:-1])
    with torch.no_grad():
        expected = body(((image - mean) / std)[None]).flatten()
    assert np.allclose(saved["features"][0], expected.numpy(), atol=1e-4)
    assert "predictions" not in saved.files  # ImageNet predictions are not the digits' labels
    code = main(["embed", "--model", "torchvision:lraspp_mobilenet_v3_large", "--data", "digits", "--out", str(tmp_path / "x")])
    assert code == 2 and "takes a classifier's features" in capsys.readouterr().err
