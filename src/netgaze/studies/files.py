"""Explain picture files: load a model (a run folder or a torchvision model + weights file),
read the pictures, run one method, write one overlay PNG per picture.

This is the library behind ``netgaze explain``; its errors are ``ValueError`` subclasses
(``ExplainInputError``) with one-line messages meant for the user.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from PIL import Image, UnidentifiedImageError

from netgaze import viz
from netgaze.errors import UserError
from netgaze.layers import LayerError, resolve_layer
from netgaze.methods import LAYER_METHODS, METHODS
from netgaze.studies.common import label_tiles
from netgaze.studies.layers import predict, stage_names, tile_scale
from netgaze.targets import Class


class ExplainInputError(UserError):
    """A missing or unreadable file, an unknown method, class or weights file that does not fit."""


@dataclass
class LoadedModel:
    """A model ready to explain pictures: its class names and the picture size it takes."""

    model: nn.Module
    classes: list[str]
    size: int
    channels: int
    name: str


def check_method(method: str) -> str:
    if method not in METHODS:
        close = difflib.get_close_matches(method, list(METHODS), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ExplainInputError(f"unknown method {method!r}; {hint}choose one of: {', '.join(METHODS)}")
    return method


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a ``torch.save`` file (read with weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise ExplainInputError(f"no such weights file: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or foreign file: one line for the user
        reason = ("it holds objects other than tensors (netgaze reads weights with weights_only=True)"
                  if "Weights only load failed" in str(err) and "Unsupported global" in str(err)
                  else "not a PyTorch (.pth/.pt) or .safetensors weights file")
        raise ExplainInputError(f"cannot read weights from {path}: {reason}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExplainInputError(f"{path} does not hold a state dict of tensors")
    return state


def load_torchvision(name: str, weights: str | Path | None, size: int = 224) -> LoadedModel:
    """A torchvision classifier (``"resnet18"``) behind ImageNet normalisation, with a weights file.

    The weights file is a plain torchvision state dict (``resnet18-f37072fd.pth``) or one
    saved from netgaze's wrapped model (keys under ``net.``). ImageNet class names come
    from torchvision's own metadata when the model has 1,000 outputs.
    """
    from netgaze.lab.models import build_model

    model = build_model(f"torchvision:{name}")
    if weights is not None:
        state = load_weights_file(weights)
        inner = model.net if not any(k.startswith("net.") for k in state) else model
        try:
            inner.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
            raise ExplainInputError(f"{weights} does not fit torchvision {name}: {first[:200]}") from None
    model.eval()
    return LoadedModel(model, imagenet_classes(_num_outputs(model)), size, 3, f"torchvision:{name}")


def _num_outputs(model: nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return last[-1].out_features if last else 0


def imagenet_classes(n: int) -> list[str]:
    if n != 1000:
        return [str(i) for i in range(n)]
    try:
        from torchvision.models import ResNet18_Weights
        return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    except Exception:  # an older torchvision without metadata
        return [str(i) for i in range(n)]


def load_run_model(path: str | Path) -> LoadedModel:
    """The last checkpoint of a run folder, with its classes and picture size."""
    from netgaze.lab.runs import load_run

    if not Path(path).is_dir():
        raise ExplainInputError(f"no such run folder: {path}")
    run = load_run(path)
    args = run.config.get("model_args", {})
    options = run.config.get("data_options", {}) or {}
    data = str(run.config.get("data", ""))
    size = int(options.get("size") or run.config.get("image_size") or (28 if data == "digits" or data.startswith("mnist") else 64))
    return LoadedModel(run.model, list(run.classes), size, int(args.get("in_channels", 3)), run.config.get("model", "?"))


def read_pictures(paths: Sequence[str | Path], size: int, channels: int) -> torch.Tensor:
    """Pictures as float [B, C, size, size] in [0, 1]: shorter side resized to ``size``, centre crop."""
    tensors = []
    for given in paths:
        path = Path(given)
        if not path.is_file():
            raise ExplainInputError(f"no such picture: {given}")
        try:
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB")
                scale = size / min(image.size)
                w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
                image = image.resize((w, h), Image.BILINEAR)
                left, top = (w - size) // 2, (h - size) // 2
                image = image.crop((left, top, left + size, top + size))
                data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ExplainInputError(f"cannot read picture {given}: {str(err).splitlines()[0][:160]}") from None
        tensors.append(data.view(size, size, channels).permute(2, 0, 1).float() / 255)
    return torch.stack(tensors)


def resolve_user_layer(model: nn.Module, layer: str | None, input_shape: Sequence[int] | None = None) -> str:
    """A layer name as users type it: ``layer4`` also finds ``net.layer4`` of a wrapped model;
    None is the last stage, ``-2`` the stage before (for pictures of ``input_shape``)."""
    if layer is None:
        return stage_names(model, input_shape)[-1]
    try:
        return resolve_layer(model, int(layer) if layer.lstrip("-").isdigit() else layer, input_shape)[0]
    except LayerError:
        try:
            return resolve_layer(model, f"net.{layer}")[0]
        except LayerError:
            pass
        raise


def resolve_class(target: str | None, classes: Sequence[str], batch: int) -> Class | None:
    """``--target``: a class name or index; None explains each picture's top class."""
    if target is None:
        return None
    if target in classes:
        return Class([list(classes).index(target)] * batch)
    if target.isdigit() and (not classes or int(target) < len(classes)):
        return Class([int(target)] * batch)
    close = difflib.get_close_matches(target, list(classes), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ExplainInputError(f"unknown class {target!r}{hint} ({len(classes)} classes; give a name or an index)")


def explain_files(loaded: LoadedModel, paths: Sequence[str | Path], method: str = "gradcam",
                  layer: str | None = None, target: str | None = None, out: str | Path = "explanations"
                  ) -> list[tuple[Path, str, float]]:
    """Explain picture files and write ``OUT/<stem>-<method>.png`` (picture | explanation).

    Returns:
        one ``(png path, predicted class, confidence)`` per picture.
    """
    check_method(method)
    x = read_pictures(paths, loaded.size, loaded.channels)
    model = loaded.model
    name = resolve_user_layer(model, layer, x.shape) if method in LAYER_METHODS else None
    pred, conf = predict(model, x)
    chosen = resolve_class(target, loaded.classes, x.shape[0]) or Class(pred.tolist())
    function = METHODS[method]
    maps = function(model, x, name, target=chosen) if name is not None else function(model, x, target=chosen)
    pictures = viz.to_uint8(x)
    shown = viz.overlay(x, maps) if maps.dim() == 3 else viz.attribution_image(maps)
    classes = loaded.classes
    written = []
    for i, path in enumerate(paths):
        label = classes[int(pred[i])] if int(pred[i]) < len(classes) else str(int(pred[i]))
        explained = chosen.c[i] if isinstance(chosen.c, list) else chosen.c
        explained_name = classes[explained] if explained < len(classes) else str(explained)
        tiles = label_tiles([pictures[i], shown[i]], [f"{label} {float(conf[i]):.0%}", f"{method} {explained_name}"],
                            scale=tile_scale(loaded.size, 192))
        png = viz.save_png(viz.grid(tiles, ncols=2, col_labels=["picture", f"{method} {name or ''}".strip()]),
                           Path(out) / f"{Path(path).stem}-{method}.png")
        written.append((png, label, float(conf[i])))
    return written
