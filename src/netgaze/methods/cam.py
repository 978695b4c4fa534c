"""CAM (Zhou et al. 2016): the class's weights in a linear head after global average pooling."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from netgaze.core.inputs import Inputs, batch_size, check_inputs
from netgaze.core.layers import LayerRef
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.core.recorder import OutputSelector, Recorder, RecorderError
from netgaze.core.targets import Class, TargetLike, TopClass, as_target
from netgaze.errors import ArgumentError
from netgaze.methods.templates import layer_readers, map_size, needs_sources, picture_shape, upsample


def cam(model: nn.Module, x: Inputs, layer: LayerRef | Sequence[LayerRef] = -1,
        target: TargetLike = None, *, output: OutputSelector = None,
        layout: LayoutArg = None, reshape: ReshapeArg = None
        ) -> torch.Tensor | dict[str, torch.Tensor]:
    """Original CAM maps; same arguments and return values as ``gradcam``.

    The map of class ``c`` is ``relu(sum_k W[c, k] A_k)`` with ``W`` the weights of the
    ``nn.Linear`` head that reads the layer's globally average-pooled channels. The head
    is found among the model's linear layers taking ``C`` features and checked on this
    very batch: the model's output must equal ``W mean(A) + b``; otherwise the call fails
    naming the reason (use ``gradcam``, which needs no such head). On such a model CAM
    equals Grad-CAM times ``h * w`` (the layer's grid). The target must be class logits:
    ``Class`` or ``TopClass``. Maps are ReLU'd (as torchcam and pytorch-grad-cam do), not
    normalised, upsampled bilinearly (torchcam's CAM is not ReLU'd).
    """
    check_inputs(x)
    target = as_target(target)
    if not isinstance(target, (Class, TopClass)):
        raise ArgumentError(f"cam explains class logits (Class or TopClass), not {target!r}; use gradcam")
    many = isinstance(layer, (list, tuple))
    traced = needs_sources(x)
    with Recorder(model, list(layer) if many else [layer], output=output, grads=traced, input_grad=traced,
                  input_shape=picture_shape(x)) as rec:
        out = rec.forward(x)
        sizes = {n: map_size(x, rec, n) for n in rec.names}
        readers = layer_readers(rec, sizes, layout, reshape)
        activations = {n: readers[n](rec.activations[n].detach()) for n in rec.names}
        out = out.detach()
    target(out)    # checks the classes against the output
    classes = target.classes(out) if isinstance(target, TopClass) else _class_index(target, batch_size(x))
    maps = {}
    for name, acts in activations.items():
        if acts.dim() != 4:
            raise RecorderError(f"layer {name!r} gives shape {tuple(acts.shape)} after reshape=; "
                                "CAM needs [B, C, h, w]")
        weights = head_weights(model, name, acts, out)
        chosen = weights[classes.to(weights.device)]                  # [B, C] or [B, K, C]
        with torch.no_grad():
            m = torch.einsum("bc,bchw->bhw", chosen, acts) if chosen.dim() == 2 \
                else torch.einsum("bkc,bchw->bkhw", chosen, acts)
        maps[name] = upsample(m.clamp(min=0), sizes[name])
    return maps if many else next(iter(maps.values()))


def _class_index(target: Class, rows: int) -> torch.Tensor:
    return torch.tensor([target.c] * rows if isinstance(target.c, int) else list(target.c), dtype=torch.long)


def head_weights(model: nn.Module, name: str, activations: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """``W`` [classes, C] of the linear head after global average pooling of ``activations``.

    Raises a ``RecorderError`` naming the reason when the model has no such head.
    """
    channels = activations.shape[1]
    if output.dim() != 2:
        raise RecorderError(f"cam needs class logits [B, N]; the model returned shape {tuple(output.shape)}")
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    fitting = [(n, m) for n, m in linears if m.in_features == channels and m.out_features == output.shape[1]]
    if not fitting:
        found = ", ".join(f"{n or 'model'} ({m.in_features} -> {m.out_features})" for n, m in linears) or "none"
        raise RecorderError(f"cam needs an nn.Linear head taking the {channels} channels of layer {name!r} after "
                            f"global average pooling and giving the {output.shape[1]} outputs; the model's linear "
                            f"layers: {found}. Use gradcam, which needs no such head")
    pooled = activations.mean(dim=(2, 3)).double()
    scale = float(output.abs().max()) + 1e-12
    for _, head in reversed(fitting):
        w = head.weight.detach().double()
        predicted = pooled @ w.T + (head.bias.detach().double() if head.bias is not None else 0.0)
        if torch.allclose(predicted, output.double(), rtol=1e-4, atol=1e-5 * scale):
            return head.weight.detach().to(activations.dtype)
    names = ", ".join(n for n, _ in fitting)
    raise RecorderError(f"cam needs the output to be a linear head of the globally average-pooled layer "
                        f"{name!r}, but the model's output is not W mean(A) + b for its linear layer(s) {names} "
                        "(something else runs between the layer and the head). Use gradcam, which needs no such head")
