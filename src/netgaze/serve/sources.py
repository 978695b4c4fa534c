"""What the explorer serves: the runs and models given on the command line, by ID.

A run folder becomes a source through ``run_source``; a ``--model`` through
``netgaze.serve.model_sources``. The worker processes load the same sources again from
``Sources.recipe``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from netgaze.serve.api_error import ApiError, NotFound
from netgaze.serve.model_sources import model_source
from netgaze.serve.source import Source, unique_id


def run_source(path: str | Path, taken: Sequence[str] = ()) -> Source:
    """A source for a run folder (its last checkpoint is the default epoch)."""
    from netgaze.lab.runs import load_run
    from netgaze.zoo import load_run_model

    path = Path(path)
    if not path.is_dir():
        raise ApiError(f"no such run folder: {path}")
    run = load_run(path)
    loaded = load_run_model(path, tasks=None)
    size = (loaded.size, loaded.size)
    try:
        x = run.dataset("test")[0][0]
        size, channels = (int(x.shape[-2]), int(x.shape[-1])), int(x.shape[0])
    except Exception:  # noqa: BLE001 - a run whose data cannot be loaded is still served for uploads
        channels = loaded.channels
    config = run.config
    description = f"{config.get('model', '?')} on {config.get('data', '?')}, {run.task}"
    return Source(id=unique_id(path.name, taken), kind="run", task=run.task, classes=list(run.classes),
                  size=size, channels=channels, epochs=[e for e, _ in run.checkpoints], history=run.history,
                  model=run.model, description=description, run=run)


class Sources:
    """The served sources by ID."""

    def __init__(self, sources: Sequence[Source], recipe: dict[str, Any] | None = None):
        if not sources:
            raise ApiError("nothing to serve: give run folders or --model")
        self.by_id = {s.id: s for s in sources}
        self.recipe = recipe     # the arguments of from_arguments, for worker processes to load the same

    def get(self, source_id: Any) -> Source:
        if not isinstance(source_id, str) or source_id not in self.by_id:
            shown = source_id if isinstance(source_id, str) else type(source_id).__name__
            raise NotFound(f"unknown run {shown[:80]!r}; served: {', '.join(self.by_id)}")
        return self.by_id[source_id]

    def __iter__(self):
        return iter(self.by_id.values())

    @classmethod
    def from_arguments(cls, runs: Sequence[str], model: str | None = None, weights: str | None = None,
                       images: str | None = None, size: int = 224) -> "Sources":
        found: list[Source] = []
        for path in runs:
            found.append(run_source(path, [s.id for s in found]))
        if model:
            found.append(model_source(model, weights, images, size, [s.id for s in found]))
        elif weights or images:
            raise ApiError("--weights and --images go with --model")
        return cls(found, recipe=cls.recipe_of(runs, model, weights, images, size))

    @staticmethod
    def recipe_of(runs: Sequence[str], model: str | None = None, weights: str | None = None,
                  images: str | None = None, size: int = 224) -> dict[str, Any]:
        """``from_arguments``'s arguments with absolute paths: what a worker process loads again,
        with the code this process trusts (``--trust-code``), which the worker trusts too."""
        from netgaze.lab.models.trust import process_trust

        if model and model.startswith("hf:"):      # a save_pretrained folder: found from any working directory
            model = "hf:" + str(Path(model[3:]).absolute())
        return {"runs": [str(Path(p).absolute()) for p in runs], "model": model, "size": size,
                "weights": weights and str(Path(weights).absolute()), "images": images and str(Path(images).absolute()),
                "trust_code": process_trust()}
