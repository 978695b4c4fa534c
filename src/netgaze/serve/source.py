"""One thing the explorer serves (a run or a model), named by ID, with its pictures and layers.

A *source* is a run folder (every checkpoint, its test and train pictures) or a model given
as ``torchvision:NAME`` / ``timm:NAME`` with a weights file and a folder of pictures. Clients
name a source by its ID (the run folder's name) and a picture by split and index: no request
ever carries a file path, so none can reach a file outside the served runs.
"""
from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from netgaze._util.containment import inside_run
from netgaze.core import layouts
from netgaze.core.layers import LayerError, conv_layer_names, display_name
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.api_error import ApiError, NotFound

SPLITS = ("test", "train")
MAX_LAYERS = 40
PICTURE_CACHE_BYTES = 64 * 1024 * 1024
ID_RE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Picture:
    """One picture of a source: the tensor, its label (or None) and its object mask (or None)."""

    x: torch.Tensor
    label: int | None
    mask: torch.Tensor | None = None


@dataclass
class Source:
    """A run or a model the explorer serves.

    Attributes:
        id: the name clients use (letters, digits, ``_.-``).
        kind: ``"run"`` or ``"model"``.
        task: ``"classify"``, ``"reconstruct"`` or ``"segment"``.
        classes: class names (for segmentation: the classes of the map's channels).
        size: picture (height, width) the model takes.
        channels: colour channels of its pictures.
        epochs: checkpoint epochs (empty for a model).
        history: one record per trained epoch (loss, accuracy, ...).
        model: the model of the last epoch (never used by two threads: workers copy it).
    """

    id: str
    kind: str
    task: str
    classes: list[str]
    size: tuple[int, int]
    channels: int
    epochs: list[int]
    history: list[dict[str, Any]]
    model: nn.Module
    description: str = ""
    output: Any = None          # which part of a tuple/dict output is explained (torchvision segmenters: "out")
    run: Any = field(default=None, repr=False)
    pictures_folder: Path | None = None
    weights: str = ""            # a model's weights file (a run names its checkpoints itself)
    _datasets: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _layers: list[str] | None = field(default=None, repr=False)
    _stages: list[str] | None = field(default=None, repr=False)
    _module_names: dict[str, str] | None = field(default=None, repr=False)
    _pictures: MemoryLRU = field(default_factory=lambda: MemoryLRU(PICTURE_CACHE_BYTES, "pictures"), repr=False)

    @property
    def last_epoch(self) -> int | None:
        return self.epochs[-1] if self.epochs else None

    def check_epoch(self, epoch: Any) -> int | None:
        if epoch is None:
            return self.last_epoch
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise ApiError(f"epoch is an integer, got {type(epoch).__name__}")
        if epoch not in self.epochs:
            raise ApiError(f"{self.id} has no checkpoint of epoch {epoch}; it has {self.epochs or 'none'}")
        return epoch

    # --- models --------------------------------------------------------------
    def new_model(self, epoch: int | None, weights: MemoryLRU | None = None) -> nn.Module:
        """A private copy of the model at ``epoch`` (eval mode); weights come through ``weights``."""
        epoch = self.check_epoch(epoch)
        if self.run is None or epoch == self.last_epoch:
            with self._lock:
                return copy.deepcopy(self.model).eval()
        from netgaze.lab.runs import rebuild_model

        def load() -> dict[str, torch.Tensor]:
            return self.run.folder.load_weights(epoch)
        state = weights.get_or_make(("weights", self.id, epoch), load) if weights is not None else load()
        model = rebuild_model(self.run.config["model"], self.run.config.get("model_args", {}),
                              getattr(self.run, "trust_code", False))
        model.load_state_dict(state)
        return model.eval()

    def weights_name(self, epoch: int | None) -> str:
        """What an error names for the weights at ``epoch``: the run's checkpoint file, the model's weights file."""
        if self.run is not None:
            try:
                return str(self.run.folder.checkpoint_paths(self.check_epoch(epoch))[0])
            except Exception:  # noqa: BLE001 - a name for a message; the epoch was checked before
                return f"{self.id}'s checkpoint of epoch {epoch}"
        return self.weights or f"the weights of {self.id}"

    @property
    def conditional(self) -> bool:
        """A conditional VAE: its forward needs each picture's label beside the picture."""
        return bool(getattr(self.model, "conditional", False))

    def bind(self, model: nn.Module, labels: Sequence[int | None]) -> nn.Module:
        """The module explanations run on: ``model`` itself, or a conditional VAE conditioned on
        the pictures' labels (its layer names then start with ``vae.``, as in the studies)."""
        if not self.conditional:
            return model
        self.check_labels(labels)
        return model.conditioned(torch.tensor(list(labels), dtype=torch.long))

    def check_labels(self, labels: Sequence[int | None]) -> None:
        """ApiError when a conditional VAE is asked about a picture without a label."""
        if self.conditional and any(label is None for label in labels):
            raise ApiError(f"{self.id} is a conditional VAE: it needs each picture's label, so explain a "
                           "picture of its data (an upload has no label)")

    def _named(self) -> nn.Module:
        """The module whose layer names clients use (a conditional VAE conditioned on class 0)."""
        return self.bind(self.model, [0])

    # --- layers ----------------------------------------------------------------
    def layers(self) -> list[str]:
        """Layer names, the model's stages first (the last stage is the default), then every conv layer."""
        if self._layers is None:
            stages = self.stages()
            convs = [display_name(self._named(), n) for n in conv_layer_names(self._named())]
            self._layers = (stages + [n for n in convs if n not in stages])[:MAX_LAYERS]
        return self._layers

    def stages(self) -> list[str]:
        """The model's stages whose output is one spatial tensor (checked with a probe forward pass)."""
        if self._stages is None:
            with self._lock:
                named = self._named()
                found = _stages(named, self.task, (self.channels, *self.size))
                self._stages = [display_name(named, n)
                                for n in _usable(named, found, self.channels, self.size, self.output)]
        return self._stages

    def resolve_layer(self, layer: Any) -> str:
        """A layer name (as users type it: ``layer4``, not the wrapper's ``net.layer4``, which is
        accepted too) from a name or a negative stage index (-1 = the last stage)."""
        if isinstance(layer, bool) or not isinstance(layer, (int, str)):
            raise ApiError(f"a layer is a name or a negative stage index, not {type(layer).__name__}")
        if isinstance(layer, int):
            stages = self.stages()
            if layer >= 0 or -layer > len(stages):
                raise ApiError(f"stage index {layer} is out of range: {self.id} has stages -1..-{len(stages)} "
                               f"({', '.join(stages)})")
            return stages[layer]
        named = self._named()
        if self._module_names is None:             # every accepted spelling -> the name shown
            self._module_names = {}
            for name, _ in named.named_modules():
                if name:
                    shown = display_name(named, name)
                    self._module_names[name] = self._module_names[shown] = shown
        if layer not in self._module_names:
            from netgaze.core.layers import _unknown_layer_message, layer_names
            raise ApiError(_unknown_layer_message(layer, [display_name(named, n) for n in layer_names(named)]))
        return self._module_names[layer]

    # --- pictures --------------------------------------------------------------
    def splits(self) -> list[str]:
        if self.run is None:
            return ["test"]
        kept = self.run.config.get("data_splits")   # a RunWriter's run keeps only the splits it was given
        return [s for s in SPLITS if s in kept] if isinstance(kept, dict) else list(SPLITS)

    def dataset(self, split: str):
        if split not in self.splits():
            raise NotFound(f"{self.id} has no split {split!r}; it has {', '.join(self.splits())}")
        with self._lock:
            if split not in self._datasets:
                if self.run is not None:
                    self._datasets[split] = self.run.dataset(split)
                elif self.pictures_folder is not None:
                    from netgaze.serve.uploads import FolderPictures
                    self._datasets[split] = FolderPictures(self.pictures_folder, self.size[0], self.channels)
                else:
                    raise NotFound(f"{self.id} has no pictures (start the server with --images DIR); upload one")
            return self._datasets[split]

    def picture(self, split: str, index: Any) -> Picture:
        """One picture of a split (kept in a memory-bounded cache: datasets may render or decode
        their pictures on every read, and this runs on the event loop's thread)."""
        dataset = self.dataset(split)
        if isinstance(index, bool) or not isinstance(index, int):
            raise ApiError(f"a picture index is an integer, got {type(index).__name__}")
        if not 0 <= index < len(dataset):
            raise NotFound(f"{self.id} {split} has pictures 0..{len(dataset) - 1}, not {index}")
        return self._pictures.get_or_make((split, index), lambda: self._read_picture(dataset, index))

    def has_picture(self, split: Any, index: Any) -> bool:
        return (split, index) in self._pictures

    def _read_picture(self, dataset: Any, index: int) -> Picture:
        item = dataset[index]
        x, second = item[0], item[1]
        if self.task == "segment":
            return Picture(x, None, torch.as_tensor(second))
        label = int(second) if int(second) >= 0 else None
        mask = torch.as_tensor(dataset.mask(index)) if callable(getattr(dataset, "mask", None)) else None
        return Picture(x, label, mask)

    def facts(self) -> dict[str, Any]:
        """What ``GET /api/runs`` says about this source."""
        return {"id": self.id, "kind": self.kind, "task": self.task, "description": self.description,
                "classes": self.classes, "layers": self.layers(), "stages": self.stages(),
                "epochs": self.epochs, "size": list(self.size), "channels": self.channels,
                "splits": {s: _safe_len(self, s) for s in self.splits()},
                "has_artifact_embedding": self.embedding_artifact() is not None,
                "has_strategies": self.strategies_artifact() is not None, "conditional": self.conditional,
                "has_concepts": self.concepts_artifact() is not None}

    def embedding_artifact(self) -> Path | None:
        """``artifacts/embed/embedding.npz`` with links resolved, when it is a regular file inside
        the run folder (the report's containment rule); else None."""
        if self.run is None:
            return None
        return inside_run(Path(self.run.path), Path(self.run.artifacts) / "embed" / "embedding.npz")

    def strategies_artifact(self) -> Path | None:
        """``artifacts/strategies/strategies.json`` with links resolved, when it is a regular file
        inside the run folder (the report's containment rule); else None."""
        if self.run is None:
            return None
        return inside_run(Path(self.run.path), Path(self.run.artifacts) / "strategies" / "strategies.json")

    def concepts_artifact(self) -> Path | None:
        """``artifacts/concepts/concepts.json`` (``netgaze study concepts``), contained like the strategies."""
        if self.run is None:
            return None
        return inside_run(Path(self.run.path), Path(self.run.artifacts) / "concepts" / "concepts.json")


def _safe_len(source: Source, split: str) -> int:
    try:
        return len(source.dataset(split))
    except ApiError:
        return 0


def _stages(model: nn.Module, task: str, input_shape: tuple[int, int, int]) -> list[str]:
    from netgaze.studies.across_layers import stage_names

    if task == "reconstruct":
        from netgaze.studies.area import encoder_stages
        inner = getattr(model, "vae", model)
        names = encoder_stages(inner)
        if names:
            return [f"vae.{n}" if inner is not model else n for n in names]
    return stage_names(model, input_shape)


def _usable(model: nn.Module, names: list[str], channels: int, size: tuple[int, int], output: Any = None,
            depth: int = 0) -> list[str]:
    """The names among ``names`` whose output is a map: [B, C, h, w] (either channel order) or
    a transformer's tokens on a grid (``netgaze.core.layouts`` reads both). A container that returns
    something else (an FCN encoder's list of taps, a torchvision backbone's dict) is replaced by
    its own stages; the last conv layer is the answer when nothing else is."""
    from netgaze.core.recorder import Recorder, RecorderError
    from netgaze.studies.across_layers import stage_names

    x = torch.zeros(1, channels, *size)
    kept: list[str] = []
    for name in names:
        try:
            with Recorder(model, [name], grads=False, output=output) as rec:
                rec.forward(x)
                if layouts.candidates(tuple(rec.activations[name].shape), size):
                    kept.append(name)
        except RecorderError:
            if depth < 2:
                try:
                    inner = [f"{name}.{n}" for n in stage_names(model.get_submodule(name))]
                except (LayerError, AttributeError):
                    inner = []
                kept += _usable(model, inner, channels, size, output, depth + 1)
    if depth == 0 and not kept:
        kept = conv_layer_names(model)[-1:]
    return kept


# --- building sources ----------------------------------------------------------------
def unique_id(name: str, taken: Sequence[str]) -> str:
    base = ID_RE.sub("-", name).strip("-.") or "run"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
