"""``import_checkpoints``: a run folder from a training that already happened.

    ng.import_checkpoints("runs/mine", "checkpoints/", build="mypkg.models:SmallCNN",
                          data={"test": test_set})

Each file becomes one epoch of the run (written by ``RunWriter``, so the folder is the lab's
format). Read without running code:

* state-dict files (``.pt``, ``.pth`` read with ``torch.load(weights_only=True)``,
  ``.safetensors``); a dict holding ``"state_dict"`` or ``"model"`` is opened. The epoch is the
  last number in the file name (``epoch_3.pt`` -> 3), else the file's place in the list (1, 2, ...).
* Lightning ``.ckpt`` files: ``"state_dict"`` with the LightningModule's attribute prefix
  (``model.``) removed, found by matching the build's own names; the epoch is Lightning's
  ``epoch`` + 1 (Lightning's ``epoch=0`` is saved after the first epoch).
* Hugging Face ``checkpoint-*`` folders (``model.safetensors`` or ``pytorch_model.bin``); the
  epoch is ``trainer_state.json``'s ``epoch`` rounded, and the metrics of that epoch come from
  its ``log_history`` (``eval_accuracy``, ``eval_loss``, ``loss``, ...).

``metrics={epoch: {...}}`` adds (or replaces) any epoch's metrics.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from netgaze.errors import RunError, UserError, one_line, state_dict_mismatch
from netgaze.lab.models import ModelError, build_from_spec
from netgaze.lab.models.import_path import is_import_path
from netgaze.lab.run_data import DEFAULT_MAX_DATA_MB
from netgaze.lab.run_writer import RunWriter

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class CheckpointImportError(UserError):
    """A checkpoint file that cannot be read as weights, or files that do not make one run."""


def import_checkpoints(path: str | os.PathLike, files: str | os.PathLike | Sequence[str | os.PathLike], *,
                       build: str, build_args: Mapping[str, Any] | None = None, data: Any = None,
                       classes: list[str] | None = None, task: str = "classify", metric: str | None = None,
                       metrics: Mapping[int, Mapping[str, Any]] | None = None,
                       data_options: Mapping[str, Any] | None = None,
                       max_data_mb: float = DEFAULT_MAX_DATA_MB) -> Path:
    """Write run folder ``path`` from existing checkpoints; returns the folder.

    Args:
        path: the run folder to write (new).
        files: a folder (its ``.pt``/``.pth``/``.safetensors``/``.ckpt`` files and
            ``checkpoint-*`` folders) or a list of such files and folders.
        build: as for ``RunWriter``.
        build_args: as for ``RunWriter``.
        data: as for ``RunWriter``.
        classes: as for ``RunWriter``.
        task: as for ``RunWriter``.
        metric: as for ``RunWriter``.
        data_options: as for ``RunWriter``.
        max_data_mb: as for ``RunWriter``.
        metrics: ``{epoch: {"val_acc": 0.9, ...}}`` for epochs whose files carry none.

    Raises:
        CheckpointImportError: no checkpoint found, an unreadable file, two files of one epoch.
        ModelError: a checkpoint whose weights do not fit ``build`` (the message names the file).
    """
    found = _checkpoint_files(files)
    args = dict(build_args or {})
    trust = build.partition(":")[0] if isinstance(build, str) and is_import_path(build) else False
    model = build_from_spec(build, args, trust_code=trust)
    expected = set(model.state_dict())
    epochs: dict[int, tuple[Path, dict[str, torch.Tensor], dict[str, Any]]] = {}
    for place, file in enumerate(found, start=1):
        epoch, state, record = _read_checkpoint(file, place, expected)
        _load_into(model, state, file, build)     # every file fits before anything is written
        if epoch in epochs:
            other = epochs[epoch]
            if _same(other[1], state):
                continue   # Lightning's last.ckpt beside its epoch file
            raise CheckpointImportError(f"{other[0]} and {file} are both epoch {epoch}; import them into separate runs")
        epochs[epoch] = (file, state, record)
    for epoch, extra in (metrics or {}).items():
        if epoch not in epochs:
            raise CheckpointImportError(f"metrics given for epoch {epoch}, but the checkpoints are epochs {sorted(epochs)}")
        epochs[epoch][2].update(extra)
    with RunWriter(path, model, build, build_args=args, data=data, classes=classes, task=task, metric=metric,
                   data_options=data_options, max_data_mb=max_data_mb) as writer:
        for epoch in sorted(epochs):
            file, state, record = epochs[epoch]
            _load_into(model, state, file, build)
            writer.save(epoch, model, record)   # copies the weights now: the next load cannot change them
    return Path(path)


def _load_into(model: torch.nn.Module, state: dict[str, torch.Tensor], file: Path, build: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelError(f"{file} does not fit build={build!r} ({state_dict_mismatch(err)})") from None


def _checkpoint_files(files: Any) -> list[Path]:
    if isinstance(files, (str, os.PathLike)):
        folder = Path(files)
        if folder.is_dir() and not _is_hf_checkpoint(folder):
            found = [p for p in folder.iterdir() if (p.is_file() and p.suffix in WEIGHT_SUFFIXES)
                     or (p.is_dir() and p.name.startswith("checkpoint-") and _is_hf_checkpoint(p))]
            if not found:
                raise CheckpointImportError(f"{folder} holds no checkpoint (.pt, .pth, .safetensors, .ckpt files or "
                                            "checkpoint-* folders)")
            return sorted(found, key=_natural_key)
        files = [files]
    found = [Path(f) for f in files]
    if not found:
        raise CheckpointImportError("no checkpoint files given")
    for file in found:
        if not file.exists():
            raise CheckpointImportError(f"no such checkpoint: {file}")
    return found


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _is_hf_checkpoint(folder: Path) -> bool:
    return any((folder / name).is_file() for name in HF_WEIGHTS)


def _read_checkpoint(file: Path, place: int, expected: set[str]
                     ) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
    """``(epoch, state dict fitted to the build's names, metrics)`` of one file or folder."""
    if file.is_dir():
        if not _is_hf_checkpoint(file):
            raise CheckpointImportError(f"{file} is a folder without {' or '.join(HF_WEIGHTS)}")
        weights = next(file / name for name in HF_WEIGHTS if (file / name).is_file())
        epoch, record = _hf_epoch(file, place)
        return epoch, fit_names(_load(weights), expected, weights), record
    raw = _load(file)
    if file.suffix == ".ckpt" or (isinstance(raw, dict) and "pytorch-lightning_version" in raw):
        if not isinstance(raw, dict) or not isinstance(raw.get("state_dict"), dict):
            raise CheckpointImportError(f"{file} is not a Lightning checkpoint (no 'state_dict')")
        epoch = raw.get("epoch")
        epoch = int(epoch) + 1 if isinstance(epoch, int) and not isinstance(epoch, bool) else _epoch_from_name(file, place)
        return epoch, fit_names(_tensors(raw["state_dict"], file), expected, file), {}
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(raw, dict) and isinstance(raw.get(key), dict):
            raw = raw[key]
            break
    return _epoch_from_name(file, place), fit_names(_tensors(raw, file), expected, file), {}


def _load(file: Path) -> Any:
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(file))
        return torch.load(str(file), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - one line for the user
        text = str(err)
        reason = ("it holds objects other than tensors, which netgaze does not unpickle (weights_only=True): save "
                  "model.state_dict() instead of the model" if "Weights only load failed" in text
                  else f"not a PyTorch or safetensors weights file ({one_line(text)[:100]})")
        raise CheckpointImportError(f"cannot read {file}: {reason}") from None


def _tensors(state: Any, file: Path) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointImportError(f"{file} does not hold a state dict of tensors")
    return state


def _epoch_from_name(file: Path, place: int) -> int:
    numbers = re.findall(r"\d+", file.stem)
    return int(numbers[-1]) if numbers else place


def _hf_epoch(folder: Path, place: int) -> tuple[int, dict[str, Any]]:
    """Epoch and metrics of a Hugging Face ``checkpoint-*`` folder, from ``trainer_state.json``."""
    state_file = folder / "trainer_state.json"
    if not state_file.is_file():
        return _epoch_from_name(folder, place), {}
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointImportError(f"{state_file} is not JSON") from None
    raw_epoch = state.get("epoch")
    if not isinstance(raw_epoch, (int, float)) or isinstance(raw_epoch, bool):
        return _epoch_from_name(folder, place), {}
    epoch = int(round(raw_epoch))
    record: dict[str, Any] = {}
    for entry in state.get("log_history", []) or []:
        if isinstance(entry, dict) and isinstance(entry.get("epoch"), (int, float)) \
                and int(round(entry["epoch"])) == epoch:
            record.update({k: v for k, v in entry.items() if k not in ("epoch", "step")
                           and isinstance(v, (int, float)) and not isinstance(v, bool)})
    return epoch, record


def fit_names(state: dict[str, torch.Tensor], expected: set[str], file: Path) -> dict[str, torch.Tensor]:
    """The state dict with the wrapper's prefix removed (``model.`` of a LightningModule), so
    that its names are the build's; other entries of the wrapper (a loss's buffers) are left out."""
    if set(state) == expected:
        return state
    probe = sorted(expected)[0] if expected else ""
    prefixes = sorted({k[:-len(probe)] for k in state if k.endswith("." + probe)}, key=len)
    for prefix in prefixes:
        inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if set(inner) == expected:
            return inner
    return state   # load_state_dict then names what is missing or unexpected


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


__all__ = ["import_checkpoints", "CheckpointImportError", "fit_names"]
