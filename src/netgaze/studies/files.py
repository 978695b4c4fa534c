"""Explain picture files: load a model (a run folder or a torchvision model + weights file),
read the pictures, run one method, write one overlay PNG per picture.

This is the library behind ``netgaze explain``; its errors are ``ValueError`` subclasses
(``ExplainInputError``) with one-line messages meant for the user.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from netgaze import viz
from netgaze.errors import UserError, state_dict_mismatch
from netgaze.layers import LayerError, display_name, resolve_layer
from netgaze.methods import LAYER_METHODS, METHODS
from netgaze.pictures import read_picture
from netgaze.studies.common import label_tiles, require_task
from netgaze.studies.layers import predict, stage_names, tile_scale
from netgaze.targets import Class


class ExplainInputError(UserError):
    """A missing or unreadable file, an unknown method, class or weights file that does not fit."""


@dataclass
class LoadedModel:
    """A model ready to explain pictures: its class names and the picture size it takes.

    ``task`` is ``"classify"``, ``"segment"`` (a dense class map) or ``"detect"`` (boxes);
    ``random_weights`` is True for a named model loaded without a weights file.
    """

    model: nn.Module
    classes: list[str]
    size: int
    channels: int
    name: str
    task: str = "classify"
    random_weights: bool = False


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
    """A torchvision model (``"resnet18"``, a segmenter or a detector) with a weights file.

    Kept for callers of the first version; ``netgaze.studies.named_models.load_named_model``
    does the work (ImageNet normalisation in front, class names only with weights).
    """
    from netgaze.studies.named_models import load_named_model
    return load_named_model(f"torchvision:{name}", weights, size=size)


def imagenet_classes(n: int) -> list[str]:
    if n != 1000:
        return [str(i) for i in range(n)]
    try:
        from torchvision.models import ResNet18_Weights
        return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    except Exception:  # an older torchvision without metadata
        return [str(i) for i in range(n)]


def load_run_model(path: str | Path, epoch: int | None = None, tasks: Sequence[str] | None = ("classify",),
                   command: str = "explain") -> LoadedModel:
    """A checkpoint of a run folder (the last when ``epoch`` is None), with its classes and picture size.

    ``tasks``: the run tasks the caller handles (None: any); another raises ``WrongTaskError``.
    """
    from netgaze.lab.runs import load_run

    if not Path(path).is_dir():
        raise ExplainInputError(f"no such run folder: {path}")
    run = load_run(path, epoch)
    if tasks:
        require_task(run, tasks, f"`{command}`")
    args = run.config.get("model_args", {})
    options = run.config.get("data_options", {}) or {}
    data = str(run.config.get("data", ""))
    size = int(options.get("size") or run.config.get("image_size") or (28 if data == "digits" or data.startswith("mnist") else 64))
    return LoadedModel(run.model, list(run.classes), size, int(args.get("in_channels", 3)), run.config.get("model", "?"))


def read_pictures(paths: Sequence[str | Path], size: int, channels: int) -> torch.Tensor:
    """Pictures as float [B, C, size, size] in [0, 1]: shorter side resized to ``size``, centre crop."""
    tensors = [torch.from_numpy(read_picture(path, "L" if channels == 1 else "RGB", size, "crop"))
               for path in paths]
    return torch.stack(tensors).permute(0, 3, 1, 2).float() / 255


def resolve_user_layer(model: nn.Module, layer: str | None, input_shape: Sequence[int] | None = None) -> str:
    """A layer name as users type it: ``layer4`` also finds ``net.layer4`` of a wrapped model;
    None is the last stage, ``-2`` the stage before (for pictures of ``input_shape``)."""
    if layer is None:
        return stage_names(model, input_shape)[-1]
    try:
        return resolve_layer(model, int(layer) if re.fullmatch(r"-?[0-9]+", layer) else layer, input_shape)[0]
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
    if re.fullmatch(r"[0-9]+", target) and (not classes or int(target) < len(classes)):
        return Class([int(target)] * batch)
    close = difflib.get_close_matches(target, list(classes), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ExplainInputError(f"unknown class {target!r}{hint} ({len(classes)} classes; give a name or an index)")


def output_names(paths: Sequence[str | Path], method: str) -> list[str]:
    """One distinct PNG name per input picture: ``<stem>-<method>.png``, longer where stems collide.

    Pictures whose stems collide (``a/cat.jpg``, ``b/cat.png``) keep their suffix
    (``cat.jpg-gradcam.png``, ``cat.png-gradcam.png``); when that still collides the parent
    folders are added (``a_cat.jpg-...``, ``b_cat.jpg-...``), and the same file given twice
    gets ``-2``, ``-3``. No output silently replaces another one of the same call.
    """
    given = [Path(os.path.abspath(p)) for p in paths]
    unique = list(dict.fromkeys(given))  # the same file twice is told apart by a counter below

    def label(path: Path, level: int) -> str:
        return path.stem if level == 0 else "_".join(path.parts[-level:]).lstrip("_/")

    levels = {path: 0 for path in unique}
    while True:
        names = {path: label(path, levels[path]) for path in unique}
        counts = {n: list(names.values()).count(n) for n in names.values()}
        deeper = [p for p in unique if counts[names[p]] > 1 and levels[p] < len(p.parts)]
        if not deeper:
            break
        for path in deeper:
            levels[path] += 1
    out, seen = [], {}
    for path in given:
        name = names[path]
        seen[name] = seen.get(name, 0) + 1
        out.append(f"{name}{'' if seen[name] == 1 else '-' + str(seen[name])}-{method}.png")
    return out


def explain_files(loaded: LoadedModel, paths: Sequence[str | Path], method: str = "gradcam",
                  layer: str | None = None, target: str | None = None, out: str | Path = "explanations"
                  ) -> list[tuple[Path, str, float]]:
    """Explain picture files and write ``OUT/<stem>-<method>.png`` (picture | explanation).

    Pictures with the same stem get distinct names (``output_names``).

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
    names = output_names(paths, method)
    for i, path in enumerate(paths):
        label = classes[int(pred[i])] if int(pred[i]) < len(classes) else str(int(pred[i]))
        explained = chosen.c[i] if isinstance(chosen.c, list) else chosen.c
        explained_name = classes[explained] if explained < len(classes) else str(explained)
        tiles = label_tiles([pictures[i], shown[i]], [f"{label} {float(conf[i]):.0%}", f"{method} {explained_name}"],
                            scale=tile_scale(loaded.size, 192))
        title = f"{method} {display_name(model, name) if name else ''}".strip()
        png = viz.save_png(viz.grid(tiles, ncols=2, col_labels=["picture", title]), Path(out) / names[i])
        written.append((png, label, float(conf[i])))
    return written
