"""Encoders of the FCN decoders: VGG16, AlexNet (torchvision layouts) and a small CNN.

Every encoder is a flat sequence of named layers (``conv3_1``, ``relu3_1``, ``pool3``...)
so a layer is addressed as ``encoder.pool4`` for explanations, and it returns the outputs
of its *taps*, the pools the decoder scores, finest first, the deepest last.

Geometry, the same for every encoder and any input size: a tap of stride ``s`` has
exactly ``ceil(H / s) x ceil(W / s)`` pixels, so the decoder's x2 upsampling always
covers the next finer tap and the final upsampling always covers the input; the decoder
then only crops (``netgaze.lab.models.fcn``). VGG and the simple CNN use 2x2 ceil-mode
pools, whose pixel j is centred on input pixel ``(j + 0.5) s - 0.5``, exactly the
convention of bilinear upsampling with ``align_corners=False``. AlexNet's 11x11 stride-4
conv and 3x3 stride-2 pools cannot follow it exactly: its padding is chosen (``pad1``
and the pools' padding) so its taps keep the ceil sizes and lie within a fraction of a
stride of it (+1.5 px at stride 8, -2.5 px at 16, +5.5 px at 32); the fine-tuned score
layers absorb such constant shifts. Pretrained weights do not depend on padding.

ImageNet weights are read from torchvision's files (``vgg16-397923af.pth``,
``alexnet-owt-7be5be79.pth``) with ``torch.load(weights_only=True)``; nothing is downloaded.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.errors import ArgumentError
from netgaze.lab.models.registry import ModelError

WEIGHT_FILES = {"vgg16": "vgg16-397923af.pth", "alexnet": "alexnet-owt-7be5be79.pth"}
ENCODERS = ("simple", "vgg16", "alexnet")


class PaddedMaxPool2d(nn.Module):
    """Max pooling after padding (left/top, right/bottom) with -inf: AlexNet's pools with ceil sizes."""

    def __init__(self, kernel_size: int, stride: int, pad: tuple[int, int]):
        super().__init__()
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.pad
        x = F.pad(x, (low, high, low, high), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}"


class Encoder(nn.Module):
    """A named layer sequence that returns its taps' outputs.

    Attributes:
        taps: tap layer names, finest first (e.g. ``["pool3", "pool4", "pool5"]``).
        strides: stride of each tap, same order.
        channels: channels of each tap, same order.
        name: "vgg16", "alexnet" or "simple".
    """

    def __init__(self, name: str, layers: OrderedDict, taps: list[str], strides: list[int], channels: list[int]):
        super().__init__()
        self.name, self.taps, self.strides, self.channels = name, taps, strides, channels
        for key, module in layers.items():
            self.add_module(key, module)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for key, module in self.named_children():
            x = module(x)
            if key in self.taps:
                outputs.append(x)
        return outputs


def _conv_block(layers: OrderedDict, block: int, widths: list[int], in_channels: int, batch_norm: bool) -> int:
    for i, width in enumerate(widths, start=1):
        layers[f"conv{block}_{i}"] = nn.Conv2d(in_channels, width, 3, padding=1)
        if batch_norm:
            layers[f"bn{block}_{i}"] = nn.BatchNorm2d(width)
        layers[f"relu{block}_{i}"] = nn.ReLU()
        in_channels = width
    layers[f"pool{block}"] = nn.MaxPool2d(2, 2, ceil_mode=True)
    return in_channels


def vgg16_encoder() -> Encoder:
    """VGG16's 13 convs and 5 pools; taps pool3 (stride 8), pool4 (16), pool5 (32)."""
    layers: OrderedDict = OrderedDict()
    channels = 3
    for block, widths in enumerate([[64] * 2, [128] * 2, [256] * 3, [512] * 3, [512] * 3], start=1):
        channels = _conv_block(layers, block, widths, channels, batch_norm=False)
    return Encoder("vgg16", layers, ["pool3", "pool4", "pool5"], [8, 16, 32], [256, 512, 512])


def alexnet_encoder() -> Encoder:
    """AlexNet's 5 convs and 3 pools; taps pool1 (stride 8), pool2 (16), pool5 (32)."""
    layers = OrderedDict([
        ("pad1", nn.ZeroPad2d((4, 6, 4, 6))), ("conv1", nn.Conv2d(3, 64, 11, stride=4)), ("relu1", nn.ReLU()),
        ("pool1", PaddedMaxPool2d(3, 2, (0, 2))),
        ("conv2", nn.Conv2d(64, 192, 5, padding=2)), ("relu2", nn.ReLU()),
        ("pool2", PaddedMaxPool2d(3, 2, (1, 1))),
        ("conv3", nn.Conv2d(192, 384, 3, padding=1)), ("relu3", nn.ReLU()),
        ("conv4", nn.Conv2d(384, 256, 3, padding=1)), ("relu4", nn.ReLU()),
        ("conv5", nn.Conv2d(256, 256, 3, padding=1)), ("relu5", nn.ReLU()),
        ("pool5", PaddedMaxPool2d(3, 2, (0, 2))),
    ])
    return Encoder("alexnet", layers, ["pool1", "pool2", "pool5"], [8, 16, 32], [64, 192, 256])


def simple_encoder(widths: tuple[int, int, int] = (16, 32, 64)) -> Encoder:
    """A small CNN for quick runs: 3 blocks of (conv, batch norm, ReLU) x 2 + a 2x2 pool.

    Taps pool1 (stride 2), pool2 (4), pool3 (8): its fcn32/fcn16/fcn8 decoders have final
    strides 8, 4 and 2 (no, one and two skips), not 32, 16 and 8.
    """
    layers: OrderedDict = OrderedDict()
    channels = 3
    for block, width in enumerate(widths, start=1):
        channels = _conv_block(layers, block, [width, width], channels, batch_norm=True)
    return Encoder("simple", layers, ["pool1", "pool2", "pool3"], [2, 4, 8], list(widths))


def classifier_head(encoder: Encoder, fc_channels: int, dropout: float = 0.5) -> nn.Sequential:
    """The encoder's classifier as convolutions (fc6, fc7), keeping the deepest tap's size.

    VGG16's fc6 is a 7x7 conv, AlexNet's a 6x6 conv (padded 2 before, 3 after), as the
    ImageNet classifiers' first linear layer over their 7x7 / 6x6 inputs; fc7 is 1x1. The
    simple encoder gets one 3x3 conv with ``fc_channels`` outputs.
    """
    deepest = encoder.channels[-1]
    if encoder.name == "simple":
        return nn.Sequential(OrderedDict([("fc6", nn.Conv2d(deepest, fc_channels, 3, padding=1)),
                                          ("relu6", nn.ReLU())]))
    kernel, pad = (7, (3, 3, 3, 3)) if encoder.name == "vgg16" else (6, (2, 3, 2, 3))
    return nn.Sequential(OrderedDict([
        ("pad6", nn.ZeroPad2d(pad)), ("fc6", nn.Conv2d(deepest, fc_channels, kernel)), ("relu6", nn.ReLU()),
        ("drop6", nn.Dropout(dropout)),
        ("fc7", nn.Conv2d(fc_channels, fc_channels, 1)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(dropout)),
    ]))


def build_encoder(name: str) -> Encoder:
    """A randomly initialised encoder by name: "simple", "vgg16" or "alexnet"."""
    if name == "vgg16":
        encoder = vgg16_encoder()
    elif name == "alexnet":
        encoder = alexnet_encoder()
    elif name == "simple":
        encoder = simple_encoder()
    else:
        raise ModelError(f"unknown FCN encoder {name!r}; choose one of {', '.join(ENCODERS)}")
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return encoder


def weights_path(encoder: str, weights: str | None = None) -> Path:
    """Where an encoder's ImageNet weights are read from: ``weights`` when given, else the torch hub cache."""
    if weights:
        return Path(weights).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHT_FILES[encoder]


def load_imagenet(encoder: Encoder, head: nn.Sequential, weights: str | None, allow_random_init: bool) -> bool:
    """Copy torchvision's ImageNet weights into ``encoder`` and, when the sizes match, ``head``.

    Returns True when weights were loaded, False when ``allow_random_init`` let a missing
    file pass. fc6/fc7 stay random when ``head`` is narrower than the 4096 ImageNet units.

    Raises:
        ModelError: no file (the message says where to put it), or a file of another model.
    """
    path = weights_path(encoder.name, weights)
    if not path.is_file():
        if weights:
            raise ModelError(f"ImageNet weights file not found: {path}")
        if allow_random_init:
            return False
        file = WEIGHT_FILES[encoder.name]
        raise ModelError(
            f"the {encoder.name} encoder needs torchvision's ImageNet weights and none were found: put {file} at "
            f"{path} (download https://download.pytorch.org/models/{file} on a machine with internet), pass "
            f"weights=PATH (--weights FILE), or allow_random_init=True (--allow-random-init) to train from random weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _copy_torchvision(state, encoder, head)
    except Exception as err:  # a damaged file or another model's: say which
        raise ModelError(f"{path} is not a torchvision {encoder.name} state dict: {err}") from None
    return True


def _copy_torchvision(state: dict, encoder: Encoder, head: nn.Sequential) -> None:
    convs = [m for m in encoder.children() if isinstance(m, nn.Conv2d)]
    keys = sorted({k.rsplit(".", 1)[0] for k in state if k.startswith("features.")}, key=lambda k: int(k.split(".")[1]))
    if len(keys) != len(convs):
        raise ArgumentError(f"expected {len(convs)} conv layers in features.*, found {len(keys)}")
    with torch.no_grad():
        for conv, key in zip(convs, keys):
            conv.weight.copy_(state[f"{key}.weight"])
            conv.bias.copy_(state[f"{key}.bias"])
        linear = sorted({k.rsplit(".", 1)[0] for k in state if k.startswith("classifier.")},
                        key=lambda k: int(k.split(".")[1]))[:2]
        for conv, key in zip([head.fc6, head.fc7], linear):
            weight = state[f"{key}.weight"]
            if weight.shape[0] != conv.out_channels:
                return  # a narrower head than ImageNet's: keep it random
            conv.weight.copy_(weight.view(conv.weight.shape))
            conv.bias.copy_(state[f"{key}.bias"])


def fc_init(head: nn.Sequential) -> None:
    """He initialisation of the head's convs (before any pretrained weights are copied in)."""
    for module in head.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * math.prod(module.kernel_size)
            nn.init.normal_(module.weight, std=math.sqrt(2.0 / fan_in))
            nn.init.zeros_(module.bias)
