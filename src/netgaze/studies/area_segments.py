"""X4: area explanations of segments: why does an FCN paint THIS region with class c?

For one object of a test picture (class c, its true region and the region's box), the
target is the sum of the output channel c over the region: area Grad-CAM
``ng.gradcam(fcn, x, layer=[...], target=ng.Area(box=box, channel=c))`` per encoder
stage, and area guided backprop ``ng.guided_backprop(fcn, x, target=ng.Area(mask=region,
channel=c))``. One figure per example: the picture with the box, the predicted mask,
area guided backprop, and area Grad-CAM of every encoder pool.

The numbers say how local the explanations are: over ``n_measure`` test pictures, the
share of guided backprop's absolute mass and of each layer's Grad-CAM mass inside the
box, next to the box's share of the picture (what a uniform map would get).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.lab.segment_pictures import colour_masks, predict_masks
from netgaze.methods import gradcam, guided_backprop
from netgaze.studies.area import area_mass_share, draw_box
from netgaze.studies.common import artifacts_dir, open_run, run_facts, write_manifest
from netgaze.studies.images import pick_indices
from netgaze.studies.across_layers import StudyResult
from netgaze.core.targets import Area

Box = tuple[int, int, int, int]


def encoder_pools(model: nn.Module) -> list[str]:
    """The FCN's encoder pools (``encoder.pool1`` ...), the ends of its conv stages, in order."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ArgumentError("area_segments explains an FCN (a model with an .encoder); got "
                            f"{type(model).__name__}")
    return [f"encoder.{name}" for name, _ in encoder.named_children() if name.startswith("pool")]


def main_segment(mask: torch.Tensor, ignore_index: int = 255) -> tuple[int, torch.Tensor, Box] | None:
    """The largest non-background class of a label mask [H, W]: (class, region bool [H, W], box), or None."""
    labels = mask[(mask != 0) & (mask != ignore_index)]
    if labels.numel() == 0:
        return None
    c = int(torch.bincount(labels).argmax())
    region = mask == c
    rows, cols = region.any(1).nonzero()[:, 0], region.any(0).nonzero()[:, 0]
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return c, region, box


def explain_segment(model: nn.Module, x: torch.Tensor, channel: int, region: torch.Tensor, box: Box,
                    layers: list[str]) -> dict[str, Any]:
    """Area guided backprop (target: ``region`` of ``channel``) and area Grad-CAM (its ``box``) of one picture.

    Returns:
        ``{"guided": [1, C, H, W], "gradcam": {layer: [1, H, W]}}`` (raw maps).
    """
    guided = guided_backprop(model, x, target=Area(mask=region, channel=channel))
    cams = gradcam(model, x, layer=list(layers), target=Area(box=box, channel=channel))
    return {"guided": guided, "gradcam": cams}


def area_segments_study(run: Any, *, dataset: Any = None, n_show: int = 4, n_measure: int = 32,
                        layers: list[str] | None = None, seed: int = 0) -> StudyResult:
    """The report's figure of area explanations of segments, and how local they are.

    Args:
        run: a segmentation ``Run`` (``train_segmentation``) or its folder.
        dataset: test pictures with masks; None takes the run's test split.
        n_show: examples in the figure (one per class first, ``pick_indices``).
        n_measure: test pictures in the locality numbers.
        layers: Grad-CAM layers; None takes every encoder pool (``encoder_pools``).
        seed: which pictures are picked.

    Returns:
        ``StudyResult``; writes ``artifacts/area_segments.png`` and ``area_segments.json``.
    """
    run = open_run(run)
    model = run.model.eval()
    if dataset is None:
        from netgaze.lab.segment import segmentation_dataset
        dataset = segmentation_dataset(run, "test")
    layers = encoder_pools(model) if layers is None else list(layers)
    labels = getattr(dataset, "labels", None)
    order = pick_indices(labels.tolist(), len(dataset), seed) if labels is not None else list(range(len(dataset)))
    examples = []  # (index, image, mask, class, region, box)
    for index in order:
        image, mask = dataset[index]
        found = main_segment(mask, getattr(dataset, "ignore_index", 255))
        if found is not None:
            examples.append((index, image, mask, *found))
        if len(examples) >= max(n_show, n_measure):
            break
    if not examples:
        raise ArgumentError("no test picture has a non-background segment to explain")
    guided_inside, cam_inside, box_share, shown = [], {name: [] for name in layers}, [], []
    for k, (index, image, mask, c, region, box) in enumerate(examples[:max(n_show, n_measure)]):
        x = image[None]
        maps = explain_segment(model, x, c, region, box, layers)
        if k < n_measure:
            guided_inside.append(float(area_mass_share(maps["guided"], box)[0]))
            for name in layers:
                cam_inside[name].append(float(area_mass_share(maps["gradcam"][name], box)[0]))
            box_share.append((box[2] - box[0]) * (box[3] - box[1]) / (mask.shape[0] * mask.shape[1]))
        if k < n_show:
            shown.append((index, image, mask, c, box, maps))
    classes = list(getattr(dataset, "classes", []))
    numbers = {"n": len(guided_inside), "guided_mass_inside_box": float(np.mean(guided_inside)),
               "gradcam_mass_inside_box": {name: float(np.mean(v)) for name, v in cam_inside.items()},
               "box_area_share": float(np.mean(box_share)), "layers": layers,
               "examples": [{"index": i, "class": classes[c] if c < len(classes) else c, "box": list(b)}
                            for i, _, _, c, b, _ in shown]}
    cam_text = ", ".join(f"{n.split('.')[-1]} {100 * v:.0f}%" for n, v in numbers["gradcam_mass_inside_box"].items())
    caption = (f"area target: the class channel summed over the object ({numbers['n']} test pictures). Inside the "
               f"object's box (on average {100 * numbers['box_area_share']:.0f}% of the picture): guided backprop "
               f"{100 * numbers['guided_mass_inside_box']:.0f}% of its absolute mass; Grad-CAM {cam_text}")
    print(caption)
    picture = _figure(model, shown, layers, classes)
    folder = artifacts_dir(run)
    path = viz.save_png(picture, folder / "area_segments.png")
    manifest = {"study": "area_segments", "title": "Area explanations of segments", **run_facts(run),
                "method": "guided_backprop(target=Area(mask, channel=c)); gradcam(layer=pools, "
                          "target=Area(box, channel=c))",
                "figures": [{"file": path.name, "caption": caption}], "numbers": numbers}
    manifest_path = write_manifest(folder, "area_segments", manifest)
    maps = {"examples": [i for i, *_ in shown], "guided": [s[-1]["guided"] for s in shown],
            "gradcam": [s[-1]["gradcam"] for s in shown]}
    return StudyResult(manifest=manifest, path=manifest_path, figures=[path], maps=maps)


def _figure(model: nn.Module, shown: list, layers: list[str], classes: list[str]) -> np.ndarray:
    images = torch.stack([s[1] for s in shown])
    predicted = predict_masks(model, images)
    tiles, rows = [], []
    for k, (index, image, mask, c, box, maps) in enumerate(shown):
        x = image[None]
        mass = viz.normalize(maps["guided"].abs().sum(1))
        row = [draw_box(viz.to_uint8(x), box)[0], draw_box(colour_masks(x, predicted[k:k + 1]), box)[0],
               draw_box(viz.colormap(mass, "inferno"), box, (0, 255, 255))[0]]
        row += [draw_box(viz.overlay(x, maps["gradcam"][name]), box, (255, 255, 255))[0] for name in layers]
        tiles += row
        rows.append(f"#{index} {classes[c] if c < len(classes) else c}")
    labels = ["image + box", "predicted", "area GBP"] + [f"CAM {name.split('.')[-1]}" for name in layers]
    scale = max(1, 96 // int(images.shape[-1]))
    return viz.grid(tiles, ncols=len(labels), row_labels=rows, col_labels=labels, scale=scale)


__all__ = ["area_segments_study", "explain_segment", "encoder_pools", "main_segment"]
