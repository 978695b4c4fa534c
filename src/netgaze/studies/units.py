"""S5 as studies: class units and the channels of every conv layer, by activation maximization.

``class_units_study(run)`` renders one picture per class logit and asks the classifier
which class each picture shows (how many of its own class visualisations it recognises).
``layer_channels_study(run)`` renders, for every conv layer, the channels that respond most
to the test pictures, one row per layer: each picture maximises one channel's centre unit,
so it draws the pattern that unit detects within its receptive field (the pixels of the
input that can reach it, measured from the gradient's support), which grows with depth:
edges and blobs first, parts of the objects later.
Both write PNGs and a manifest into the run's ``artifacts/featureviz/``.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from netgaze import viz
from netgaze.featureviz import l1, total_variation, visualize
from netgaze.featureviz.render import image_channels
from netgaze.core.layers import conv_layer_names, resolve_layer
from netgaze.core.recorder import Recorder
from netgaze.studies.common import artifacts_dir, open_run, run_facts, write_manifest
from netgaze.studies.across_layers import StudyResult

def spread_conv_layers(model: nn.Module, most: int = 6) -> list[str]:
    """The model's conv layers in forward order, at most ``most`` evenly spread (first and last kept)."""
    names = conv_layer_names(model)
    if len(names) > most:
        picks = sorted({round(i * (len(names) - 1) / (most - 1)) for i in range(most)})
        names = [names[i] for i in picks]
    return names


def _size(run: Any, images: torch.Tensor | None) -> int:
    if images is not None:
        return int(images.shape[-1])
    return int((run.config.get("data_options") or {}).get("size", 28 if run.config.get("data") == "digits" else 64))


def _test_images(run: Any, limit: int) -> torch.Tensor:
    data = run.dataset("test")
    return torch.stack([data[i][0] for i in range(min(limit, len(data)))])


def class_units_study(run: Any, *, steps: int = 128, size: int | None = None, param: str | None = None,
                      penalty: float = 30.0, random_state: int = 0) -> StudyResult:
    """Render every class logit of a classifier run; the classifier says which class each picture shows.

    Args:
        run: a classifier run folder or ``Run``.
        steps: Adam steps.
        size: picture size (default: the run's training size).
        param: ``"pixel"`` or ``"fourier"``; default pixel for grey models (strokes on
            black with ``penalty * (l1 + total_variation)``) and fourier for colour ones.
        penalty: weight of the L1 (towards black) and total-variation penalties for grey
            models; 0 for none.
        random_state: seed.

    Returns:
        ``maps["pictures"]`` [K, C, H, W], ``maps["predicted"]`` [K], ``maps["confidence"]`` [K].
    """
    run = open_run(run)
    model = run.model.eval()
    classes = list(run.classes)
    size = size or _size(run, None)
    grey = image_channels(model) == 1
    param = param or ("pixel" if grey else "fourier")
    regularizer = penalty * l1(0.0) + penalty * total_variation() if grey and penalty > 0 else None
    pictures = visualize(model, "logits", channels=range(len(classes)), steps=steps, size=size, param=param,
                         regularizer=regularizer, random_state=random_state)
    with torch.no_grad():
        probs = model(pictures).softmax(1)
    confidence, predicted = probs.max(1)
    recognised = int((predicted == torch.arange(len(classes))).sum())
    folder = artifacts_dir(run) / "featureviz"
    folder.mkdir(parents=True, exist_ok=True)
    labels = [f"{c}: {classes[int(p)]}" if int(p) != k else str(c) for k, (c, p) in enumerate(zip(classes, predicted))]
    png = viz.save_png(viz.grid(list(viz.to_uint8(pictures)), ncols=len(classes), col_labels=labels,
                                scale=max(1, 96 // size)), folder / "class_units.png")
    facts = run_facts(run)
    how = (f"pixel parameterization with L1 towards black and total variation (weight {penalty:g} each)"
           if regularizer is not None else f"{param} parameterization")
    caption = (f"One picture per class logit of {facts['model']} (run {facts['run']}, epoch {facts['epoch']}) on "
               f"{facts['dataset']}, synthesised from noise by {steps} Adam steps ({how}, transformation robustness, "
               f"{size}x{size} pixels). The classifier itself reads {recognised} of {len(classes)} as the class they "
               f"were made for" + ("." if recognised == len(classes) else
                                   "; a label 'a: b' means made for a, read as b."))
    numbers = {"classes": len(classes), "recognised": recognised, "predicted": [classes[int(p)] for p in predicted],
               "confidence": [round(float(c), 4) for c in confidence], "steps": steps, "size": size, "param": param}
    manifest = {"study": "featureviz", "title": "Activation maximization of class units", **facts,
                "method": "activation maximization", "layer": "logits",
                "figures": [{"file": png.name, "caption": caption}], "numbers": numbers, "tables": []}
    path = write_manifest(folder, "featureviz", manifest)
    return StudyResult(manifest, path, [png], {"pictures": pictures, "predicted": predicted, "confidence": confidence})


def receptive_field(model: nn.Module, layer: str, size: int, channels: int, samples: int = 32) -> int:
    """Side in pixels of the input region that reaches the centre unit of ``layer``.

    Measured as the support of the gradient of the centre position (all channels) with
    respect to the input, united over ``samples`` random pictures: on one picture, a max
    pooling passes gradient to one pixel of each window and a ReLU that is off cuts a path,
    so a single gradient can miss the field's edge. Seeded, so the result is reproducible.
    """
    x = torch.rand(samples, channels, size, size, generator=torch.Generator().manual_seed(0))
    with Recorder(model, [layer], input_grad=True) as rec:
        rec.forward(x)
        act = rec.activations[layer]
        h, w = act.shape[-2:]
        grad = torch.autograd.grad(act[:, :, h // 2, w // 2].sum(), rec.input)[0]
    support = grad.abs().sum((0, 1)) > 0
    rows, cols = support.any(1).nonzero(), support.any(0).nonzero()
    if len(rows) == 0:
        return 0
    return int(max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))


def layer_channels_study(run: Any, *, layers: Sequence[str] | None = None, channels: int = 8, steps: int = 128,
                         size: int | None = None, objective: str = "neuron", test_images: int = 200,
                         param: str | None = None, penalty: float = 0.0, random_state: int = 0) -> StudyResult:
    """Render the most responsive channels of every conv layer, one row per layer.

    Args:
        run: a classifier run folder or ``Run``.
        layers: layer names (default: the conv layers, ``spread_conv_layers``). A conv
            layer's own output, not its ReLU's: a unit behind a ReLU that is off for the
            starting noise gets no gradient and stays blank.
        channels: channels per layer: those with the highest mean rectified activation
            over ``test_images`` test pictures.
        steps: Adam steps (Fourier parameterization, transformation robustness).
        size: picture size (default: the run's training size).
        objective: ``"neuron"`` (the channel's centre unit: one pattern the size of its
            receptive field) or ``"channel"`` (the channel's mean: the pattern tiled).
        test_images: test pictures that pick the channels.
        param: ``"fourier"`` or ``"pixel"`` (default: pixel for ``"neuron"``, fourier for
            ``"channel"``). With pixels and the neuron objective only the unit's receptive field
            changes (every pixel is its own parameter; the jitter of transformation robustness
            widens it by a few pixels), so each picture shows what the unit sees; a Fourier
            coefficient changes every pixel, which blurs the receptive field over the picture.
        penalty: weight of total variation (smooth strokes instead of pixel noise) subtracted
            from each unit's objective; 0 for none.
        random_state: seed.

    Returns:
        ``maps[layer]`` [channels, C, H, W] per layer.
    """
    run = open_run(run)
    model = run.model.eval()
    param = param or ("pixel" if objective == "neuron" else "fourier")
    layers = [resolve_layer(model, layer)[0] for layer in layers] if layers else spread_conv_layers(model)
    images = _test_images(run, test_images)
    size = size or _size(run, images)
    colour = image_channels(model)
    with Recorder(model, layers, grads=False) as rec:
        rec.forward(images)
        strength = {layer: rec.activations[layer].clamp_min(0).mean((0, 2, 3)) for layer in layers}
    maps, rows, per_layer = {}, [], {}
    for layer in layers:
        chosen = strength[layer].argsort(descending=True)[:channels].tolist()
        pictures = visualize(model, layer, channels=chosen, steps=steps, size=size, objective=objective, param=param,
                             regularizer=penalty * total_variation() if penalty > 0 else None,
                             random_state=random_state)
        maps[layer] = pictures
        rows.append(pictures)
        per_layer[layer] = {"channels": chosen, "receptive_field": receptive_field(model, layer, size, colour),
                            "total_channels": int(strength[layer].numel())}
    folder = artifacts_dir(run) / "featureviz"
    folder.mkdir(parents=True, exist_ok=True)
    width = max(len(r) for r in rows)
    tiles = [t for r in rows for t in list(viz.to_uint8(r)) + [None] * (width - len(r))]
    tiles = [t if t is not None else viz.to_uint8(torch.ones(1, colour, size, size))[0] for t in tiles]
    labels = [f"{layer} RF {per_layer[layer]['receptive_field']}" for layer in layers]
    png = viz.save_png(viz.grid(tiles, ncols=width, row_labels=labels, scale=max(1, 84 // size)),
                       folder / "layer_channels.png")
    facts = run_facts(run)
    what = "centre unit" if objective == "neuron" else "mean"
    caption = (f"Activation maximization of the {channels} channels of each conv layer of {facts['model']} "
               f"(run {facts['run']}, epoch {facts['epoch']}) that respond most to {len(images)} test pictures: each "
               f"picture maximises one channel's {what} ({steps} Adam steps, {param} parameterization"
               + (f", total variation penalty {penalty:g}" if penalty > 0 else "") + ", "
               f"transformation robustness, {size}x{size} pixels); rows from the first layer to the last, each labelled "
               f"with its receptive field (RF, pixels).")
    table = {"title": "Receptive field of each conv layer", "columns": ["layer", "channels", "shown",
                                                                       "receptive field (px)"],
             "rows": [[layer, n["total_channels"], len(n["channels"]), n["receptive_field"]]
                      for layer, n in per_layer.items()]}
    manifest = {"study": "layer_channels", "title": "Channels of every conv layer", **facts,
                "method": f"activation maximization ({objective})", "layer": ", ".join(layers),
                "figures": [{"file": png.name, "caption": caption}], "numbers": {"per_layer": per_layer,
                                                                              "objective": objective},
                "tables": [table]}
    path = write_manifest(folder, "layer_channels", manifest)
    return StudyResult(manifest, path, [png], maps)


__all__ = ["class_units_study", "layer_channels_study", "spread_conv_layers", "receptive_field"]
