"""One call from a run folder to every embedding artifact (what ``netgaze embed`` runs).

Writes into ``out``: ``embedding.npz`` (features, embedding, labels, predictions,
indices), ``embedding.html`` (interactive view), ``embedding.png`` (static scatter with
thumbnails), ``knn.json`` (kNN accuracies of labels and, where the dataset has one,
of the nuisance attribute ``background``); with ``tensorboard`` also a projector folder.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze._util.atomic import atomic_write
from netgaze.embed.features import OUTPUT_LAYERS, PRELOGIT_LAYER, Features, features
from netgaze.embed.knn import knn_report
from netgaze.embed.project import project
from netgaze.embed.projector import export_projector
from netgaze.embed.scatter import scatter_png
from netgaze.embed.view import interactive_html
from netgaze.core.layers import LayerRef, resolve_layer

THUMBNAIL = 32


@dataclass
class EmbeddingResult:
    """What ``embed_run`` computed and where it wrote it."""

    features: Features
    embedding: np.ndarray
    knn: dict[str, float]
    files: dict[str, Path]


def model_for_task(model: nn.Module, task: str) -> tuple[nn.Module, bool]:
    """(model whose output is embedded, whether it predicts classes) for a run's task.

    A VAE ("reconstruct") is embedded by its posterior means: ``model.mean_encoder()``.
    """
    if task == "reconstruct":
        if not hasattr(model, "mean_encoder"):
            raise ArgumentError(f"{type(model).__name__} has no mean_encoder(); pass a layer of the encoder")
        return model.mean_encoder(), False
    return model, task == "classify"


def nuisance_values(dataset: Any, indices: np.ndarray) -> np.ndarray | None:
    """The dataset's nuisance attribute per item (``shapes``: background colour id), if any."""
    attribute = getattr(dataset, "background", None)
    if not callable(attribute):
        return None
    return np.asarray([attribute(int(i)) for i in indices])


K = 5


class EmbedError(ArgumentError):
    """A split that cannot be embedded: too few pictures for k = 5 neighbours, or a single class."""


def check_split(dataset: Any, split: str, run_path: Any, limit: int | None = None,
                classes: Any = None) -> None:
    """Refuse, before any work, a split of fewer than ``K + 1`` pictures or of a single class."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n < K + 1:
        raise EmbedError(f"split {split!r} of {run_path} holds {n} picture(s); embed needs at least {K + 1} "
                         f"(each point's k = {K} nearest neighbours)")
    labels = getattr(dataset, "labels", None)
    if isinstance(labels, (torch.Tensor, np.ndarray)) and labels.ndim == 1:
        present = np.unique(np.asarray(labels[:n]))
        if len(present) < 2:
            name = classes[int(present[0])] if classes and len(present) and int(present[0]) < len(classes) \
                else (str(int(present[0])) if len(present) else "?")
            raise EmbedError(f"split {split!r} of {run_path} holds pictures of one class only ({name!r}); "
                             "embed compares classes, so it needs at least two")


def embed_run(run: Any, out: str | os.PathLike, *, layer: LayerRef = PRELOGIT_LAYER, method: str = "tsne",
              dims: int = 2, split: str = "test", perplexity: float = 30.0, random_state: int = 0,
              limit: int | None = None, tensorboard: str | os.PathLike | None = None,
              batch_size: int = 64, progress: bool = True) -> EmbeddingResult:
    """Embed a loaded run's ``split`` and write the artifacts (see the module docstring).

    Args:
        run: a ``netgaze.lab.runs.Run`` (``.model``, ``.classes``, ``.task``, ``.dataset(split)``).
        out: output folder.
        layer: a layer reference or "prelogits" / "logits"; for a VAE, "prelogits"
            means the posterior means (the encoder's output).
    """
    task = getattr(run, "task", "classify")
    model, predicts = model_for_task(run.model, task)
    if task == "reconstruct" and layer == PRELOGIT_LAYER:
        layer = "output"
    elif model is not run.model and not (isinstance(layer, str) and layer in OUTPUT_LAYERS):
        layer = resolve_layer(run.model, layer)[1]   # names of the run's model, found in the wrapper
    dataset = run.dataset(split)
    check_split(dataset, split, getattr(run, "path", "the run"), limit, getattr(run, "classes", None))
    F = features(model, dataset, layer, batch_size=batch_size, limit=limit, predict=predicts,
                 thumbnail_size=THUMBNAIL, progress=progress)
    if not F.classes and getattr(run, "classes", None):
        F.classes = list(run.classes)
    Y = project(F.features, method, dims, random_state=random_state, perplexity=perplexity, progress=progress)
    nuisance = nuisance_values(dataset, F.indices)
    knn = knn_report(F.features, Y, F.labels, nuisance) if F.labels is not None else {}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    title = f"{Path(str(getattr(run, 'path', 'run'))).name}: {F.layer}, {method} {dims}-D ({split}, {len(F)} images)"
    files = {"npz": _save_npz(out / "embedding.npz", F, Y, nuisance),
             "html": interactive_html(out / "embedding.html", Y, labels=F.labels, predictions=F.predictions,
                                      classes=F.classes, paths=F.paths, thumbnails=F.thumbnails, title=title),
             "png": scatter_png(out / "embedding.png", Y, F.labels, classes=F.classes,
                                thumbnails=F.thumbnails, title=title)}
    files["knn"] = atomic_write(out / "knn.json", json.dumps(
        {"layer": F.layer, "method": method, "dims": dims, "split": split, "n": len(F), "k": 5, **knn},
        indent=2))
    if tensorboard is not None:
        run_name = Path(str(getattr(run, "path", "run"))).name
        files["projector"] = export_projector(
            tensorboard, {"features": F.features, f"{method}-{dims}d": Y}, labels=F.label_names(),
            predictions=F.label_names(F.predictions) if F.predictions is not None else None,
            split=split, paths=F.paths, thumbnails=F.thumbnails, random_state=random_state,
            group=f"{run_name}-{F.layer}-{split}-{method}-{dims}d")
    return EmbeddingResult(features=F, embedding=Y, knn=knn, files=files)


def _save_npz(path: Path, F: Features, Y: np.ndarray, nuisance: np.ndarray | None) -> Path:
    arrays = {"features": F.features, "embedding": Y, "indices": F.indices}
    for key, value in (("labels", F.labels), ("predictions", F.predictions), ("nuisance", nuisance)):
        if value is not None:
            arrays[key] = value
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write(path, buffer.getvalue())



__all__ = ["embed_run", "EmbeddingResult", "model_for_task", "nuisance_values"]
