"""X4: area explanations of reconstructions, and how local they are.

For a box of the OUTPUT picture, area guided backprop (``ng.guided_backprop(vae, x,
target=ng.Area(box=...), output=0)``) shows which input pixels the reconstruction of that
box depends on; area Grad-CAM does the same per encoder stage. The report saw the whole
digit light up for a small box and concluded "local reconstruction needs global
information". ``area_mass_share`` makes that a number: the share of the absolute
attribution that falls inside the box (and inside the box grown by a margin). A purely
local reconstruction would put all of it inside; a uniform map would put the box's area
share there.

Guided backprop gates ``nn.ReLU`` modules only: the linear VAE (and a conv VAE built with
``activation="relu"``) is guided; a LeakyReLU conv VAE gets the plain area gradient.
Caveat for the linear VAE: input pixels that are 0 in every training picture (the
digits' borders) never move their first-layer weights away from the random
initialisation, so the gradient there is initialisation noise; the measure counts it.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from netgaze import viz
from netgaze.methods import gradcam, guided_backprop
from netgaze.core.stages import StageError
from netgaze.core.stages import stage_names as core_stage_names
from netgaze.studies.latent_common import VAERun, tile_scale
from netgaze.studies.across_layers import StudyResult
from netgaze.core.targets import Area

Box = tuple[int, int, int, int]


def grow_box(box: Box, margin: int, size: tuple[int, int]) -> Box:
    """``box`` grown by ``margin`` pixels on every side, clipped to the picture ``size`` (H, W)."""
    y0, x0, y1, x1 = box
    h, w = size
    return max(0, y0 - margin), max(0, x0 - margin), min(h, y1 + margin), min(w, x1 + margin)


def area_mass_share(attributions: torch.Tensor, box: Box, margin: int = 0) -> torch.Tensor:
    """Share of each map's absolute mass inside ``box`` grown by ``margin``, [B] in [0, 1].

    Args:
        attributions: [B, C, H, W] (channels are summed after ``abs``) or [B, H, W].
        box: ``(y0, x0, y1, x1)``, end-exclusive.
        margin: pixels added on each side (clipped at the border).

    An all-zero map scores 0.
    """
    mass = attributions.detach().abs().float()
    if mass.dim() == 4:
        mass = mass.sum(1)
    y0, x0, y1, x1 = grow_box(box, margin, tuple(mass.shape[-2:]))
    total = mass.flatten(1).sum(1)
    inside = mass[:, y0:y1, x0:x1].flatten(1).sum(1)
    return torch.where(total > 0, inside / total.clamp(min=1e-30), torch.zeros_like(total))


def encoder_stages(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[str]:
    """The stages of ``model.encoder`` (``netgaze.core.stages``, the rule of ``layer=-1``); empty
    for a linear VAE.

    A model whose forward holds real tensors (a conditional VAE wrapped by
    ``conditioned(y)``) cannot take the shape-only pass; its encoder's stages are then the
    activations that end each conv block, which is what the rule finds on these encoders.
    """
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Sequential):
        return []
    if input_shape is not None:
        try:
            return [n for n in core_stage_names(model, input_shape) if n.startswith("encoder.")]
        except StageError:
            pass
    names, seen_conv = [], False
    for i, module in enumerate(encoder):
        seen_conv = seen_conv or isinstance(module, nn.Conv2d)
        if seen_conv and isinstance(module, (nn.ReLU, nn.LeakyReLU)):
            names.append(f"encoder.{i}")
            seen_conv = False
    return names


def area_explanations(model: nn.Module, x: torch.Tensor, box: Box,
                      layers: list[str] | None = None) -> dict[str, Any]:
    """Reconstruction, area guided backprop and area Grad-CAM of one box for a VAE.

    Args:
        model: a VAE returning ``(reconstruction, mu, logvar)`` (a conditional one wrapped
            by ``vae.conditioned(y)``); explained in eval mode (mean of q(z|x)).
        x: pictures [B, C, H, W] in [0, 1].
        box: the output region ``(y0, x0, y1, x1)``.
        layers: Grad-CAM layers; None takes every encoder stage (``encoder_stages``).

    Returns:
        ``{"reconstruction": [B, C, H, W], "guided": [B, C, H, W], "gradcam": {layer: [B, H, W]}}``.
    """
    target = Area(box=box)
    with torch.no_grad():
        was_training = model.training
        model.eval()
        try:
            recon = model(x)[0]
        finally:
            model.train(was_training)
    inner = getattr(model, "vae", model)
    layers = encoder_stages(inner, x.shape) if layers is None else layers
    if layers and inner is not model:
        layers = [f"vae.{name}" for name in layers]
    cams = gradcam(model, x, layer=list(layers), target=target, output=0) if layers else {}
    return {"reconstruction": recon, "guided": guided_backprop(model, x, target=target, output=0),
            "gradcam": cams}


def draw_box(tiles: np.ndarray, box: Box, colour: tuple[int, int, int] = (255, 0, 0)) -> np.ndarray:
    """A copy of uint8 tiles [B, H, W, 3] with a one-pixel outline of ``box``."""
    tiles = np.array(tiles, copy=True)
    y0, x0, y1, x1 = box
    tiles[:, y0, x0:x1] = colour
    tiles[:, y1 - 1, x0:x1] = colour
    tiles[:, y0:y1, x0] = colour
    tiles[:, y0:y1, x1 - 1] = colour
    return tiles


def default_box(size: tuple[int, int]) -> Box:
    """A centred box of a quarter of each side (28x28 -> 7x7 at (10, 10))."""
    h, w = size
    bh, bw = max(1, h // 4), max(1, w // 4)
    return (h - bh) // 2, (w - bw) // 2, (h - bh) // 2 + bh, (w - bw) // 2 + bw


def area_study(run: Any, *, dataset: Any = None, box: Box | None = None, margin: int = 4, n_show: int = 6,
               layers: list[str] | None = None, batch: int = 64) -> StudyResult:
    """The report's area figure and the locality measure over the whole test set.

    Figure rows: picture with the box, reconstruction, area guided backprop, area
    Grad-CAM of each encoder stage. Numbers (printed and in ``area.json``): the mean
    share of guided backprop's absolute mass inside the box and inside the box grown by
    ``margin``, next to the share a uniform map would get (the areas).

    Returns:
        ``maps``: ``inside`` and ``inside_margin`` [N], plus the shown pictures' explanations.
    """
    vr = VAERun(run, dataset)
    size = tuple(vr.images.shape[-2:])
    box = default_box(size) if box is None else tuple(box)
    model = vr.model
    explained = (lambda xs, ys: model.conditioned(ys)) if model.conditional else (lambda xs, ys: model)
    inside, inside_margin = [], []
    for i in range(0, len(vr.images), batch):
        xs, ys = vr.images[i:i + batch], vr.labels[i:i + batch]
        guided = guided_backprop(explained(xs, ys), xs, target=Area(box=box), output=0)
        inside.append(area_mass_share(guided, box))
        inside_margin.append(area_mass_share(guided, box, margin))
    inside, inside_margin = torch.cat(inside), torch.cat(inside_margin)
    grown = grow_box(box, margin, size)
    numbers = {"box": list(box), "margin": margin, "n": len(vr.images),
               "guided_mass_inside_box": float(inside.mean()),
               "guided_mass_inside_box_margin": float(inside_margin.mean()),
               "box_area_share": (box[2] - box[0]) * (box[3] - box[1]) / (size[0] * size[1]),
               "box_margin_area_share": (grown[2] - grown[0]) * (grown[3] - grown[1]) / (size[0] * size[1]),
               "guided_gates_relu": any(isinstance(m, nn.ReLU) for m in model.modules())}
    print(f"area guided backprop, box {box}: {100 * numbers['guided_mass_inside_box']:.1f}% of the mass inside "
          f"the box (area {100 * numbers['box_area_share']:.1f}%), "
          f"{100 * numbers['guided_mass_inside_box_margin']:.1f}% within {margin} px of it "
          f"(area {100 * numbers['box_margin_area_share']:.1f}%)")
    xs, ys = vr.images[:n_show], vr.labels[:n_show]
    shown = area_explanations(explained(xs, ys), xs, box, layers)
    picture = _figure(xs, box, shown)
    caption = (f"output box {box}: area guided backprop puts {100 * numbers['guided_mass_inside_box']:.0f}% of its "
               f"absolute mass inside the box ({100 * numbers['box_area_share']:.0f}% of the picture) and "
               f"{100 * numbers['guided_mass_inside_box_margin']:.0f}% within {margin} px")
    maps = {"inside": inside, "inside_margin": inside_margin, **shown}
    return vr.save("area", "Area explanations of reconstructions", [("area", picture, caption)], numbers, maps,
                   "guided_backprop / gradcam with target=Area(box), output=0")


def _figure(images: torch.Tensor, box: Box, shown: dict[str, Any]) -> np.ndarray:
    mass = viz.normalize(shown["guided"].abs().sum(1))
    columns = [draw_box(viz.to_uint8(images), box), draw_box(viz.to_uint8(shown["reconstruction"]), box),
               draw_box(viz.colormap(mass, "inferno"), box, (0, 255, 255))]
    labels = ["input", "recon", "area GBP"]
    for name, cam in shown["gradcam"].items():
        columns.append(draw_box(viz.overlay(images, cam), box, (255, 255, 255)))
        labels.append("CAM " + name.replace("encoder", "enc"))
    tiles = [column[i] for i in range(len(images)) for column in columns]
    return viz.grid(tiles, ncols=len(columns), col_labels=labels, scale=tile_scale(images))


__all__ = ["area_study", "area_explanations", "area_mass_share", "grow_box", "encoder_stages", "draw_box",
           "default_box"]
