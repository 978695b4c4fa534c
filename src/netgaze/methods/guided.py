"""Guided backpropagation (Springenberg et al. 2015) and guided Grad-CAM."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.inputs import Inputs, as_tuple, batch_size, check_inputs, from_tuple, is_multi
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.methods.templates import layer_readers, map_size, picture_shape, source_picture, target_scores, upsample
from netgaze.methods.gradcam import gradcam_formula
from netgaze.methods.saliency import Attribution, input_gradient
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import TargetLike, as_target


def guided_backprop(model: nn.Module, x: Inputs, target: TargetLike = None, *,
                    output: OutputSelector = None) -> Attribution:
    """Guided backpropagation, [B, C, H, W], raw (signed, not normalised).

    Several inputs (a tuple ``x``) give a tuple, one attribution per input.

    Every ``nn.ReLU``, ``nn.ReLU6`` and ``nn.LeakyReLU`` module (in-place or not) passes
    only positive gradients, through forward hooks that never change the model. ReLUs
    called as functions (``F.relu``, ``torch.relu``) are not modules: they backpropagate
    as usual, like any other op.
    """
    return input_gradient(model, x, target, output=output, guided=True)


def guided_gradcam(model: nn.Module, x: Inputs, layer: LayerRef = -1,
                   target: TargetLike = None, *, output: OutputSelector = None,
                   layout: LayoutArg = None, reshape: ReshapeArg = None) -> Attribution:
    """Guided backprop times the (upsampled) Grad-CAM map, [B, C, H, W].

    One forward pass serves both: the plain backward for Grad-CAM, then the guided one.
    ``layer``, ``layout`` and ``reshape`` as in ``gradcam``. With several inputs (a tuple
    ``x``): a tuple holding the product for the picture input the layer is computed from
    and None for every other input.
    """
    check_inputs(x)
    target = as_target(target)
    if isinstance(layer, (list, tuple)):
        raise ArgumentError("guided_gradcam explains one layer; call it once per layer")
    with Recorder(model, [layer], output=output, input_grad=True, guided=True, input_shape=picture_shape(x)) as rec:
        out = rec.forward(x)
        scores = target_scores(target.resolve(out), out, batch_size(x))
        if scores.dim() != 1:
            raise RecorderError("guided_gradcam explains one score per sample; use TopClass(1) or Class(...)")
        name = rec.names[0]
        rec.guided(False)
        layer_grad = rec.gradients(scores, input=False, retain_graph=True)[name]
        source, size = source_picture(x, rec, name), map_size(x, rec, name)
        read = layer_readers(rec, {name: size}, layout, reshape)[name]
        cam = gradcam_formula(read(rec.activations[name].detach()), read(layer_grad))
        rec.guided(True)
        guided = as_tuple(rec.gradients(scores, layers=False)["input"])
    parts = [guided[i] * upsample(cam, size)[:, None] if i == source else None for i in range(len(guided))]
    return from_tuple(parts, is_multi(x))
