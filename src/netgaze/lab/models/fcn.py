"""Fully convolutional networks for segmentation (Long, Shelhamer, Darrell 2015).

``build_model("fcn8", encoder="vgg16", num_classes=21)``. Decoders:

- ``fcn32``: ``score_fr`` (1x1 conv on the encoder's classifier as convolutions) upsampled
  by the deepest tap's stride in one transposed conv (``upscore``).
- ``fcn16``: ``score_fr`` upsampled x2 (``upscore2``) plus ``score_<tap>`` on the
  stride-16 tap, then ``upscore``.
- ``fcn8``: as fcn16, upsampled x2 again (``upscore_<tap>``) plus the stride-8 tap's score.

As in the paper: transposed convs start as bilinear upsampling (the intermediate ones are
learnt, the final ``upscore`` stays fixed), skip score layers start at zero so training
starts from the coarser net's output, ``score_fr`` starts at zero too. Where we depart:
instead of padding the input by 100 pixels and cropping at Caffe's offsets, the encoders
keep ``ceil(H / s)`` pixels at stride s (``fcn_encoders``) and a transposed conv of kernel
2f, stride f, padding f/2 (exactly bilinear, ``align_corners=False``, away from the border)
maps them back, so every fusion and the output is a top-left crop, for any input size.

Models take pictures in [0, 1] (``normalize`` is the first layer) and return logits
[B, num_classes, H, W]. Layers for explanations: ``encoder.pool3``..``encoder.pool5``
(VGG16), ``encoder.pool1/pool2/pool5`` (AlexNet), ``head.fc7``, ``score_fr``, ``score_pool4``...
"""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.lab.models.fcn_encoders import (ENCODERS, Encoder, build_encoder, classifier_head, fc_init,
                                             load_imagenet)
from netgaze.lab.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
from netgaze.lab.models.registry import ModelError, register_model

DECODERS = {"fcn32": 0, "fcn16": 1, "fcn8": 2}  # decoder -> number of skip connections


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """Weights [channels, channels, 2f, 2f] of a transposed conv that upsamples each channel bilinearly.

    Tap k of the 1-D filter is ``1 - |k - (f - 0.5)| / f``; with stride f and padding f/2
    an output pixel o then mixes input pixels at the source coordinate
    ``(o + 0.5) / f - 0.5``, the ``align_corners=False`` convention. Off-diagonal
    (channel-mixing) weights are zero.
    """
    size = 2 * factor
    centre = factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float64) - centre).abs() / factor
    kernel = (taps[:, None] * taps[None, :]).float()
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = kernel
    return weight


def upsampler(channels: int, factor: int, learn: bool = True) -> nn.ConvTranspose2d:
    """A transposed conv initialised to x``factor`` bilinear upsampling (output size = factor x input)."""
    if factor < 2 or factor % 2:
        raise ArgumentError(f"bilinear upsampling here needs an even factor >= 2, got {factor}")
    layer = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(bilinear_kernel(channels, factor))
    layer.weight.requires_grad_(learn)
    return layer


def crop(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """The top-left ``size`` of a map at least that big (the decoder's alignment, see module doc)."""
    h, w = int(size[0]), int(size[1])
    if x.shape[-2] < h or x.shape[-1] < w:
        raise RuntimeError(f"cannot crop a {tuple(x.shape[-2:])} map to {(h, w)}")
    return x[..., :h, :w]


class FCN(nn.Module):
    """Encoder, classifier as convolutions, score layers and bilinear transposed convs.

    Args:
        encoder: an ``Encoder`` (see ``fcn_encoders``).
        head: the classifier as convolutions on the deepest tap (``fc6``, ``fc7``...).
        num_classes: output channels, background included.
        skips: 0 (fcn32), 1 (fcn16) or 2 (fcn8).
        mean, std: the input normalisation (ImageNet statistics by default).
    """

    def __init__(self, encoder: Encoder, head: nn.Sequential, num_classes: int, skips: int,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        if not 0 <= skips < len(encoder.taps):
            raise ModelError(f"the {encoder.name} encoder has {len(encoder.taps)} taps, cannot make {skips} skips")
        self.num_classes, self.skips = num_classes, skips
        self.normalize = Normalize(mean, std)
        self.encoder = encoder
        self.head = head
        width = [m for m in head.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.score_fr = _zero_conv(width, num_classes)
        # skip taps from the second deepest towards the finest
        self.skip_taps = [encoder.taps[-2 - i] for i in range(skips)]
        for i, tap in enumerate(self.skip_taps):
            upsample_name = "upscore2" if i == 0 else f"upscore_{self.skip_taps[i - 1]}"
            self.add_module(upsample_name, upsampler(num_classes, 2))
            self.add_module(f"score_{tap}", _zero_conv(encoder.channels[-2 - i], num_classes))
        self.stride = encoder.strides[-1 - skips]
        self.upscore = upsampler(num_classes, self.stride, learn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = self.encoder(self.normalize(x))
        score = self.score_fr(self.head(taps[-1]))
        for i, tap in enumerate(self.skip_taps):
            upsample = getattr(self, "upscore2" if i == 0 else f"upscore_{self.skip_taps[i - 1]}")
            skip = getattr(self, f"score_{tap}")(taps[-2 - i])
            score = crop(upsample(score), skip.shape[-2:]) + skip
        return crop(self.upscore(score), x.shape[-2:])


def _zero_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def build_fcn(decoder: str, encoder: str = "simple", num_classes: int = 21, weights: str | None = None,
              allow_random_init: bool = False, fc_channels: int | None = None) -> FCN:
    """An FCN by decoder and encoder name; see the registered builders ``fcn32``, ``fcn16``, ``fcn8``."""
    if decoder not in DECODERS:
        raise ModelError(f"unknown FCN decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    if encoder not in ENCODERS:
        raise ModelError(f"unknown FCN encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if num_classes < 2:
        raise ModelError(f"a segmentation model needs at least 2 classes (background and one), got {num_classes}")
    if fc_channels is not None and (isinstance(fc_channels, bool) or not isinstance(fc_channels, int)
                                    or fc_channels < 1):
        raise ModelError(f"fc_channels must be a whole number >= 1 (or None for the default), got {fc_channels!r}")
    net = build_encoder(encoder)
    head = classifier_head(net, fc_channels or (128 if encoder == "simple" else 4096))
    fc_init(head)
    if encoder != "simple":
        load_imagenet(net, head, weights, allow_random_init)
    elif weights:
        raise ModelError("the simple encoder has no pretrained weights; leave weights unset")
    return FCN(net, head, num_classes, DECODERS[decoder])


_DOC = """{title}

    Args:
        encoder: "simple" (small CNN, random init, for quick runs), "vgg16" or "alexnet".
        num_classes: output classes, background included.
        weights: torchvision's ImageNet state dict of the encoder (vgg16/alexnet); None
            looks in the torch hub cache (``fcn_encoders.weights_path``). Never downloaded.
        allow_random_init: vgg16/alexnet start from random weights when no file is found.
        fc_channels: width of the classifier convs fc6/fc7; None = 4096 (ImageNet's, the
            only width that takes pretrained fc weights) or 128 for the simple encoder.

    Raises:
        ModelError: unknown encoder, or vgg16/alexnet without weights and not allowed to
            start from random ones (the message says where to put the file).
    """


@register_model("fcn32")
def fcn32(encoder: str = "simple", num_classes: int = 21, weights: str | None = None,
          allow_random_init: bool = False, fc_channels: int | None = None) -> FCN:
    return build_fcn("fcn32", encoder, num_classes, weights, allow_random_init, fc_channels)


@register_model("fcn16")
def fcn16(encoder: str = "simple", num_classes: int = 21, weights: str | None = None,
          allow_random_init: bool = False, fc_channels: int | None = None) -> FCN:
    return build_fcn("fcn16", encoder, num_classes, weights, allow_random_init, fc_channels)


@register_model("fcn8")
def fcn8(encoder: str = "simple", num_classes: int = 21, weights: str | None = None,
         allow_random_init: bool = False, fc_channels: int | None = None) -> FCN:
    return build_fcn("fcn8", encoder, num_classes, weights, allow_random_init, fc_channels)


fcn32.__doc__ = _DOC.format(title="FCN-32s: no skip; the deepest tap's scores upsampled in one step.")
fcn16.__doc__ = _DOC.format(title="FCN-16s: FCN-32s plus the scores of the stride-16 tap (pool4).")
fcn8.__doc__ = _DOC.format(title="FCN-8s: FCN-16s plus the scores of the stride-8 tap (pool3).")
