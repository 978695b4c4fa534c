"""Classifiers of the lab: small CNNs, any torchvision / timm model, ResNet-18 transfer.

Every model starts with a ``normalize`` layer (``Normalize``), so it takes pictures in
[0, 1]. Builders take ``num_classes`` and ``in_channels`` (1 for digits / MNIST, 3 for
colour pictures) and, where the model learns from scratch, the dataset's per-channel
``mean`` and ``std``; all arguments are plain JSON values, so ``run.json`` can rebuild
the model with ``build_model(name, **args)``.
"""
from __future__ import annotations

import difflib
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from netgaze.lab.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize, default_stats
from netgaze.lab.models.registry import ModelError, register_model

RESNET18_FILE = "resnet18-f37072fd.pth"


class SimpleCNN(nn.Module):
    """Four 3x3 conv layers with ReLU, max pooling, global average pooling, a linear head.

    Layer names (for ``layer=`` in explanations)::

        normalize                          Normalize, pictures in [0, 1] -> standardised
        features.conv1 .. features.conv4   Conv2d 3x3, padding 1 (channels e.g. 32-64-128-128)
        features.bn1 .. features.bn4       BatchNorm2d (simple-cnn-bn only)
        features.relu1 .. features.relu4   ReLU (not in place)
        features.drop1 .. features.drop4   Dropout2d, channel dropout (simple-cnn-bn only)
        features.pool1 .. features.pool3   MaxPool2d 2x2 after the first three stages
        pool                               AdaptiveAvgPool2d(pool_grid): global average pool (1), or a
                                           coarse grid (e.g. 3) that keeps where things are
        classifier                         Linear(channels[-1] * pool_grid**2, num_classes)

    ``conv4`` is not pooled, so the last conv layer (``layer=-1``, ``"features.conv4"``)
    keeps 1/8 of the input resolution (8x8 on 64x64 shapes) for Grad-CAM. The head is
    global-average-pool then linear, so Grad-CAM on ``features.relu4`` equals CAM / (H*W).
    ``pool_grid=3`` averages into a 3x3 grid instead, so each class weighs each region of the
    picture on its own: class visualisations of a digits classifier then look like digits
    (with one global average, the class unit cannot tell a stroke's position, and activation
    maximization draws stroke fragments anywhere).
    """

    def __init__(self, num_classes: int, in_channels: int, mean: Sequence[float], std: Sequence[float],
                 channels: Sequence[int] = (32, 64, 128, 128), batch_norm: bool = False, dropout: float = 0.0,
                 pool_grid: int = 1):
        super().__init__()
        if len(channels) != 4:
            raise ModelError(f"simple-cnn has 4 conv layers, so channels needs 4 numbers, got {list(channels)}")
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in channels):
            raise ModelError(f"simple-cnn channels must be whole numbers >= 1, got {list(channels)}")
        if int(pool_grid) < 1:
            raise ModelError(f"pool_grid must be 1 (global average pool) or more, got {pool_grid}")
        self.normalize = Normalize(mean, std)
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        previous = in_channels
        for i, width in enumerate(channels, start=1):
            layers[f"conv{i}"] = nn.Conv2d(previous, width, 3, padding=1, bias=not batch_norm)
            if batch_norm:
                layers[f"bn{i}"] = nn.BatchNorm2d(width)
            layers[f"relu{i}"] = nn.ReLU()
            if dropout > 0:
                layers[f"drop{i}"] = nn.Dropout2d(dropout)
            if i < len(channels):
                layers[f"pool{i}"] = nn.MaxPool2d(2)
            previous = width
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(int(pool_grid))
        self.classifier = nn.Linear(previous * int(pool_grid) ** 2, num_classes)
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                # He initialisation keeps the activations' scale through the ReLUs; PyTorch's
                # default (uniform, a=sqrt(5)) shrinks them so much that the network without
                # batch norm sits at chance for the first epoch
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.normalize(x))
        return self.classifier(torch.flatten(self.pool(x), 1))


class Normalized(nn.Module):
    """A third-party network behind a ``normalize`` layer; its layers are ``net.NAME``."""

    def __init__(self, normalize: Normalize, net: nn.Module):
        super().__init__()
        self.normalize = normalize
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


class TransferResNet18(Normalized):
    """ResNet-18 with a new ``net.fc`` head; ``frozen`` keeps the backbone fixed.

    A frozen backbone has ``requires_grad=False`` on every parameter but the head's, and
    its batch-norm layers stay in eval mode during training (their running statistics
    are the ImageNet ones and must not drift).
    """

    def __init__(self, normalize: Normalize, net: nn.Module, frozen: bool):
        super().__init__(normalize, net)
        self.frozen = frozen
        if frozen:
            for name, param in net.named_parameters():
                param.requires_grad_(name.startswith("fc."))

    def train(self, mode: bool = True) -> "TransferResNet18":
        super().train(mode)
        if self.frozen and mode:
            for name, module in self.net.named_modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def _stats(in_channels: int, mean: Sequence[float] | None, std: Sequence[float] | None):
    default_mean, default_std = default_stats(in_channels)
    mean = list(mean) if mean is not None else default_mean
    std = list(std) if std is not None else default_std
    if len(mean) != in_channels or len(std) != in_channels:
        raise ModelError(f"mean/std need {in_channels} values (one per input channel), got {mean} / {std}")
    return mean, std


@register_model("simple-cnn")
def simple_cnn(num_classes: int = 10, in_channels: int = 3, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None, channels: Sequence[int] = (32, 64, 128, 128),
               pool_grid: int = 1) -> nn.Module:
    """The report's small CNN: 4 conv+ReLU stages, max pooling, global average pool (or a
    ``pool_grid`` x ``pool_grid`` average), linear."""
    mean, std = _stats(in_channels, mean, std)
    return SimpleCNN(num_classes, in_channels, mean, std, channels, pool_grid=pool_grid)


@register_model("simple-cnn-bn")
def simple_cnn_bn(num_classes: int = 10, in_channels: int = 3, mean: Sequence[float] | None = None,
                  std: Sequence[float] | None = None, channels: Sequence[int] = (32, 64, 128, 128),
                  dropout: float = 0.1) -> nn.Module:
    """simple-cnn with batch norm after each conv and channel dropout (``Dropout2d``) after each ReLU."""
    mean, std = _stats(in_channels, mean, std)
    return SimpleCNN(num_classes, in_channels, mean, std, channels, batch_norm=True, dropout=dropout)


def _torchvision_names() -> list[str]:
    import torchvision.models
    return sorted(torchvision.models.list_models(module=torchvision.models))


@register_model("torchvision:")
def torchvision_model(name: str, num_classes: int = 1000, in_channels: int = 3,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      normalize: bool = True) -> nn.Module:
    """Any torchvision classification model by name, randomly initialised, layers under ``net.``.

    1-channel pictures are repeated to 3 channels after normalisation. ``normalize=False``
    gives the bare torchvision network (layers at the top, no normalisation inside: it takes
    whatever its user trained it on), as a run written from the user's own training records it.
    """
    import torchvision.models
    known = _torchvision_names()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelError(f"torchvision has no classification model {name!r}; {hint}"
                         f"known: {', '.join(known)}")
    net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    if not normalize:
        return net
    mean, std = _stats(in_channels, mean, std)
    return Normalized(Normalize(mean, std, out_channels=3), net)


@register_model("timm:")
def timm_model(name: str, num_classes: int = 1000, in_channels: int = 3,
               mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
               normalize: bool = True) -> nn.Module:
    """Any timm model by name (needs ``pip install timm``), randomly initialised, layers under ``net.``
    (``normalize=False``: the bare timm network, as for ``torchvision:``)."""
    try:
        import timm
    except ImportError:
        raise ModelError(f"timm:{name} needs the timm package, which is not installed: "
                         "pip install timm (or pip install 'netgaze[timm]')") from None
    if not timm.list_models(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ModelError(f"timm has no model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    net = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)
    if not normalize:
        return net
    mean, std = _stats(in_channels, mean, std)
    return Normalized(Normalize(mean, std), net)


def resnet18_weights_path() -> Path:
    """Where ``transfer-resnet18`` looks for ImageNet weights when none are given: the torch hub cache."""
    return Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE


@register_model("transfer-resnet18")
def transfer_resnet18(num_classes: int = 10, in_channels: int = 3, weights: str | None = None,
                      unfreeze: bool = False, allow_random_init: bool = False) -> nn.Module:
    """ResNet-18 with ImageNet weights from a local file, a new head, the backbone frozen.

    Args:
        num_classes: size of the new head ``net.fc``.
        in_channels: 1-channel pictures are repeated to 3 after ImageNet normalisation.
        weights: a ``resnet18-f37072fd.pth`` state dict file (torchvision's ImageNet
            weights). None looks in the torch hub cache (``resnet18_weights_path()``).
            Nothing is ever downloaded.
        unfreeze: train the whole network instead of the head only.
        allow_random_init: continue with random backbone weights when no file is found.

    Raises:
        ModelError: no weights file and ``allow_random_init`` is False (the message says
            where to put the file), or the file is not a ResNet-18 state dict.
    """
    import torchvision.models
    net = torchvision.models.resnet18(weights=None)
    path = Path(weights).expanduser() if weights else resnet18_weights_path()
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except Exception as err:  # a wrong or damaged file: say which
            raise ModelError(f"{path} is not a torchvision ResNet-18 state dict: {err}") from None
    elif weights:
        raise ModelError(f"ImageNet weights file not found: {path}")
    elif not allow_random_init:
        raise ModelError(
            f"transfer-resnet18 needs torchvision's ImageNet ResNet-18 weights and none were found: "
            f"put {RESNET18_FILE} at {path} (download https://download.pytorch.org/models/{RESNET18_FILE} "
            f"on a machine with internet), or pass weights=PATH (--weights FILE), "
            f"or allow_random_init=True (--allow-random-init) to train from random weights")
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    if in_channels == 1:
        normalize = Normalize([sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3], out_channels=3)
    elif in_channels == 3:
        normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
    else:
        raise ModelError(f"transfer-resnet18 takes 1- or 3-channel pictures, not {in_channels}")
    return TransferResNet18(normalize, net, frozen=not unfreeze)
