"""What the studies share: opening runs, atomic JSON, labelled tiles, manifests.

A study writes into ``RUN/artifacts/``: PNGs and ``<study>.json``, a *manifest* that the
report reads. A manifest is a JSON object with ``study`` (its name), ``title``, the run's
facts (``run``, ``model``, ``dataset``, ``epoch``, ``task``), ``method``, ``figures`` (a
list of ``{"file": path relative to artifacts/, "caption": text, ...}``), ``numbers`` (what
the figures show, as numbers) and optionally ``tables`` (``{"title", "columns", "rows"}``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from netgaze._util.atomic import atomic_write_bytes  # noqa: F401  (re-exported for the studies)
from netgaze._util.plots import plain_text
from netgaze.lab.run_tasks import require_task

def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically; NaN becomes null."""
    text = json.dumps(_clean(obj), indent=2, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return None if value != value or value in (float("inf"), float("-inf")) else round(value, 6)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return _clean(obj.tolist())
    return obj


def open_run(run, epoch: int | None = None, tasks: Sequence[str] | None = None, what: str = "this study"):
    """A ``netgaze.lab.runs.Run`` from a Run or a run folder path (``epoch`` None = last).

    ``tasks``: the tasks the caller handles; another task raises ``WrongTaskError``.
    A Run reopened at another epoch keeps its ``--data`` override.
    """
    if not (hasattr(run, "model") and hasattr(run, "path")) or epoch is not None:
        from netgaze.lab.runs import load_run

        data = getattr(run, "data", None) if hasattr(run, "path") else None
        trust = getattr(run, "trust_code", False) if hasattr(run, "path") else False
        run = load_run(getattr(run, "path", run), epoch=epoch, data=data, trust_code=trust)
    return require_task(run, tasks, what) if tasks else run


def progress_bar(items, desc: str, show: bool, unit: str = "it"):
    """``items`` wrapped in a tqdm bar on stderr when ``show`` (for the studies' slow loops)."""
    import sys

    from tqdm.auto import tqdm
    return tqdm(items, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False, disable=not show)


def run_facts(run) -> dict[str, Any]:
    """The run's name, task, model, dataset, augmentation and epoch, for captions."""
    config = dict(getattr(run, "config", {}) or {})
    checkpoints = list(getattr(run, "checkpoints", []) or [])
    epoch = getattr(run, "epoch", None)
    if epoch is None and checkpoints:
        epoch = checkpoints[-1][0]
    return {
        "run": Path(run.path).name,
        "task": config.get("task", "classify"),
        "model": config.get("model", type(run.model).__name__),
        "dataset": config.get("data", config.get("dataset", "?")),
        "augment": config.get("augment", "none"),
        "epoch": epoch,
    }


def artifacts_dir(run) -> Path:
    path = Path(getattr(run, "artifacts", None) or Path(run.path) / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def label_tiles(tiles: Sequence[np.ndarray], texts: Sequence[str], height: int = 12,
                scale: int = 1) -> list[np.ndarray]:
    """Each uint8 tile [H, W, 3], enlarged ``scale`` times, with a white strip of text under it."""
    font = ImageFont.load_default()
    out = []
    for tile, text in zip(tiles, texts):
        if scale > 1:
            tile = np.asarray(tile).repeat(scale, 0).repeat(scale, 1)
        h, w = tile.shape[:2]
        image = Image.new("RGB", (w, h + height), (255, 255, 255))
        image.paste(Image.fromarray(np.ascontiguousarray(tile)), (0, 0))
        draw = ImageDraw.Draw(image)
        while len(text) > 1 and font.getlength(text) > w - 2:
            text = text[:-2] + "…"
        draw.text((1, h), text, fill=(0, 0, 0), font=font)
        out.append(np.asarray(image))
    return out


@plain_text
def figure_to_array(figure) -> np.ndarray:
    """A matplotlib figure rendered to uint8 RGB [H, W, 3] (then closed)."""
    import matplotlib.pyplot as plt

    figure.canvas.draw()
    array = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return array


def write_manifest(folder: Path, name: str, manifest: dict[str, Any]) -> Path:
    """Write ``folder/<name>.json`` atomically and return its path."""
    return atomic_write_json(Path(folder) / f"{name}.json", manifest)
