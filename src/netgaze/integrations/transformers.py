"""``RunCallback`` for the Hugging Face ``Trainer``: a netgaze run folder, one line.

    from netgaze.integrations.transformers import RunCallback

    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      callbacks=[RunCallback("runs/vit", data={"test": val})])
    trainer.train()
    # then: netgaze study epochs runs/vit, ng.load_run("runs/vit") -- no --trust-code needed

The model is rebuilt offline from its own config: the run's build is ``hf:CLASS``
(``hf:ViTForImageClassification``) with ``model_args = {"config": model.config.to_dict()}`` in
``run.json``, which ``netgaze.lab.models.hf`` turns back into the model (a transformers class
only; no download, no remote code). ``build=`` / ``build_args=`` override it for a model that is not
a transformers ``PreTrainedModel``. Class names come from ``config.id2label`` unless ``classes``
is given.

When it saves. The Trainer (checked on transformers 5.25) calls, at the end of each epoch,
``on_epoch_end`` first, then logs the epoch's training loss and -- with
``eval_strategy="epoch"`` -- evaluates (``on_log``, ``on_evaluate``), then ``on_epoch_begin`` of the
next epoch or ``on_train_end``. So ``on_epoch_end`` only marks the epoch finished, and the
checkpoint is written at the first of ``on_evaluate``, the next ``on_epoch_begin`` or
``on_train_end``: after the epoch's own evaluation when there is one, with the same weights
(no training step comes in between). The epoch is ``state.epoch`` rounded (finished epochs: 1
after the first). Its metrics are the ``state.log_history`` entries logged during that epoch
(``0 < epoch_logged - (epoch - 1) <= 1``), later ones winning: ``loss``, ``eval_loss``,
``eval_accuracy`` ... with the Trainer's names; timings (``*_runtime``, ``*_per_second``,
``total_flos``) are left out. Only ``state.is_world_process_zero`` writes.

Data. The Trainer's datasets return dicts (``{"pixel_values": ..., "labels": ...}``); the run
keeps ``(picture, label)`` pairs, so such a dataset is read through ``pixel_values`` / ``labels``
(or ``label``), the pictures exactly as the model takes them (already normalised by the image
processor). A dataset whose items are PIL images must have its transform applied first.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping

import torch
from torch.utils.data import Dataset

from netgaze.errors import ArgumentError
from netgaze.integrations.extras import require
from netgaze.lab.run_data import DEFAULT_MAX_DATA_MB
from netgaze.lab.run_writer import RunWriter, unwrap

_transformers = require("transformers", "transformers", "netgaze.integrations.transformers.RunCallback")

SKIPPED = ("epoch", "step", "total_flos")
SKIPPED_ENDINGS = ("_runtime", "_per_second")


class PictureLabelPairs(Dataset):
    """A dataset of ``{"pixel_values": x, "labels": y}`` dicts seen as ``(x, y)`` pairs (the run's form)."""

    def __init__(self, dataset: Any, picture_key: str = "pixel_values", label_key: str | None = None):
        self.dataset, self.picture_key, self.label_key = dataset, picture_key, label_key
        self.classes = getattr(dataset, "classes", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.dataset[index]
        if not isinstance(item, Mapping) or self.picture_key not in item:
            raise ArgumentError(f"item {index} of the data has no {self.picture_key!r} entry "
                                f"(it has {', '.join(map(str, item)) if isinstance(item, Mapping) else type(item).__name__})")
        key = self.label_key or next((k for k in ("labels", "label") if k in item), None)
        if key is None:
            raise ArgumentError(f"item {index} of the data has no 'labels' or 'label' entry")
        return torch.as_tensor(item[self.picture_key]), int(item[key])


def as_pairs(data: Mapping[str, Any] | str | None) -> Mapping[str, Any] | str | None:
    """``data`` with every split whose items are dicts read as ``(pixel_values, labels)`` pairs."""
    if not isinstance(data, Mapping):
        return data
    out = {}
    for name, dataset in data.items():
        first = dataset[0] if len(dataset) else None
        out[name] = PictureLabelPairs(dataset) if isinstance(first, Mapping) else dataset
    return out


def epoch_metrics(log_history: list[dict[str, Any]], epoch: int) -> dict[str, float]:
    """The metrics logged during finished epoch ``epoch`` (1-based), later entries winning."""
    record: dict[str, float] = {}
    for entry in log_history:
        logged = entry.get("epoch") if isinstance(entry, dict) else None
        if not isinstance(logged, (int, float)) or not 0 < logged - (epoch - 1) <= 1 + 1e-6:
            continue
        for key, value in entry.items():
            if key in SKIPPED or key.endswith(SKIPPED_ENDINGS):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                record[key] = float(value)
    return record


class RunCallback(_transformers.TrainerCallback):
    """Writes a netgaze run folder while the Hugging Face ``Trainer`` trains: one checkpoint per epoch.

    Args:
        path: the run folder (new, or one this training resumes).
        data: ``{"test": dataset, ...}``: ``(picture, label)`` pairs or the Trainer's
            ``{"pixel_values", "labels"}`` dicts, kept in the run as tensors; or a dataset spec
            such as ``"folder:PATH"``.
        classes: class names; None takes ``model.config.id2label``.
        metric: the history key the studies and the explorer plot (None: netgaze's rule, which
            prefers ``eval_accuracy``).
        build: how other processes rebuild the model; None: ``hf:CLASS`` from the model's config.
        build_args: arguments of ``build`` (None with ``hf:``: ``{"config": model.config.to_dict()}``).
        max_data_mb: the most data kept in the run (see ``RunWriter``).
    """

    def __init__(self, path: str | os.PathLike, data: Mapping[str, Any] | str | None = None, *,
                 classes: list[str] | None = None, metric: str | None = None, build: str | None = None,
                 build_args: Mapping[str, Any] | None = None, max_data_mb: float = DEFAULT_MAX_DATA_MB):
        self.path, self.data, self.classes, self.metric = path, data, classes, metric
        self.build, self.build_args, self.max_data_mb = build, build_args, max_data_mb
        self.writer: RunWriter | None = None
        self._model: torch.nn.Module | None = None
        self._pending: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self.writer is not None:
            return
        if model is None:
            raise ArgumentError("RunCallback needs the Trainer's model (the Trainer passes it as model=)")
        model = unwrap(model)
        build, build_args = self.build, self.build_args
        config = getattr(model, "config", None)
        if build is None:
            if not isinstance(model, _transformers.PreTrainedModel) or config is None:
                raise ArgumentError(f"the model is a {type(model).__name__}, not a transformers PreTrainedModel: "
                                    "pass build='package.module:callable' (and build_args) to RunCallback")
            build = f"hf:{type(model).__name__}"
            build_args = {"config": json.loads(config.to_json_string(use_diff=False))}
        classes = self.classes
        if classes is None and config is not None and getattr(config, "id2label", None):
            id2label = {int(k): str(v) for k, v in config.id2label.items()}
            classes = [id2label.get(i, str(i)) for i in range(max(id2label) + 1)]
        self._model = model
        self.writer = RunWriter(self.path, model, build, build_args=build_args, data=as_pairs(self.data),
                                classes=classes, metric=self.metric, max_data_mb=self.max_data_mb,
                                resume=state.global_step > 0)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.writer is not None and state.epoch is not None:
            self._pending = int(round(state.epoch))

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._save(state)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._save(state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._save(state)
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    def _save(self, state: Any) -> None:
        if self.writer is None or self._pending is None:
            return
        epoch, self._pending = self._pending, None
        if epoch > self.writer.last_epoch:
            self.writer.save(epoch, self._model, epoch_metrics(state.log_history, epoch))


__all__ = ["RunCallback", "PictureLabelPairs", "as_pairs", "epoch_metrics"]
