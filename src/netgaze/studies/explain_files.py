"""Explain picture files: load a model (a run folder or a torchvision model + weights file),
read the pictures, run one method, write one overlay PNG per picture.

This is the library behind ``netgaze explain``; its errors are ``ValueError`` subclasses
(``ModelInputError``) with one-line messages meant for the user.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from netgaze import viz
from netgaze.core.layers import LayerError, display_name, resolve_layer
from netgaze.methods import LAYER_METHODS, METHODS, method_name
from netgaze._util.picture_files import read_picture
from netgaze.studies.common import label_tiles
from netgaze.studies.across_layers import predict, stage_names, tile_scale
from netgaze.core.targets import Class
from netgaze.zoo import LoadedModel, ModelInputError


def check_method(method: str) -> str:
    """The registered name of ``method``: ``kernel-shap``, ``Kernel_SHAP`` and ``kernel_shap`` are one method."""
    method = method_name(method)
    if method not in METHODS:
        close = difflib.get_close_matches(method, list(METHODS), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelInputError(f"unknown method {method!r}; {hint}choose one of: {', '.join(METHODS)}")
    return method


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
    raise ModelInputError(f"unknown class {target!r}{hint} ({len(classes)} classes; give a name or an index)")


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
    method = check_method(method)
    x = read_pictures(paths, loaded.size, loaded.channels)
    model = loaded.model
    name = resolve_user_layer(model, layer, x.shape) if method in LAYER_METHODS else None
    pred, conf = predict(model, x)
    loaded.check_finite_output(conf, "class scores")     # never "predicted tench (nan%)"
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
