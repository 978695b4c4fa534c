"""Run folders: what a training run leaves behind, written so that a crash corrupts nothing.

Layout::

    runs/NAME/
      run.json                          resolved config: task, data, model, model_args, ...
      history.jsonl                     one JSON object per finished epoch
      checkpoints/epoch-0007.safetensors  model state dict (epoch 0 = the initial weights)
      checkpoints/epoch-0007.optim.pt     optimizer / grad-scaler state (torch.save, weights_only)
      checkpoints/epoch-0007.json         metadata; written last, so its presence marks the
                                          checkpoint complete
      curves.png  log.txt  artifacts/   tensorboard/ (optional)

Every file is written to a hidden temporary file in the same folder, flushed, fsync'ed and
renamed over the target (``os.replace``), so a reader sees the old or the new file, never a
half-written one. ``history.jsonl`` is rewritten whole (atomically) each epoch from the
checkpoints' metadata, so it cannot hold a torn line or an epoch twice. Leftover temporary
files of a killed trainer are removed when the folder is opened for writing, by their exact
names only (``.run.json.tmp-PID``, ``checkpoints/.epoch-0007.json.tmp-PID``, ...): nothing
else in the folder is touched. One process owns a folder while it trains
(``netgaze.lab.runlock.RunLock``).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn as nn
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from netgaze._util.atomic import TMP_MARK, atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: F401
from netgaze._util.run_json import check_config, check_field, is_count, is_names, read_json
from netgaze.errors import RunError, one_line, state_dict_mismatch
from netgaze.lab.models import build_from_spec, builder_parameters
from netgaze.lab.models.model_error import ModelError
from netgaze.lab.models.trust import Trust, effective_trust
from netgaze.lab.run_metric import pick_metric

CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})\.json$")
# Builder arguments that only matter when a model is first built (pretrained weights);
# a run folder rebuilds with these values, then loads its own checkpoint.
REBUILD_OVERRIDES = {"weights": None, "allow_random_init": True}


class DamagedCheckpointError(RunError):
    """A checkpoint whose weights do not match their checksum (or do not parse)."""


# ---------------------------------------------------------------- partial files
# The files a trainer writes atomically, per sub-folder of the run: (folder, file-name pattern).
TRAINER_FILES = (("", r"run\.json|history\.jsonl|curves\.png|data\.safetensors"),
                 ("checkpoints", r"epoch-\d{4,}\.(?:safetensors|optim\.pt|json)"),
                 ("artifacts", r"predictions\.png"))


def partial_files(folder: str | os.PathLike) -> list[Path]:
    """Temporary files of a killed trainer in ``folder``, matched by exact name (see ``TRAINER_FILES``)."""
    found = []
    for sub, names in TRAINER_FILES:
        pattern = re.compile(rf"^\.(?:{names}){re.escape(TMP_MARK)}\d+$")
        where = Path(folder) / sub
        if where.is_dir():
            found += sorted(p for p in where.iterdir() if pattern.match(p.name) and p.is_file()
                            and not p.is_symlink())
    return found


def remove_partial_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed trainer left in run folder ``folder``; return them.

    Only the trainer's own temporary names are removed (``.run.json.tmp-123``,
    ``checkpoints/.epoch-0003.safetensors.tmp-123``, ...); a user's files, hidden or not,
    anywhere in the folder stay. Call it while holding the folder's ``RunLock``: another
    process's temporary file is a write in progress.
    """
    found = partial_files(folder)
    for p in found:
        p.unlink(missing_ok=True)
    return found


def state_dict_to_cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies that share no memory (safetensors refuses shared tensors)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


# ---------------------------------------------------------------- the folder
class RunFolder:
    """Reads and writes one run folder; every write is atomic.

    Args:
        path: the folder (created on the first write).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.checkpoint_dir = self.path / "checkpoints"
        self.artifacts = self.path / "artifacts"
        self.config_path = self.path / "run.json"
        self.history_path = self.path / "history.jsonl"
        self.curves_path = self.path / "curves.png"
        self.log_path = self.path / "log.txt"

    def lock(self):
        """A ``RunLock`` on this folder (not yet acquired)."""
        from netgaze.lab.runlock import RunLock
        return RunLock(self.path)

    def prepare(self) -> list[Path]:
        """Create the folders and remove temporary files of a killed trainer (hold ``lock()`` first)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return remove_partial_files(self.path)

    # config ---------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict[str, Any]:
        if not self.config_path.is_file():
            raise RunError(f"{self.path} is not a run folder: no run.json")
        config = read_json(self.config_path)
        if not isinstance(config, dict) or not isinstance(config.get("model"), str):
            raise RunError(f"{self.config_path} is not a netgaze run configuration (no model name)")
        check_config(config, self.config_path)
        return config

    # checkpoints ------------------------------------------------------------
    def checkpoint_paths(self, epoch: int) -> tuple[Path, Path, Path]:
        """(weights, optimizer state, metadata) paths of one epoch."""
        stem = self.checkpoint_dir / f"epoch-{epoch:04d}"
        return stem.with_suffix(".safetensors"), Path(f"{stem}.optim.pt"), stem.with_suffix(".json")

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints as ``(epoch, weights path)``, in epoch order."""
        found = []
        if self.checkpoint_dir.is_dir():
            for meta in self.checkpoint_dir.iterdir():
                match = CHECKPOINT_RE.match(meta.name)
                if match:
                    weights = self.checkpoint_paths(int(match.group(1)))[0]
                    if weights.is_file():
                        found.append((int(match.group(1)), weights))
        return sorted(found)

    def save_epoch(self, epoch: int, model: nn.Module, metrics: dict[str, float],
                   training_state: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write the checkpoint of one epoch: weights, training state, then metadata.

        Args:
            epoch: epoch number (0 = before training).
            model: the unwrapped model (not the DDP wrapper).
            metrics: this epoch's history record (saved in the metadata too, which is
                where ``history.jsonl`` is rebuilt from on resume).
            training_state: anything ``torch.load(weights_only=True)`` can read back
                (optimizer and grad-scaler state dicts), for resume.
            extra: more JSON metadata (class names, model name and arguments).

        Returns:
            The metadata path; once it exists the checkpoint is complete.
        """
        return self.save_state(epoch, state_dict_to_cpu(model.state_dict()), metrics, training_state or {}, extra)

    def save_state(self, epoch: int, state: dict[str, torch.Tensor], metrics: dict[str, Any],
                   training_state: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
        """``save_epoch`` for a state dict already copied to the CPU (``RunWriter`` copies it on the
        training thread and writes it on its own): weights, training state, metadata last.
        ``training_state`` None writes no training-state file (nothing to resume from but the
        weights; ``load_training_state`` then gives ``{}``)."""
        weights_path, state_path, meta_path = self.checkpoint_paths(epoch)
        weights = save_safetensors(state)
        atomic_write_bytes(weights_path, weights)
        if training_state is not None:
            buffer = io.BytesIO()
            torch.save(training_state, buffer)
            atomic_write_bytes(state_path, buffer.getvalue())
        meta = {"epoch": epoch, "metrics": metrics, **(extra or {}),
                "weights": weights_path.name, "weights_sha256": hashlib.sha256(weights).hexdigest(),
                "training_state": state_path.name if training_state is not None else None,
                "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write_json(meta_path, meta)
        return meta_path

    def read_metadata(self, epoch: int) -> dict[str, Any]:
        path = self.checkpoint_paths(epoch)[2]
        meta = read_json(path)
        if not isinstance(meta, dict):
            raise RunError(f"{path} is not checkpoint metadata (a JSON object)")
        check_field(meta, "epoch", is_count, "a whole number", path)
        check_field(meta, "classes", is_names, "a list of class names", path)
        check_field(meta, "metrics", lambda v: isinstance(v, dict), "a JSON object", path)
        return meta

    def load_weights(self, epoch: int, verify: bool = True) -> dict[str, torch.Tensor]:
        """The model state dict of one epoch (CPU tensors), checked against its SHA-256.

        Raises:
            DamagedCheckpointError: the file does not match the checksum its metadata
                recorded when it was written, or is not a safetensors file; the message
                names the newest earlier checkpoint that is intact.
        """
        weights_path = self.checkpoint_paths(epoch)[0]
        data = weights_path.read_bytes()
        problem = None
        if verify:
            expected = self.read_metadata(epoch).get("weights_sha256")
            if not isinstance(expected, str) or not expected:   # every checkpoint netgaze writes records one
                problem = "has no checksum in its metadata (weights_sha256), so it cannot be checked"
            elif hashlib.sha256(data).hexdigest() != expected:
                problem = "does not match its metadata's checksum"
        if problem is None:
            try:
                return load_safetensors(data)
            except Exception as err:  # a truncated or foreign file
                problem = f"is not a readable safetensors file ({str(err).splitlines()[0][:80]})"
        raise DamagedCheckpointError(f"{weights_path} {problem}: the checkpoint is damaged; {self._fallback(epoch)}")

    def checkpoint_is_intact(self, epoch: int) -> bool:
        """Whether a checkpoint's weights match their recorded checksum and parse."""
        try:
            self.load_weights(epoch)
        except (DamagedCheckpointError, OSError, ValueError):
            return False
        return True

    def _fallback(self, epoch: int) -> str:
        """What to do about a damaged checkpoint: the newest intact earlier one, if any."""
        earlier = [e for e, _ in self.checkpoints() if e < epoch]
        for previous in reversed(earlier):
            if self.checkpoint_is_intact(previous):
                meta = self.checkpoint_paths(epoch)[2].relative_to(self.path)
                return (f"the previous checkpoint, epoch {previous}, is intact: load it with epoch={previous} "
                        f"(--epoch {previous}), or remove {meta} to make it the last one (--resume continues from it)")
        return "no earlier checkpoint is intact; train the run again"

    def load_training_state(self, epoch: int) -> dict[str, Any]:
        path = self.checkpoint_paths(epoch)[1]
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else {}

    # history ----------------------------------------------------------------
    def write_history(self, records: Iterable[dict[str, Any]]) -> None:
        """Rewrite ``history.jsonl`` whole, one JSON object per line, atomically."""
        atomic_write_text(self.history_path, "".join(json.dumps(r) + "\n" for r in records))

    def read_history(self) -> list[dict[str, Any]]:
        """History records; a torn last line (a non-atomic writer's crash) is ignored."""
        if not self.history_path.is_file():
            return []
        records = []
        lines = self.history_path.read_text().splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break
                raise RunError(f"{self.history_path}: line {i + 1} is not JSON")
            except RecursionError:
                raise RunError(f"{self.history_path}: line {i + 1} is JSON nested too deep") from None
            except ValueError as err:  # an integer past Python's int-string limit
                raise RunError(f"{self.history_path}: line {i + 1} is not usable JSON ({one_line(err)[:80]})") from None
            if not isinstance(record, dict):
                raise RunError(f"{self.history_path}: line {i + 1} is not a JSON object")
            records.append(record)
        return records

    def history_from_checkpoints(self, last_epoch: int) -> list[dict[str, Any]]:
        """The history up to ``last_epoch``, rebuilt from the checkpoints' metadata."""
        return [self.read_metadata(e)["metrics"] for e, _ in self.checkpoints() if 0 < e <= last_epoch]

    # log --------------------------------------------------------------------
    def log(self, message: str) -> None:
        """Append one time-stamped line to ``log.txt`` (a torn last line is harmless)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


# ---------------------------------------------------------------- loading a run
def rebuild_model(name: str, args: dict[str, Any], trust_code: Trust = False) -> nn.Module:
    """Build a model from ``run.json``'s name and arguments, without any pretrained weights file.

    ``name`` is any form ``netgaze.lab.models.build_from_spec`` takes; a
    ``package.module:callable`` is imported only when ``trust_code`` (or an enclosing
    ``trusting_code`` block) allows its module.
    """
    if not isinstance(name, str):
        raise RunError(f"run.json names no model (model: {name!r})")
    try:
        accepted = set(builder_parameters(name))
    except ModelError:  # not a registered name: the user's own import path, or an unknown name
        return build_from_spec(name, args, trust_code)
    overrides = {k: v for k, v in REBUILD_OVERRIDES.items() if k in accepted}
    return build_from_spec(name, {**args, **overrides}, trust_code)


@dataclass
class Run:
    """A trained run, loaded from its folder by ``load_run``.

    Attributes:
        path: the run folder.
        config: ``run.json`` (task, data, model, model_args, ...).
        model: the model of ``epoch``, in eval mode, on the CPU.
        epoch: the checkpoint's epoch.
        classes: class names (empty for tasks without classes).
        history: one dict per finished epoch.
        checkpoints: ``(epoch, path)`` of every complete checkpoint.
        artifacts: folder for what studies write about this run.
        data: a dataset spec that replaces ``run.json``'s (the data moved); None uses the
            stored one, found relative to the run folder (``netgaze.lab.datapaths``).
        trust_code: what ``load_run`` was allowed to import, its argument joined with the
            enclosing ``trusting_code`` blocks (``model_at`` and the explorer rebuild with it).
    """

    path: Path
    config: dict[str, Any]
    model: nn.Module
    epoch: int
    classes: list[str]
    history: list[dict[str, Any]]
    checkpoints: list[tuple[int, Path]]
    artifacts: Path
    folder: RunFolder = field(repr=False)
    data: str | None = None
    trust_code: Any = field(default=False, repr=False)

    def model_at(self, epoch: int) -> nn.Module:
        """A fresh model with the weights of another epoch (eval mode), e.g. for a timeline."""
        return _load_model(self.folder, self.config, epoch, self.trust_code)

    @property
    def metric(self) -> str | None:
        """The history metric the explorer and the studies plot (``pick_metric``)."""
        return pick_metric(self.config, self.history)

    def dataset(self, split: str = "test"):
        """The run's dataset split, without augmentation: classification/reconstruction sets
        from ``netgaze.lab.datasets.load_dataset``, segmentation sets (image, mask) from
        ``netgaze.lab.segdata.load_segmentation``."""
        spec, options = self.data_spec(), self.data_options()
        if self.task == "segment":
            from netgaze.lab.segdata import load_segmentation
            return load_segmentation(spec, split, **options)
        from netgaze.lab.datasets import load_dataset
        return load_dataset(spec, split, **options)

    def data_spec(self) -> str:
        """The dataset spec that opens from here: ``data`` if given, else ``run.json``'s, resolved."""
        if self.data is not None:
            return self.data
        from netgaze.lab.datapaths import resolve_data
        return resolve_data(self.config, self.path)

    def data_options(self) -> dict[str, Any]:
        """``run.json``'s dataset options; with a ``data`` override of another kind, only ``size``."""
        from netgaze.lab.datapaths import resolve_options, same_kind
        options = resolve_options(self.config.get("data_options", {}) or {}, self.path)
        if self.data is not None and not same_kind(self.data, str(self.config.get("data", ""))):
            options = {k: v for k, v in options.items() if k == "size"}
        return options

    @property
    def task(self) -> str:
        return self.config.get("task", "classify")


def _load_model(folder: RunFolder, config: dict[str, Any], epoch: int, trust_code: Trust = False) -> nn.Module:
    args = config.get("model_args", {})
    if not isinstance(args, dict):
        raise RunError(f"{folder.config_path}: model_args must be a JSON object")
    try:
        model = rebuild_model(config["model"], args, trust_code)
    except TypeError as err:  # run.json names an argument the builder does not take
        raise RunError(f"{folder.config_path}: cannot rebuild {config['model']} ({one_line(err)[:160]})") from None
    weights_path = folder.checkpoint_paths(epoch)[0]
    try:
        model.load_state_dict(folder.load_weights(epoch))
    except RuntimeError as err:  # missing, unexpected or differently shaped tensors
        raise RunError(f"checkpoint {weights_path} does not fit the model of run.json "
                       f"({state_dict_mismatch(err)})") from None
    return model.eval()


def check_finite_weights(run: "Run") -> None:
    """``RunError`` naming the checkpoint when the run's model holds NaN or infinite weights (a
    diverged training): every explanation and statistic of it would be NaN or meaningless."""
    bad = [name for name, t in run.model.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        earlier = [e for e, _ in run.checkpoints if e < run.epoch]
        hint = f"; an earlier epoch may be intact (--epoch {earlier[-1]})" if earlier else ""
        raise RunError(f"{run.folder.checkpoint_paths(run.epoch)[0]} holds NaN or infinite weights ({bad[0]}{more}): "
                       f"the training diverged, nothing meaningful can be computed from it{hint}")


def load_run(path: str | os.PathLike, epoch: int | None = None, data: str | None = None,
             trust_code: Trust = False) -> Run:
    """Load a run folder: its config, history and the model of one checkpoint.

    Args:
        path: the run folder (``runs/NAME``).
        epoch: which checkpoint; None takes the last one.
        data: where the run's data is now (a dataset spec such as ``"folder:/new/place"``),
            when it moved; None finds it from ``run.json`` (see ``netgaze.lab.datapaths``).
        trust_code: a run whose model is the user's own ``package.module:callable`` imports
            that module, which runs its code; a run folder is untrusted input, so this is
            refused unless ``trust_code`` is True or names the module (or its package).

    Raises:
        RunError: not a run folder, no checkpoint, or no checkpoint of ``epoch``
            (the message lists the available epochs).
        UntrustedCodeError: the run names code to import and ``trust_code`` does not allow it.
    """
    folder = RunFolder(path)
    config = folder.read_config()
    checkpoints = folder.checkpoints()
    if not checkpoints:
        raise RunError(f"{folder.path} has no complete checkpoint yet")
    epochs = [e for e, _ in checkpoints]
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise RunError(f"{folder.path} has no checkpoint of epoch {epoch}; it has epochs {epochs}")
    model = _load_model(folder, config, epoch, trust_code)
    meta = folder.read_metadata(epoch)
    return Run(path=folder.path, config=config, model=model, epoch=epoch,
               classes=list(meta.get("classes", config.get("classes", []))), history=folder.read_history(),
               checkpoints=checkpoints, artifacts=folder.artifacts, folder=folder, data=data,
               trust_code=effective_trust(trust_code))
