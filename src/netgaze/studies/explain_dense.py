"""Explain picture files with a segmenter (a class in a region) or a detector (one box).

The library behind ``netgaze explain --model torchvision:fcn_resnet50 | ...fasterrcnn...``.
``--target`` texts (box coordinates are pixels of the square picture netgaze reads,
``--size`` wide, x to the right and y down):

- segmenter: ``CLASS`` / ``class:CLASS`` (the class's score summed over the whole map),
  ``class:CLASS@x0,y0,x1,y1`` (inside a box); default: the class predicted on most
  pixels, over the pixels where it is predicted.
- detector: ``det:I`` (the I-th detection, 0 = best), ``box:x0,y0,x1,y1[:CLASS]`` (the
  detection that best matches the box, with that class), ``CLASS`` (its best
  detection); default ``det:0``.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageDraw

from netgaze import viz
from netgaze.core.detection import Detection
from netgaze.core.layer_entries import split_entry
from netgaze.methods import LAYER_METHODS, METHODS
from netgaze.core.recorder import Recorder
from netgaze.studies.common import label_tiles
from netgaze.studies.explain_files import ModelInputError, LoadedModel, check_method, read_pictures, resolve_user_layer
from netgaze.studies.across_layers import tile_scale
from netgaze.core.targets import Area, Target


def default_dense_layer(model: nn.Module, task: str) -> str:
    """A layer every prediction depends on: the backbone's last stage (before an FPN) or its main output."""
    prefix, inner = ("net.", model.net) if hasattr(model, "net") and hasattr(model, "normalize") else ("", model)
    backbone = getattr(inner, "backbone", None)
    if backbone is None:
        raise ModelInputError("this model has no 'backbone'; give --layer")
    body = getattr(backbone, "body", None)
    if body is not None and hasattr(body, "return_layers"):  # a feature pyramid: its deepest input feeds all levels
        return f"{prefix}backbone.body.{list(body.return_layers)[-1]}"
    features = getattr(backbone, "features", None)
    if isinstance(features, nn.Sequential) and hasattr(backbone, "extra"):  # SSD: the trunk the extra levels grow from
        blocks = list(features.children())
        if blocks and all(isinstance(b, nn.Sequential) for b in blocks):
            return f"{prefix}backbone.features.0"  # SSDlite runs its blocks one by one; the first feeds the rest
        return f"{prefix}backbone.features"
    keys = list(getattr(backbone, "return_layers", {}).values())
    key = "out" if "out" in keys else "high" if "high" in keys else (keys[-1] if keys else "0")
    return f"{prefix}backbone[{key}]"


def resolve_dense_layer(model: nn.Module, layer: str | None, task: str) -> str:
    """``--layer`` as typed (``backbone[0]`` also finds ``net.backbone[0]``), or the default."""
    if layer is None:
        return default_dense_layer(model, task)
    base, key = split_entry(layer)
    name = resolve_user_layer(model, base)
    return name if key is None else f"{name}[{key}]"


def class_index(text: str, classes: Sequence[str]) -> int:
    if text in classes:
        return list(classes).index(text)
    if re.fullmatch(r"[0-9]{1,9}", text) and int(text) < len(classes):  # ASCII digits only ('²'.isdigit())
        return int(text)
    import difflib
    close = difflib.get_close_matches(text, list(classes), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelInputError(f"unknown class {text!r}{hint} ({len(classes)} classes; give a name or an index)")


def _numbers(text: str, what: str) -> tuple[float, float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) == 4 and not all(math.isfinite(v) and abs(v) <= 1e6 for v in values):
        raise ModelInputError(f"{what} takes finite pixel coordinates x0,y0,x1,y1 (at most 1,000,000), got {text!r}")
    if len(values) != 4 or values[2] <= values[0] or values[3] <= values[1]:
        raise ModelInputError(f"{what} takes x0,y0,x1,y1 with x0 < x1 and y0 < y1, got {text!r}")
    return values


def segment_target(text: str | None, out: torch.Tensor, classes: Sequence[str]) -> tuple[Target, str, tuple | None]:
    """The Area target of one picture's class map ``out`` [1, K, H, W], a description and the box."""
    predicted = out.argmax(1)[0]
    if text is None:
        c = int(predicted.flatten().mode().values)
        mask = predicted == c
        return Area(mask=mask, channel=c), f"{classes[c]} where predicted ({float(mask.float().mean()):.0%} of pixels)", None
    spec = text[len("class:"):] if text.startswith("class:") else text
    name, _, box = spec.partition("@")
    c = class_index(name, classes)
    if not box:
        return Area(mask=torch.ones_like(predicted, dtype=torch.bool), channel=c), f"{classes[c]} over the picture", None
    x0, y0, x1, y1 = _numbers(box, "class:CLASS@")
    h, w = predicted.shape
    region = (max(0, int(y0)), max(0, int(x0)), min(h, int(np.ceil(y1))), min(w, int(np.ceil(x1))))
    if region[2] <= region[0] or region[3] <= region[1]:
        raise ModelInputError(f"the box {box} lies outside the {w}x{h} picture")
    return Area(box=region, channel=c), f"{classes[c]} inside ({box})", (x0, y0, x1, y1)


def detect_target(text: str | None, classes: Sequence[str]) -> tuple[Detection, tuple | None]:
    """The Detection target of ``--target`` and the given box (or None)."""
    text = text or "det:0"
    if text.startswith("det:"):
        if not re.fullmatch(r"[0-9]{1,9}", text[4:]):
            raise ModelInputError(f"det:I takes a detection index (0 = the best), got {text!r}")
        return Detection(index=int(text[4:])), None
    if text.startswith("box:"):
        coords, _, label = text[4:].partition(":")
        box = _numbers(coords, "box:")
        return Detection(box=box, label=class_index(label, classes) if label else None), box
    return Detection(label=class_index(text[6:] if text.startswith("class:") else text, classes)), None


def explain_dense_files(loaded: LoadedModel, paths: Sequence[str | Path], method: str = "gradcam",
                        layer: str | None = None, target: str | None = None, out: str | Path = "explanations"
                        ) -> list[tuple[Path, str]]:
    """Explain each picture and write ``OUT/<stem>-<method>.png``; returns (png, what was explained)."""
    method = check_method(method)
    x = read_pictures(paths, loaded.size, loaded.channels)
    model, classes = loaded.model, loaded.classes
    name = resolve_dense_layer(model, layer, loaded.task) if method in LAYER_METHODS else None
    function = METHODS[method]
    written = []
    for i, path in enumerate(paths):
        xi = x[i:i + 1]
        with Recorder(model, [], grads=False) as rec:
            output = rec.forward(xi)
        if loaded.task == "segment":
            chosen, text, given = segment_target(target, output.detach(), classes)
            drawn = [given] if given else []
        else:
            chosen, given = detect_target(target, classes)
            match = chosen.match(output)[0]
            if match.index is None:
                raise ModelInputError(f"{path}: no detection matches --target {target or 'det:0'} "
                                        f"({len(output[0]['scores'])} detections)")
            found = output[0]["boxes"][match.index].detach().tolist()
            label = classes[match.label] if match.label is not None and match.label < len(classes) else "?"
            text = f"{label} {match.score:.0%} at ({', '.join(f'{v:.0f}' for v in found)})"
            drawn = [found] + ([given] if given else [])
        maps = function(model, xi, name, target=chosen) if name is not None else function(model, xi, target=chosen)
        shown = viz.overlay(xi, maps) if maps.dim() == 3 else viz.attribution_image(maps)
        tiles = [_boxes(viz.to_uint8(xi)[0], drawn), _boxes(shown[0], drawn)]
        tiles = label_tiles(tiles, [text, f"{method} {name or ''}".strip()], scale=tile_scale(loaded.size, 192))
        png = viz.save_png(viz.grid(tiles, ncols=2, col_labels=["picture", method]),
                           Path(out) / f"{Path(path).stem}-{method}.png")
        written.append((png, text))
    return written


def _boxes(tile: np.ndarray, boxes: list) -> np.ndarray:
    """The tile with each box outlined (the found box red, a given box white)."""
    if not boxes:
        return tile
    image = Image.fromarray(np.ascontiguousarray(tile))
    draw = ImageDraw.Draw(image)
    for box, colour in zip(boxes, [(255, 0, 0), (255, 255, 255)]):
        draw.rectangle([float(v) for v in box], outline=colour, width=1)
    return np.asarray(image)
