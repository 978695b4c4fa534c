"""S3: how attention moves during training: Grad-CAM of one run's checkpoints on the same pictures.

Writes ``epochs.png`` (rows: pictures, columns: epochs), ``epochs.gif`` (one frame per
epoch), ``epochs_curve.png`` (energy of the map inside the object mask, or, for data without
masks, the map's coverage: the share above half its maximum; and test accuracy against
epoch) and ``epochs.json``.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze._util.plots import plain_text
from netgaze.studies.common import (artifacts_dir, atomic_write_bytes, figure_to_array, open_run, progress_bar,
                                    run_facts, write_manifest)
from netgaze.studies.images import Examples, mask_area, pick_examples
from netgaze.studies.across_layers import StudyResult, tile_scale
from netgaze.core.recorder import OutputSelector
from netgaze.studies.across_models import explain_model, look_numbers

MAX_GRID_EPOCHS = 10


def pick_epochs(epochs: Sequence[int], most: int = MAX_GRID_EPOCHS) -> list[int]:
    """At most ``most`` epochs, evenly spread, always keeping the first and the last."""
    epochs = sorted(set(int(e) for e in epochs))
    if len(epochs) <= most:
        return epochs
    step = (len(epochs) - 1) / (most - 1)
    return sorted(set(epochs[round(i * step)] for i in range(most)))


def epochs_figure(images: torch.Tensor, cams: dict[int, torch.Tensor], row_labels: Sequence[str]) -> np.ndarray:
    """Rows: pictures; columns: the picture, then Grad-CAM at each epoch."""
    epochs = list(cams)
    columns = [viz.to_uint8(images)] + [viz.overlay(images, cams[e]) for e in epochs]
    tiles = [col[i] for i in range(images.shape[0]) for col in columns]
    return viz.grid(tiles, ncols=len(columns), row_labels=list(row_labels),
                    col_labels=["picture"] + [f"epoch {e}" for e in epochs], scale=tile_scale(images.shape[-1]))


def epoch_frames(images: torch.Tensor, cams: dict[int, torch.Tensor], col_labels: Sequence[str]) -> list[np.ndarray]:
    """One frame per epoch: the pictures in a row, overlaid with that epoch's Grad-CAM."""
    frames = []
    for epoch, maps in cams.items():
        frames.append(viz.grid(list(viz.overlay(images, maps)), ncols=images.shape[0], col_labels=list(col_labels),
                               row_labels=[f"epoch {epoch:3d}"], scale=tile_scale(images.shape[-1])))
    return frames


def gif_bytes(frames: Sequence[np.ndarray], ms_per_frame: int = 700) -> bytes:
    """An endlessly looping animated GIF; frames are padded (white) to one size."""
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    images = []
    for frame in frames:
        canvas = np.full((h, w, 3), 255, np.uint8)
        canvas[:frame.shape[0], :frame.shape[1]] = frame
        images.append(Image.fromarray(canvas))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame,
                   loop=0, optimize=False)
    return buffer.getvalue()


COVERAGE_LABEL = "Grad-CAM coverage (share of the map above half its maximum)"


@plain_text
def epochs_curve(rows: list[dict[str, Any]], baseline: float | None, title: str) -> np.ndarray:
    """Attention and test accuracy against epoch, one axis in [0, 1].

    Attention is the share of the Grad-CAM energy inside the ground-truth masks when the data
    has masks; without masks, the measure taken instead: Grad-CAM coverage, the share of the
    map above half its maximum (how spread the map is; nothing about where it lies).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    epochs = [r["epoch"] for r in rows]
    if any(r.get("gradcam_energy_in_mask") is not None for r in rows):
        axis.plot(epochs, [r.get("gradcam_energy_in_mask") for r in rows], "o-", label="Grad-CAM energy inside object")
    elif any(r.get("gradcam_coverage") is not None for r in rows):
        axis.plot(epochs, [r.get("gradcam_coverage") for r in rows], "o-", label=COVERAGE_LABEL)
    metric = next((r.get("metric") for r in rows if r.get("metric")), "test_acc")
    if any(r.get("test_acc") is not None for r in rows):
        label = "test accuracy" if metric == "test_acc" else plain_label(metric)
        axis.plot(epochs, [r.get("test_acc") for r in rows], "s-", label=label)
    if baseline is not None:
        axis.axhline(baseline, color="grey", linestyle="--", label="object area (uniform map)")
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylim(0, 1.02)
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure_to_array(figure)


def epochs_study(run, examples: Examples | None = None, n_images: int = 4, seed: int = 0, n_eval: int = 128,
                 epochs: Sequence[int] | None = None, layer: str | None = None,
                 out: str | Path | None = None, progress: bool = False,
                 output: OutputSelector = None) -> StudyResult:
    """S3 on a run folder's checkpoints.

    With masks in the test split, the curve and the table give the share of the Grad-CAM energy
    inside them; without masks, the Grad-CAM coverage (the share of the map above half its
    maximum), named as such: nothing is said about where the object is.

    Args:
        run: a run folder path or a loaded ``Run``.
        examples: the pictures; picked from the run's test split when None.
        n_images: pictures in the figure and the animation.
        seed: the pick's seed.
        n_eval: test pictures behind the per-epoch numbers (0 = the figure's).
        epochs: checkpoint epochs to explain; every checkpoint when None.
        layer: Grad-CAM layer; each checkpoint's last stage when None.
        out: folder for the files; the run's ``artifacts/`` when None.
        progress: a progress bar over the epochs on stderr.
        output: which part of a tuple/dict model output is explained (``Recorder``); None: the output,
            a dict's ``"out"`` or ``"logits"``, a tuple's first element.
    """
    run = open_run(run, tasks=("classify",), what="`study epochs`")
    available = [e for e, _ in run.checkpoints]
    chosen = sorted(set(available if epochs is None else epochs))
    missing = sorted(set(chosen) - set(available))
    if missing or not chosen:
        raise ArgumentError(f"no checkpoint for epoch(s) {missing or chosen}; the run has {available}")
    test = run.dataset("test")
    if examples is None:
        examples = pick_examples(test, n_images, seed)
    evaluation = pick_examples(test, n_eval, seed + 1) if n_eval else examples
    history = {int(h["epoch"]): h for h in run.history if "epoch" in h}
    # the run's metric (run.json's ``metric``, else the first of test_acc, val_acc, ...): kept in the
    # rows' ``test_acc`` column for the report, named by ``metric``
    metric = getattr(run, "metric", None) or "test_acc"
    cams: dict[int, torch.Tensor] = {}
    rows = []
    for epoch in progress_bar(chosen, "study epochs", progress, "epoch"):
        model = run.model_at(epoch) if hasattr(run, "model_at") else open_run(run.path, epoch=epoch).model
        explained = explain_model(model, examples.images, layer, output)
        cams[epoch] = explained["gradcam"]
        numbers = look_numbers(model, evaluation.images, evaluation.labels, evaluation.masks, layer, output=output)
        rows.append({"epoch": epoch, "layer": explained["layer"], "test_acc": _score(history.get(epoch, {}), metric),
                     "metric": metric, **numbers})
    folder = Path(out) if out is not None else artifacts_dir(run)
    facts = run_facts(run)
    names = examples.names()
    grid_epochs = pick_epochs(chosen)
    png = viz.save_png(epochs_figure(examples.images, {e: cams[e] for e in grid_epochs}, names),
                       folder / "epochs.png")
    gif = atomic_write_bytes(folder / "epochs.gif", gif_bytes(epoch_frames(examples.images, cams, names)))
    baseline = float(mask_area(evaluation.masks).mean()) if evaluation.masks is not None else None
    curve = viz.save_png(epochs_curve(rows, baseline, f"{facts['run']}: attention during training"),
                         folder / "epochs_curve.png")
    where = f"{facts['model']} (run {facts['run']}) on {facts['dataset']}"
    figures = [
        {"file": png.name, "caption": f"Grad-CAM of the last conv stage of {where} at epochs "
                                      f"{', '.join(map(str, grid_epochs))}, explaining the predicted class."},
        {"file": gif.name, "caption": f"The same Grad-CAM as an animation, one frame per epoch "
                                      f"({chosen[0]}–{chosen[-1]})."},
        {"file": curve.name, "caption": (f"Share of the Grad-CAM energy inside the object's ground-truth mask "
                                         if evaluation.masks is not None else
                                         "Grad-CAM coverage, the share of each map above half its maximum (the "
                                         "data has no masks, so where the maps lie is not measured), ")
                                        + f"(mean over {len(evaluation.indices)} test pictures) and test accuracy, "
                                          f"per epoch, {where}."},
    ]
    manifest = {"study": "epochs", "title": "Grad-CAM at different epochs", **facts, "method": "gradcam",
                "images": examples.indices, "eval_images": len(evaluation.indices), "figures": figures,
                "numbers": {"per_epoch": rows, "mask_area": baseline},
                "tables": [_epochs_table(rows)]}
    path = write_manifest(folder, "epochs", manifest)
    return StudyResult(manifest, path, [png, gif, curve], {"gradcam": cams})


def _score(record: dict[str, Any], metric: str) -> float | None:
    value = record.get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def plain_label(metric: str) -> str:
    """``val_acc`` -> ``val acc``, for a legend."""
    return metric.replace("_", " ")


def _epochs_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    has_energy = any("gradcam_energy_in_mask" in r for r in rows)
    has_coverage = not has_energy and any("gradcam_coverage" in r for r in rows)
    metric = next((r.get("metric") for r in rows if r.get("metric")), "test_acc")
    columns = ["epoch", "test accuracy" if metric == "test_acc" else plain_label(metric),
               "accuracy on the explained pictures"]
    if has_energy:
        columns.append("Grad-CAM energy inside object")
    if has_coverage:
        columns.append("Grad-CAM coverage (share of map > half its max)")
    body = []
    for r in rows:
        row = [r["epoch"], r.get("test_acc"), r["accuracy"]]
        if has_energy:
            row.append(r.get("gradcam_energy_in_mask"))
        if has_coverage:
            row.append(r.get("gradcam_coverage"))
        body.append(row)
    return {"title": "Attention and accuracy per epoch", "columns": columns, "rows": body}
