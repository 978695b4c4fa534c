"""S2: several models on the same pictures: Grad-CAM of each last conv stage and guided backprop.

Each model explains its own predicted class. Under each tile: the prediction and its
softmax confidence. The numbers say where each model looks: the share of its Grad-CAM
(and of its guided backprop's absolute mass) inside the object's ground-truth mask,
averaged over an evaluation set larger than the figure's pictures.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.methods import gradcam, guided_backprop
from netgaze.studies.common import artifacts_dir, label_tiles, open_run, progress_bar, run_facts, write_manifest
from netgaze.metrics.pointing import energy_inside
from netgaze.studies.images import Examples, mask_area, pick_examples
from netgaze.studies.across_layers import StudyResult, coverage, predict, stage_names, tile_scale
from netgaze.core.recorder import OutputSelector
from netgaze.core.targets import Class


def explain_model(model: nn.Module, x: torch.Tensor, layer: str | None = None,
                  output: OutputSelector = None) -> dict[str, Any]:
    """Prediction, confidence, Grad-CAM of ``layer`` (last stage when None) and guided backprop.

    ``output`` selects the class scores of a tuple/dict output (see ``Recorder``).

    Returns:
        dict with ``layer``, ``pred`` [B], ``conf`` [B], ``gradcam`` [B, H, W],
        ``guided`` [B, C, H, W], all for the predicted class.
    """
    layer = layer or stage_names(model, x.shape)[-1]
    pred, conf = predict(model, x, output)
    target = Class(pred.tolist())
    return {"layer": layer, "pred": pred, "conf": conf,
            "gradcam": gradcam(model, x, layer=layer, target=target, output=output),
            "guided": guided_backprop(model, x, target=target, output=output)}


def look_numbers(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None,
                 layer: str | None = None, batch: int = 64, output: OutputSelector = None) -> dict[str, Any]:
    """Accuracy, Grad-CAM coverage and (with masks) mean energy inside the mask of Grad-CAM and guided backprop.

    ``gradcam_coverage`` is measured with or without masks: the mean share of each Grad-CAM map
    above half its own maximum (``coverage``); it says how spread the map is, not where it lies.

    Args:
        model: a classifier.
        x: pictures [N, C, H, W], explained in batches of ``batch``.
        labels: true classes [N].
        masks: object masks [N, H, W], or None (then accuracy and coverage only).
        layer: Grad-CAM layer; the last stage when None.
        batch: pictures per pass.
        output: which part of a tuple/dict model output is explained (``Recorder``); None: the output,
            a dict's ``"out"`` or ``"logits"``, a tuple's first element.
    """
    preds, cam_energy, guided_energy, spread = [], [], [], []
    for start in range(0, x.shape[0], batch):
        part = explain_model(model, x[start:start + batch], layer, output)
        preds.append(part["pred"])
        spread.append(coverage(part["gradcam"]))
        if masks is not None:
            m = masks[start:start + batch]
            cam_energy.append(energy_inside(part["gradcam"], m))
            guided_energy.append(energy_inside(part["guided"].abs().sum(1), m))
    pred = torch.cat(preds)
    numbers: dict[str, Any] = {"n": int(x.shape[0]), "accuracy": float((pred == labels).float().mean()),
                               "gradcam_coverage": float(torch.cat(spread).mean())}
    if masks is not None:
        cam = torch.cat(cam_energy)
        numbers.update({
            "gradcam_energy_in_mask": float(cam.mean()),
            "gradcam_energy_in_mask_correct": float(cam[pred == labels].mean()) if (pred == labels).any() else None,
            "guided_energy_in_mask": float(torch.cat(guided_energy).mean()),
            "mask_area": float(mask_area(masks).mean()),
        })
    return numbers


def models_figure(examples: Examples, results: dict[str, dict[str, Any]], classes: Sequence[str]):
    """The S2 grid: picture, then per model its Grad-CAM and guided backprop, labelled."""
    images = examples.images
    b = images.shape[0]
    scale = tile_scale(images.shape[-1])
    columns = [label_tiles(viz.to_uint8(images), [f"true {_name(classes, int(c))}" for c in examples.labels],
                           scale=scale)]
    col_labels = ["picture"]
    for name, res in results.items():
        texts = [f"{_name(classes, int(p))} {float(c):.0%}" for p, c in zip(res["pred"], res["conf"])]
        columns.append(label_tiles(viz.overlay(images, res["gradcam"]), texts, scale=scale))
        columns.append(label_tiles(viz.attribution_image(res["guided"]), [""] * b, scale=scale))
        col_labels += [f"{name} CAM", f"{name} GB"]
    tiles = [col[i] for i in range(b) for col in columns]
    return viz.grid(tiles, ncols=len(columns), row_labels=[f"#{i}" for i in examples.indices],
                    col_labels=col_labels)


def _name(classes: Sequence[str], index: int) -> str:
    return classes[index] if 0 <= index < len(classes) else str(index)


def models_study(runs: Sequence, examples: Examples | None = None, n_images: int = 6, seed: int = 0,
                 n_eval: int = 128, names: Sequence[str] | None = None,
                 out: str | Path | None = None, progress: bool = False,
                 output: OutputSelector = None) -> StudyResult:
    """S2 on several run folders: ``models.png`` and ``models.json``.

    Args:
        runs: run folder paths or loaded runs, trained on the same classes.
        examples: the figure's pictures; picked from the first run's test split when None.
        n_images: pictures in the figure.
        seed: the pick's seed.
        n_eval: pictures of the first run's test split behind the numbers (0 = the figure's).
        names: column names; the runs' folder names when None.
        out: folder for the files; the first run's ``artifacts/`` when None.
        progress: a progress bar over the models on stderr.
        output: which part of a tuple/dict model output is explained (``Recorder``); None: the output,
            a dict's ``"out"`` or ``"logits"``, a tuple's first element.
    """
    runs = [open_run(r, tasks=("classify",), what="`study models`") for r in runs]
    if not runs:
        raise ArgumentError("models_study needs at least one run")
    facts = [run_facts(r) for r in runs]
    names = list(names) if names is not None else [f["run"] for f in facts]
    test = runs[0].dataset("test")
    if examples is None:
        examples = pick_examples(test, n_images, seed)
    evaluation = pick_examples(test, n_eval, seed + 1) if n_eval else examples
    classes = examples.classes or list(getattr(runs[0], "classes", []) or [])
    results, numbers = {}, {}
    for name, run in progress_bar(list(zip(names, runs)), "study models", progress, "model"):
        results[name] = explain_model(run.model, examples.images, output=output)
        numbers[name] = {**look_numbers(run.model, evaluation.images, evaluation.labels, evaluation.masks,
                                        output=output),
                         "layer": results[name]["layer"]}
    folder = Path(out) if out is not None else artifacts_dir(runs[0])
    png = viz.save_png(models_figure(examples, results, classes), folder / "models.png")
    described = "; ".join(f"{n}: {f['model']}, augment {f['augment']}, epoch {f['epoch']}" for n, f in zip(names, facts))
    caption = (f"Grad-CAM of the last conv stage (CAM) and guided backprop (GB) of each model on the same "
               f"{facts[0]['dataset']} test pictures, explaining each model's predicted class; under each "
               f"Grad-CAM the prediction and its confidence. Models: {described}.")
    manifest = {"study": "models", "title": "Grad-CAM for different models", **facts[0],
                "method": "gradcam + guided_backprop", "models": dict(zip(names, facts)),
                "images": examples.indices, "eval_images": len(evaluation.indices),
                "figures": [{"file": png.name, "caption": caption}],
                "numbers": {"per_model": numbers},
                "tables": [_models_table(numbers, examples.masks is not None)]}
    path = write_manifest(folder, "models", manifest)
    return StudyResult(manifest, path, [png], results)


def _models_table(numbers: dict[str, Any], has_masks: bool) -> dict[str, Any]:
    columns = ["model", "layer", "accuracy"]
    if has_masks:
        columns += ["Grad-CAM energy inside object", "guided backprop energy inside object", "object area"]
    rows = []
    for name, n in numbers.items():
        row = [name, n["layer"], n["accuracy"]]
        if has_masks:
            row += [n["gradcam_energy_in_mask"], n["guided_energy_in_mask"], n["mask_area"]]
        rows.append(row)
    return {"title": "Where each model looks (test pictures)", "columns": columns, "rows": rows}
