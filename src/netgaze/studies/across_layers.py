"""S1: Grad-CAM of every conv stage of one model on the same pictures.

The figure has one row per picture: the picture, then for each stage its Grad-CAM
overlay with the guided Grad-CAM of that stage beside it. The numbers say how much of
each stage's map falls on the object (when masks are known) and how spread it is, which
is the report's claim "the last conv layer gives the most useful map" as a table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from netgaze import viz
from netgaze.core.layers import display_name, resolve_layer
from netgaze.core.stages import stage_names as core_stage_names
from netgaze.methods import gradcam, guided_backprop
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.studies.common import artifacts_dir, open_run, run_facts, write_manifest
from netgaze.metrics.pointing import energy_inside
from netgaze.studies.images import Examples, pick_examples
from netgaze.core.targets import Class

MAX_STAGES = 6


@dataclass
class StudyResult:
    """What a study wrote and computed.

    Attributes:
        manifest: the JSON object written next to the figures (numbers included).
        path: the manifest's path, or None when nothing was written.
        figures: the PNG/GIF files written.
        maps: the computed maps by name, for use from Python.
    """

    manifest: dict[str, Any]
    path: Path | None = None
    figures: list[Path] = field(default_factory=list)
    maps: dict[str, Any] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        """The study's title and tables as HTML, for a notebook (every text escaped)."""
        return study_html(self.manifest, self.path)


def study_html(manifest: dict[str, Any], path: Path | None = None) -> str:
    """A manifest's title, tables and files as a small HTML fragment; user text (run and class
    names, layer names, captions) is escaped, numbers are shown with three decimals."""
    from html import escape

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}" if value == value else "–"
        return "–" if value is None else escape(str(value))

    title = manifest.get("title") or manifest.get("study") or "study"
    parts = [f"<div class=\"netgaze-study\"><h4>{escape(str(title))}</h4>"]
    for table in manifest.get("tables") or []:
        if not isinstance(table, dict):
            continue
        parts.append("<table>")
        if table.get("title"):
            parts.append(f"<caption>{escape(str(table['title']))}</caption>")
        parts.append("<tr>" + "".join(f"<th>{escape(str(c))}</th>" for c in table.get("columns", [])) + "</tr>")
        for row in table.get("rows", []):
            parts.append("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    if path is not None:
        parts.append(f"<p>written: <code>{escape(str(path))}</code></p>")
    parts.append("</div>")
    return "".join(parts)


def stage_names(model: nn.Module, input_shape: Sequence[int] | None = None) -> list[str]:
    """The model's stages (``netgaze.core.stages``, the rule behind ``layer=-1``), at most six.

    More than six are thinned evenly, always ending with the last stage (the default layer).
    """
    return _spread(core_stage_names(model, input_shape))


def _spread(names: list[str]) -> list[str]:
    if len(names) <= MAX_STAGES:
        return names
    step = (len(names) - 1) / (MAX_STAGES - 1)
    return [names[round(i * step)] for i in range(MAX_STAGES)]


def predict(model: nn.Module, x: torch.Tensor, output: OutputSelector = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top class [B] and its softmax confidence [B], in eval mode, model left as found.

    ``output`` selects the class scores of a tuple/dict output (see ``Recorder``)."""
    with Recorder(model, [], grads=False, output=output) as rec:
        logits = rec.forward(x).detach()
    probs = logits.float().softmax(1)
    conf, pred = probs.max(1)
    return pred, conf


def coverage(maps: torch.Tensor, level: float = 0.5) -> torch.Tensor:
    """Share of each map's pixels above ``level`` of its own maximum, [B] (0 for a zero map)."""
    scaled = viz.normalize(maps.clamp(min=0))
    return (scaled > level).float().flatten(1).mean(1)


def compare_layers(model: nn.Module, x: torch.Tensor, layers: Sequence[str] | None = None,
                   target: int | Sequence[int] | None = None, output: OutputSelector = None) -> dict[str, Any]:
    """Grad-CAM of many layers (one pass) and guided Grad-CAM of each, for one target.

    Guided Grad-CAM of a layer is the guided backprop of the target times that layer's
    upsampled Grad-CAM, so one guided pass serves every layer.

    Args:
        model: any classifier taking ``x``.
        x: pictures [B, C, H, W].
        layers: layer names; ``stage_names(model)`` when None.
        target: the explained class(es); the top class of each picture when None.
        output: which part of a tuple/dict model output is explained (``Recorder``); None: the output,
            a dict's ``"out"`` or ``"logits"``, a tuple's first element.

    Returns:
        dict with ``layers``, ``target`` (long [B]), ``gradcam`` (name -> [B, H, W]) and
        ``guided_gradcam`` (name -> [B, C, H, W]).
    """
    names = list(layers) if layers is not None else stage_names(model, x.shape)
    names = [resolve_layer(model, name, x.shape)[0] for name in names]
    if target is None:
        classes = predict(model, x, output)[0]
    else:
        classes = torch.as_tensor(target).long().reshape(-1).expand(x.shape[0]).clone()
    cams = gradcam(model, x, layer=names, target=Class(classes.tolist()), output=output)
    guided = guided_backprop(model, x, target=Class(classes.tolist()), output=output)
    return {"layers": names, "labels": [display_name(model, n) for n in names], "target": classes, "gradcam": cams,
            "guided_gradcam": {n: guided * cams[n][:, None] for n in names}}


def tile_scale(size: int, want: int = 96) -> int:
    """Integer upscaling that makes a tile of ``size`` pixels about ``want`` pixels wide."""
    return max(1, want // max(1, size))


def layers_figure(images: torch.Tensor, result: dict[str, Any], row_labels: Sequence[str]):
    """The S1 grid: picture | for each layer: Grad-CAM overlay, guided Grad-CAM."""
    names = result["layers"]
    pictures = viz.to_uint8(images)
    columns = [pictures] + [arr for n in names
                            for arr in (viz.overlay(images, result["gradcam"][n]),
                                        viz.attribution_image(result["guided_gradcam"][n]))]
    tiles = [col[i] for i in range(images.shape[0]) for col in columns]
    shown = result.get("labels", names)
    labels = ["picture"] + [label for n in shown for label in (n, "guided")]
    return viz.grid(tiles, ncols=len(columns), row_labels=list(row_labels), col_labels=labels,
                    scale=tile_scale(images.shape[-1]))


def layers_numbers(result: dict[str, Any], masks: torch.Tensor | None) -> dict[str, Any]:
    """Per layer: mean energy inside the object mask (when known) and mean coverage."""
    numbers: dict[str, Any] = {}
    for name in result["layers"]:
        maps = result["gradcam"][name]
        entry = {"coverage": float(coverage(maps).mean())}
        if masks is not None:
            entry["energy_in_mask"] = float(energy_inside(maps, masks).mean())
        numbers[name] = entry
    return numbers


def layers_study(run, examples: Examples | None = None, n_images: int = 6, seed: int = 0,
                 layers: Sequence[str] | None = None, out: str | Path | None = None,
                 output: OutputSelector = None) -> StudyResult:
    """S1 on a run folder: the grid PNG and ``layers.json`` in ``artifacts/`` (or ``out``).

    Args:
        run: a run folder path or a loaded ``Run`` (its last epoch unless loaded otherwise).
        examples: the pictures; picked from the run's test split when None.
        n_images: how many pictures to pick.
        seed: the pick's seed.
        layers: layer names; the model's stages when None.
        out: folder for the files; the run's ``artifacts/`` when None.
        output: which part of a tuple/dict model output is explained (``Recorder``); None: the output,
            a dict's ``"out"`` or ``"logits"``, a tuple's first element.
    """
    run = open_run(run, tasks=("classify",), what="`study layers`")
    if examples is None:
        examples = pick_examples(run.dataset("test"), n_images, seed)
    result = compare_layers(run.model, examples.images, layers, output=output)
    folder = Path(out) if out is not None else artifacts_dir(run)
    facts = run_facts(run)
    png = viz.save_png(layers_figure(examples.images, result, examples.names()), folder / "layers.png")
    numbers = layers_numbers(result, examples.masks)
    caption = (f"Grad-CAM of every conv stage of {facts['model']} (run {facts['run']}, epoch {facts['epoch']}) "
               f"on {len(examples.indices)} {facts['dataset']} test pictures, explaining each model's predicted "
               f"class; beside each stage its guided Grad-CAM. Columns: {', '.join(result['labels'])}.")
    manifest = {"study": "layers", "title": "Grad-CAM on different layers", **facts,
                "method": "gradcam + guided_gradcam", "layers": result["layers"], "images": examples.indices,
                "figures": [{"file": png.name, "caption": caption}],
                "numbers": {"per_layer": numbers},
                "tables": [_layers_table(numbers, examples.masks is not None)]}
    path = write_manifest(folder, "layers", manifest)
    return StudyResult(manifest, path, [png], result)


def _layers_table(numbers: dict[str, Any], has_masks: bool) -> dict[str, Any]:
    columns = ["layer", "coverage (share of map > half its max)"]
    if has_masks:
        columns.append("energy inside object mask")
    rows = []
    for name, entry in numbers.items():
        row = [name, entry["coverage"]]
        if has_masks:
            row.append(entry["energy_in_mask"])
        rows.append(row)
    return {"title": "Where each stage's Grad-CAM lies", "columns": columns, "rows": rows}
