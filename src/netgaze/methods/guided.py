"""Guided backpropagation (Springenberg et al. 2015) and guided Grad-CAM."""
from __future__ import annotations

import torch
import torch.nn as nn

from netgaze.layers import LayerRef
from netgaze.layouts import LayoutArg, ReshapeArg
from netgaze.methods.base import check_image_batch, layer_readers, target_scores, upsample
from netgaze.methods.gradcam import gradcam_formula
from netgaze.methods.saliency import input_gradient
from netgaze.recorder import OutputSelector, Recorder, RecorderError
from netgaze.targets import TargetLike, as_target


def guided_backprop(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *,
                    output: OutputSelector = None) -> torch.Tensor:
    """Guided backpropagation, [B, C, H, W], raw (signed, not normalised).

    Every ``nn.ReLU``, ``nn.ReLU6`` and ``nn.LeakyReLU`` module (in-place or not) passes
    only positive gradients, through forward hooks that never change the model. ReLUs
    called as functions (``F.relu``, ``torch.relu``) are not modules: they backpropagate
    as usual, like any other op.
    """
    return input_gradient(model, x, target, output=output, guided=True)


def guided_gradcam(model: nn.Module, x: torch.Tensor, layer: LayerRef = -1,
                   target: TargetLike = None, *, output: OutputSelector = None,
                   layout: LayoutArg = None, reshape: ReshapeArg = None) -> torch.Tensor:
    """Guided backprop times the (upsampled) Grad-CAM map, [B, C, H, W].

    One forward pass serves both: the plain backward for Grad-CAM, then the guided one.
    ``layer``, ``layout`` and ``reshape`` as in ``gradcam``.
    """
    check_image_batch(x)
    target = as_target(target)
    if isinstance(layer, (list, tuple)):
        raise ValueError("guided_gradcam explains one layer; call it once per layer")
    with Recorder(model, [layer], output=output, input_grad=True, guided=True, input_shape=x.shape) as rec:
        out = rec.forward(x)
        scores = target_scores(target.resolve(out), out, x.shape[0])
        if scores.dim() != 1:
            raise RecorderError("guided_gradcam explains one score per sample; use TopClass(1) or Class(...)")
        name = rec.names[0]
        rec.guided(False)
        layer_grad = rec.gradients(scores, input=False, retain_graph=True)[name]
        read = layer_readers(rec, x, layout, reshape)[name]
        cam = gradcam_formula(read(rec.activations[name].detach()), read(layer_grad))
        rec.guided(True)
        guided = rec.gradients(scores, layers=False)["input"]
    return guided * upsample(cam, x.shape[-2:])[:, None]
