"""Recorder: the only code that touches hooks.

``with Recorder(model, ["layer3", "layer4"]) as rec`` keeps each layer's output during
``rec.forward(x)``; ``rec.gradients(scores)`` returns the gradients of the summed scores
with respect to those outputs (and the input) from ONE ``torch.autograd.grad`` call.
Module backward hooks are never used (they break on in-place ReLU, pytorch#61519).

Speed: the forward pass runs without autograd until the first requested layer; that
layer's output becomes a fresh leaf and autograd records only from there on, so a
last-layer Grad-CAM costs little more than a no-grad forward pass. With ``stop=True``
the pass also ends as soon as every requested layer has run (the layers after the
deepest one, e.g. vgg16's classifier for a ``features.28`` objective, are skipped).

The model is left as found: per-module ``training`` flags, every ``requires_grad``, no
hook left behind, parameters' ``.grad`` untouched, the caller's grad mode restored,
even when something raises.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Callable, Sequence, Union

import torch
import torch.nn as nn

from netgaze.errors import UserError
from netgaze.core.inputs import Inputs, as_tuple, differentiable, from_tuple, is_multi
from netgaze.core.layer_entries import describe_entries, get_entry, set_entry, split_entry
from netgaze.core.layers import LayerError, LayerRef, resolve_layers

OutputSelector = Union[None, int, str, Callable[[Any], torch.Tensor]]


GUIDED_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)


class RecorderError(UserError, RuntimeError):
    """The model cannot be explained as asked (a layer ran twice, a target is unconnected...).

    A ``UserError`` (the command line prints it as one line), and a ``RuntimeError`` as before.
    """


class _StopForward(BaseException):
    """Raised by the last recorded layer's hook to end a ``stop=True`` forward pass.

    A BaseException, so a model's own ``except Exception`` cannot swallow it."""


class _GuidedSwitch:
    on = False


def _guided_gate(switch: _GuidedSwitch):
    """Tensor hook on an activation's output: only positive gradients pass while ``on``.

    The activation's own backward then applies its derivative, which together gives
    guided backprop. A tensor hook copies nothing in the forward pass, and it keeps
    acting on the gradient of the value it saw even if the model later changes that
    tensor in place.
    """
    def gate(grad: torch.Tensor) -> torch.Tensor | None:
        return grad.clamp(min=0) if switch.on else None
    return gate


class Recorder:
    """Record layer outputs and their gradients for one or more forward passes.

    Args:
        model: any ``nn.Module``; explained in eval mode, restored afterwards.
        layers: layer references (see ``netgaze.core.layers``); may be empty. ``"name[key]"``
            records one entry of a layer that returns a dict, tuple or list (a detector's
            ``"backbone[0]"``, see ``netgaze.core.layer_entries``).
        output: which part of a tuple/dict model output is explained: an index, a key, or
            a callable ``raw_output -> Tensor``. None: the output itself; the ``"out"``
            entry of a dict (torchvision's segmenters); the ``"logits"`` entry of a
            mapping (a Hugging Face ``ModelOutput`` such as ``ImageClassifierOutput`` or
            ``SemanticSegmenterOutput``, or a plain dict), so Hugging Face models need no
            ``output=``; the first element of a tuple (a VAE's reconstruction); a list of
            per-image dicts (torchvision's detectors) is kept whole for a ``Detection``
            target. Any other mapping is refused with a message that names its keys.
        input_grad: also take the gradient with respect to the input (gradient methods);
            with several inputs (a tuple ``x``), with respect to each floating one.
        guided: put guided-backprop gates after every ``nn.ReLU`` / ``nn.ReLU6`` /
            ``nn.LeakyReLU`` module; switch them on with ``rec.guided(True)`` before
            ``gradients``. Functional ``F.relu`` calls are not modules and pass gradients
            unchanged.
        grads: False when only activations are needed (Score-CAM): no graph at all.
        stop: end each forward pass once every layer in ``layers`` has produced its
            output; the model's output is then never computed and ``forward`` returns
            None. Activations and their gradients are the same as without it. Needs at
            least one layer.
        input_shape: shape of the pictures to come; integer layer references (stages,
            ``-1`` = last) are resolved for it.
    """

    def __init__(self, model: nn.Module, layers: LayerRef | Sequence[LayerRef] = (), *,
                 output: OutputSelector = None, input_grad: bool = False,
                 guided: bool = False, grads: bool = True, stop: bool = False,
                 input_shape: Sequence[int] | None = None):
        self.model = model
        refs = list(layers) if isinstance(layers, (list, tuple)) else [layers]
        self.layers, self._keys = _resolve_entries(model, refs, input_shape)
        self.names = [name for name, _ in self.layers]
        self.output = output
        self.input_grad = input_grad
        self.guided_relus = guided
        self.record_grads = grads
        if stop and not self.names:
            raise RecorderError("stop=True needs at least one layer to record")
        self.stop = stop
        self.activations: dict[str, torch.Tensor] = {}
        self.input: torch.Tensor | tuple[torch.Tensor, ...] | None = None
        self.inputs: tuple[torch.Tensor, ...] = ()
        self._switch = _GuidedSwitch()
        self._guided_gate = _guided_gate(self._switch)
        self._handles: list[Any] = []
        self._active = False
        self._modes = contextlib.ExitStack()
        self._saved_training: list[nn.Module] = []
        self._saved_requires_grad: list[torch.Tensor] = []

    # -- context -----------------------------------------------------------------
    def __enter__(self) -> "Recorder":
        # Autograd on inside the context, whatever the caller's mode; restored on exit.
        self._modes = contextlib.ExitStack()
        self._modes.enter_context(torch.inference_mode(False))
        self._modes.enter_context(torch.enable_grad())
        # Only what is changed is remembered and put back: a model already in eval mode
        # with frozen parameters costs nothing here.
        self._saved_training = [m for m in self.model.modules() if m.training]
        self._saved_requires_grad = [p for p in self.model.parameters() if p.requires_grad]
        try:
            if self._saved_training:
                self.model.eval()
            for p in self._saved_requires_grad:
                p.requires_grad_(False)
            for name, module in self.layers:
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
            if self.guided_relus:
                for module in self.model.modules():
                    if isinstance(module, GUIDED_ACTIVATIONS):
                        self._handles.append(module.register_forward_hook(self._guided_hook))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self._active = True
        return self

    def __exit__(self, *exc) -> None:
        self._active = False
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module in self._saved_training:
            module.training = True
        for param in self._saved_requires_grad:
            param.requires_grad_(True)
        self.activations = {}
        self.input = None
        self.inputs = ()
        self._modes.close()

    # -- hooks -------------------------------------------------------------------
    def _make_hook(self, name: str):
        key = self._keys.get(name)

        def hook(module: nn.Module, inputs: Any, out: Any):
            if name in self.activations:
                raise RecorderError(f"layer {name!r} runs more than once in one forward pass "
                                    "(a shared module); explain a layer that runs once")
            whole = out
            if key is not None:
                out = get_entry(whole, key, name)
            elif not isinstance(out, torch.Tensor):
                raise RecorderError(f"layer {name!r} returns {type(out).__name__}, not a tensor; "
                                    "pick a layer whose output is one tensor" + describe_entries(out))
            if not self.record_grads:
                self.activations[name] = out.detach().clone()
                self._stop_if_done()
                return None
            if not out.requires_grad or not torch.is_grad_enabled():
                # First recorded layer on this path: autograd starts here. A pass-through layer
                # (nn.Identity, Dropout in eval, a no-op Flatten) returns its input itself, which may
                # already require grad while the forward pass runs under no_grad: detach it too.
                out = out.detach().requires_grad_(True)
                torch.set_grad_enabled(True)
            self.activations[name] = out
            self._stop_if_done()
            # Downstream code (in-place ReLU, `+=`) works on a copy; the record stays intact.
            return out.clone() if key is None else set_entry(whole, key, out.clone())
        return hook

    def _stop_if_done(self) -> None:
        if self.stop and len(self.activations) == len(self.names):
            raise _StopForward

    def _guided_hook(self, module: nn.Module, inputs: Any, out: torch.Tensor):
        if torch.is_grad_enabled() and isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(self._guided_gate)
        return None

    # -- use ---------------------------------------------------------------------
    def forward(self, x: Inputs) -> Any:
        """Run the model on ``x`` (a tensor, or a tuple: ``model(*x)``); return the selected output.

        None with ``stop=True``.
        """
        if not self._active:
            raise RecorderError("Recorder.forward must be called inside `with Recorder(...)`")
        if any(t.is_inference() for t in as_tuple(x)):
            raise RecorderError("the input was created under torch.inference_mode(); autograd cannot use it. "
                                "Create it outside inference mode (or pass x.clone() made outside it)")
        self.activations = {}
        try:
            if self.input_grad:
                self.inputs = tuple(t.detach().requires_grad_(True) if differentiable(t) else t
                                    for t in as_tuple(x))
                self.input = from_tuple(self.inputs, is_multi(x))
                raw = self.model(*self.inputs)
            else:
                with torch.no_grad():
                    raw = self.model(*as_tuple(x))
        except _StopForward:
            return None
        missing = [n for n in self.names if n not in self.activations]
        if missing:
            raise RecorderError(f"layer(s) {missing} did not run in the forward pass")
        return select_output(raw, self.output)

    def guided(self, on: bool) -> None:
        """Switch the guided-backprop gates on or off for the next ``gradients`` call."""
        self._switch.on = on

    def gradients(self, scores: torch.Tensor, *, layers: bool = True, input: bool | None = None,
                  retain_graph: bool = False) -> dict[str, torch.Tensor]:
        """Gradients of ``scores.sum()`` w.r.t. the recorded layers (and ``"input"``).

        Samples are independent in eval mode, so the gradient of the sum holds each
        sample's own gradient.
        """
        wanted = [(n, self.activations[n]) for n in self.names] if layers else []
        multi = isinstance(self.input, tuple)
        if self.input_grad if input is None else input:
            if self.input is None:
                raise RecorderError("input gradients need Recorder(..., input_grad=True)")
            if not multi:
                wanted.append(("input", self.input))
            else:
                wanted += [(f"input.{i}", t) for i, t in enumerate(self.inputs) if t.requires_grad]
                if not any(n.startswith("input.") for n, _ in wanted):
                    raise RecorderError("none of the inputs is a floating-point tensor: no input gradient")
        if not wanted:
            raise RecorderError("nothing to differentiate: no layer recorded and input_grad=False")
        if not scores.requires_grad:
            raise RecorderError(f"the target is not connected to layer(s) {[n for n, _ in wanted]}: "
                                "the explained output does not depend on them")
        grads = torch.autograd.grad(scores.sum(), [t for _, t in wanted],
                                    retain_graph=retain_graph, allow_unused=True)
        result = {}
        for (name, tensor), grad in zip(wanted, grads):
            if grad is None and name.startswith("input."):
                grad = torch.zeros_like(tensor)  # an input the score does not depend on
            if grad is None:
                raise RecorderError(f"the target is not connected to layer {name!r}: "
                                    "the explained output does not depend on it")
            result[name] = grad
        if multi and any(n.startswith("input.") for n in result):
            result["input"] = tuple(result.pop(f"input.{i}", None) for i in range(len(self.inputs)))
        return result


def _resolve_entries(model: nn.Module, refs: list, input_shape: Sequence[int] | None = None
                     ) -> tuple[list[tuple[str, nn.Module]], dict[str, str]]:
    """Resolve layer references, ``"name[key]"`` entries included; refuse a layer named twice.

    ``input_shape`` lets integer references (stages) be resolved for that picture size.
    """
    split = [split_entry(ref) for ref in refs]
    plain = iter(resolve_layers(model, [ref for ref, key in split if key is None], input_shape)
                 if any(key is None for _, key in split) else [])
    keys: dict[str, str] = {}
    ordered = []
    for base, key in split:
        if key is None:
            name, module = next(plain)
            inner = split_entry(name)[1]      # a stage seen through a tuple ("layers.3[0]")
            if inner is not None:
                if name in keys:
                    raise LayerError(f"the same layer is requested twice: {name!r}")
                keys[name] = inner
            ordered.append((name, module))
            continue
        name, module = resolve_layers(model, [base], input_shape)[0]
        full = f"{name}[{key}]"
        if full in keys:
            raise LayerError(f"the same layer is requested twice: {full!r}")
        keys[full] = key
        ordered.append((full, module))
    return ordered, keys


def select_output(raw: Any, output: OutputSelector) -> torch.Tensor:
    """Pick the explained tensor from a model's raw output (see ``Recorder``)."""
    if callable(output):
        picked = output(raw)
    elif output is None:
        if isinstance(raw, Mapping) and "out" in raw:
            picked = raw["out"]  # torchvision's segmenters: {"out": ..., "aux": ...}
        elif isinstance(raw, Mapping) and "logits" in raw:
            picked = raw["logits"]  # Hugging Face's ModelOutput (an OrderedDict), or a dict
        elif is_detections(raw):
            return raw  # torchvision's detectors: one dict per image, for a Detection target
        else:
            # A tuple/list output (a VAE's (reconstruction, mu, logvar)) explains its first element.
            picked = raw[0] if isinstance(raw, (tuple, list)) and raw else raw
    else:
        try:
            picked = raw[output]
        except (KeyError, IndexError, TypeError) as err:
            keys = list(raw.keys()) if isinstance(raw, Mapping) else f"indices 0..{len(raw) - 1}" \
                if isinstance(raw, (tuple, list)) else "none"
            raise RecorderError(f"output={output!r} does not select from the model's output "
                                f"({type(raw).__name__}; valid: {keys})") from err
    if not isinstance(picked, torch.Tensor):
        hint = f" with keys {list(picked.keys())}" if isinstance(picked, Mapping) else ""
        raise RecorderError(f"the model returned a {type(picked).__name__}{hint}; pass output= "
                            "(an index, a key or a callable; --output KEY on the command line) to choose the "
                            "tensor to explain")
    return picked


def is_detections(raw: Any) -> bool:
    """A detector's output: a list of per-image dicts with ``"boxes"`` and ``"scores"``."""
    return (isinstance(raw, list) and bool(raw)
            and all(isinstance(d, dict) and "boxes" in d and "scores" in d for d in raw))


__all__ = ["Recorder", "RecorderError", "LayerError", "select_output"]
