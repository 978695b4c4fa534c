"""A run folder's model as a ``LoadedModel``: the checkpoint, its classes and the picture size it takes."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from netgaze.lab.run_tasks import require_task
from netgaze.zoo.loaded import LoadedModel, ModelInputError


def load_run_model(path: str | Path, epoch: int | None = None, tasks: Sequence[str] | None = ("classify",),
                   command: str = "explain") -> LoadedModel:
    """A checkpoint of a run folder (the last when ``epoch`` is None), with its classes and picture size.

    ``tasks``: the run tasks the caller handles (None: any); another raises ``WrongTaskError``.
    """
    from netgaze.lab.runs import load_run

    if not Path(path).is_dir():
        raise ModelInputError(f"no such run folder: {path}")
    run = load_run(path, epoch)
    if tasks:
        require_task(run, tasks, f"`{command}`")
    args = run.config.get("model_args", {})
    options = run.config.get("data_options", {}) or {}
    data = str(run.config.get("data", ""))
    size = int(options.get("size") or run.config.get("image_size") or (28 if data == "digits" or data.startswith("mnist") else 64))
    channels = int(run.config.get("image_channels") or args.get("in_channels", 3))
    return LoadedModel(run.model, list(run.classes), size, channels, run.config.get("model", "?"),
                       weights=str(run.folder.checkpoint_paths(run.epoch)[0]))
