"""``RunWriter``: a run folder from the user's own training loop, in three lines.

    writer = ng.RunWriter("runs/mine", model=model, build="mypkg.models:SmallCNN",
                          build_args={"width": 16}, data={"test": test_set})
    for epoch in range(1, epochs + 1):
        ...                                                 # the user's own loop
        writer.save(epoch, model, metrics={"val_acc": acc, "train_loss": loss})
    writer.close()                                          # or: with ng.RunWriter(...) as writer:

The folder is the one the lab's trainer writes (``netgaze.lab.runs``: ``run.json``,
``history.jsonl``, ``checkpoints/epoch-NNNN.*`` with their SHA-256, every file atomic), so
``ng.load_run``, every ``netgaze`` command that takes a run and the explorer work on it. The
model is rebuilt in other processes from ``build`` (see ``netgaze.lab.models.build_from_spec``);
a build by import path is imported there only with ``trust_code=True`` / ``--trust-code``.

``save`` copies the weights to the CPU on the calling thread and writes them on a
background thread, so a checkpoint costs the training loop only that copy.
"""
from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from netgaze.errors import ArgumentError, RunError, stack_level
from netgaze.lab.datapaths import stored_config
from netgaze.lab.models import ModelError, build_from_spec
from netgaze.lab.models.import_path import is_import_path
from netgaze.lab.run_data import DATA_FILE, DEFAULT_MAX_DATA_MB, keep_splits, referenced
from netgaze.lab.run_metric import pick_metric
from netgaze.lab.runs import RunFolder, atomic_write_bytes, state_dict_to_cpu

TASKS = ("classify", "reconstruct", "segment")
MAX_PENDING = 2   # checkpoints waiting to be written before ``save`` waits (bounds memory)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(model, "_orig_mod", None) or (getattr(model, "module", None)
                                                      if isinstance(model, (nn.parallel.DistributedDataParallel,
                                                                            nn.DataParallel)) else None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def default_build(model: nn.Module) -> str:
    """``module:Class`` of the model's own class; refused for a class defined in the running script."""
    cls = type(model)
    if cls.__module__ == "__main__":
        raise ModelError(f"{cls.__name__} is defined in the script you run (__main__), which other processes cannot "
                         f"import: move it into a module (e.g. mymodels.py) and pass build='mymodels:{cls.__name__}'")
    return f"{cls.__module__}:{cls.__qualname__}"


def check_build(build: str, build_args: dict[str, Any], model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Build ``build`` once (its module is trusted: the caller named it) and check that the
    trained model's weights fit it; returns the expected ``{name: shape}``.

    A bare torchvision or timm network (the user's own, layers at the top) does not fit what
    ``torchvision:NAME`` makes by default (netgaze's wrapper, normalisation inside, layers under
    ``net.``): then ``normalize: False`` is added to ``build_args`` (the run records it), so the
    run explains exactly the user's network, on the inputs it was trained on.
    """
    if build.startswith("__main__:"):
        raise ModelError(f"build {build!r} names the script you run (__main__), which other processes cannot "
                         "import: move the class into a module and name that module")
    trust = build.partition(":")[0] if is_import_path(build) else False
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    reference = build_from_spec(build, build_args, trust_code=trust)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    bare = build.startswith(("torchvision:", "timm:")) and "normalize" not in build_args and \
        not any(k.startswith("net.") for k in got) and all(k.startswith(("net.", "normalize.")) for k in expected)
    if bare:
        build_args["normalize"] = False
        expected = {k: tuple(v.shape) for k, v in build_from_spec(build, build_args).state_dict().items()}
    check_fit(build, expected, got)
    return expected


def check_fit(build: str, expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> None:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    shapes = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or extra or shapes:
        parts = ([f"{len(missing)} missing such as {missing[0]}"] if missing else []) + \
                ([f"{len(extra)} unexpected such as {extra[0]}"] if extra else []) + \
                ([f"{shapes[0]} is {list(got[shapes[0]])} but the build makes {list(expected[shapes[0]])}"]
                 if shapes else [])
        raise ModelError(f"the model's weights do not fit what build={build!r} makes ({'; '.join(parts)}); "
                         "pass the build and build_args that construct this model")


def _number(key: str, value: Any) -> float | int:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ArgumentError(f"metric {key!r} is a tensor of {value.numel()} values; give one number")
        value = value.item()
    elif hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ArgumentError(f"metric {key!r} must be a number, got {type(value).__name__}")
    return value


class RunWriter:
    """Writes a run folder from any training loop: ``save`` once per epoch, ``close`` at the end.

    Args:
        path: the run folder (created; one writer owns it while open).
        model: the model being trained (its weights are checked against ``build``).
        build: how other processes rebuild the model: ``torchvision:NAME``, ``timm:NAME``, a
            lab model name, a name an installed package registers (``netgaze.models``
            entry points) or your own ``package.module:callable`` (a class or function that
            is importable from other processes, not defined in your script). None takes
            ``module:Class`` of the model's class, built without arguments.
        build_args: keyword arguments of ``build`` (JSON: numbers, strings, lists, dicts).
        data: ``{"test": dataset, "train": ..., ...}`` kept in the run as tensors, exactly
            (``data.safetensors``; items ``(picture [C, H, W], label)``, a ``Subset`` keeps a
            sample), or a dataset spec referenced by path (``"folder:PATH"``, ``"digits"``).
        classes: class names; None takes the datasets' ``.classes`` or the label numbers.
        task: ``"classify"`` (also ``"reconstruct"``, ``"segment"`` for the lab's tasks).
        metric: the history key the explorer and the studies plot; None picks it by
            ``netgaze.lab.runs.pick_metric`` (the first of test_acc, val_acc, ... found).
        data_options: options of a referenced dataset spec (e.g. ``{"size": 224}``).
        max_data_mb: the most data kept in the run; more is refused with a message that
            says how to keep a sample.
        resume: continue a folder that already holds checkpoints (same build).

    Under ``torch.distributed`` only rank 0 writes; the other ranks' writers do nothing.
    """

    def __init__(self, path: str | os.PathLike, model: nn.Module, build: str | None = None, *,
                 build_args: Mapping[str, Any] | None = None, data: Mapping[str, Dataset] | str | None = None,
                 classes: list[str] | None = None, task: str = "classify", metric: str | None = None,
                 data_options: Mapping[str, Any] | None = None, max_data_mb: float = DEFAULT_MAX_DATA_MB,
                 resume: bool = False):
        import json

        self.folder = RunFolder(path)
        self.active = _is_main_process()
        self._pending: list[Future] = []
        self._executor: ThreadPoolExecutor | None = None
        self._lock = None
        self._saved: set[int] = set()
        if task not in TASKS:
            raise ArgumentError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if data is None:
            raise ArgumentError("RunWriter needs data: {'test': test_set} (kept as tensors) or 'folder:PATH'")
        model = unwrap(model)
        build = build or default_build(model)
        try:
            build_args = json.loads(json.dumps(dict(build_args or {})))
        except (TypeError, ValueError) as err:
            raise ArgumentError(f"build_args must be JSON (numbers, strings, lists, dicts): {err}") from None
        self.build, self.build_args = build, build_args
        self._shapes = check_build(build, build_args, model)
        if isinstance(data, (str, Path)):
            entries, data_bytes = referenced(str(data), data_options), None
        else:
            if data_options:
                raise ArgumentError("data_options go with a dataset spec (data='folder:PATH'); kept tensors have none")
            data_bytes, entries = keep_splits(data, max_data_mb, classes)
            entries["data"] = f"tensors:{os.path.abspath(self.folder.path / DATA_FILE)}"  # stored relative to the run
        if classes is not None:
            entries["classes"] = [str(c) for c in classes]
        self.classes = entries["classes"]
        self.metric = metric
        self.config = {"task": task, **entries, "model": build, "model_args": build_args, "metric": metric,
                       "epochs": None, "writer": "RunWriter", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "versions": {"torch": torch.__version__, "netgaze": _version()}}
        self._meta = {"classes": self.classes, "model": build, "model_args": build_args, "task": task}
        self.history: list[dict[str, Any]] = []
        if not self.active:
            return
        self._lock = self.folder.lock().acquire()
        try:
            self._start(resume, data_bytes)
        except BaseException:
            self._lock.release()
            raise
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netgaze-run-writer")

    def _start(self, resume: bool, data_bytes: bytes | None) -> None:
        existing = self.folder.checkpoints()
        if existing and not resume:
            raise RunError(f"{self.folder.path} already holds a run (epochs up to {existing[-1][0]}); "
                           "continue it with RunWriter(..., resume=True) or choose another folder")
        if existing:
            old = self.folder.read_config()
            if old.get("model") != self.build or old.get("model_args") != self.build_args:
                raise RunError(f"cannot resume {self.folder.path}: it was written for build {old.get('model')!r} "
                               f"with {old.get('model_args')}, not {self.build!r} with {self.build_args}")
            self._saved = {e for e, _ in existing}
            self.history = [dict(r) for r in self.folder.read_history()]
            self.config["created"] = old.get("created", self.config["created"])
            self.metric = self.metric or old.get("metric")
            self.config["metric"] = self.metric
        self.folder.prepare()
        if data_bytes is not None:
            atomic_write_bytes(self.folder.path / DATA_FILE, data_bytes)
        self._write_config()

    def _write_config(self) -> None:
        self.folder.write_config(stored_config(self.config, self.folder.path))

    @property
    def last_epoch(self) -> int:
        """The last epoch saved (0 when none): with ``resume=True``, the loop goes on from ``last_epoch + 1``."""
        return max(self._saved, default=0)

    # ------------------------------------------------------------- per epoch
    def save(self, epoch: int, model: nn.Module, metrics: Mapping[str, Any] | None = None) -> None:
        """Checkpoint ``model`` as epoch ``epoch`` with this epoch's ``metrics`` (any names).

        ``epoch`` counts finished epochs: 1 after the first (0 is the weights before training).
        The weights are copied now; the files are written on a background thread (an error
        there is raised by the next ``save`` or by ``close``).
        """
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ArgumentError(f"epoch is a whole number >= 0 (finished epochs), got {epoch!r}")
        record: dict[str, Any] = {"epoch": epoch}
        for key, value in dict(metrics or {}).items():
            if key == "epoch":
                continue
            record[str(key)] = _number(str(key), value)
        if not self.active:
            return
        if self._executor is None:
            raise RunError(f"this RunWriter of {self.folder.path} is closed")
        if epoch in self._saved:
            raise RunError(f"{self.folder.path} already has a checkpoint of epoch {epoch}")
        if epoch == 0 and len(record) > 1 and not self._saved:
            warnings.warn("RunWriter.save(0, ...) with metrics: epoch 0 means the weights before training; count "
                          "finished epochs (1 after the first) so the studies label them right", stacklevel=stack_level())
        self._raise_failures()
        state = state_dict_to_cpu(unwrap(model).state_dict())
        check_fit(self.build, self._shapes, {k: tuple(v.shape) for k, v in state.items()})
        self._saved.add(epoch)
        while len(self._pending) >= MAX_PENDING:
            self._pending.pop(0).result()
        self._pending.append(self._executor.submit(self._write, epoch, state, record))

    def _write(self, epoch: int, state: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
        self.folder.save_state(epoch, state, record, None, self._meta)
        if epoch > 0:
            self.history = sorted([r for r in self.history if r.get("epoch") != epoch] + [record],
                                  key=lambda r: r["epoch"])
        self.folder.write_history(self.history)
        metric = pick_metric({"metric": self.metric}, self.history)
        if metric != self.config["metric"]:      # once, when the first metrics arrive
            self.config["metric"] = metric
            self._write_config()

    def _raise_failures(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            future.result()

    def flush(self) -> None:
        """Wait until every checkpoint saved so far is on disk."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> Path:
        """Finish writing (checkpoints, history, ``curves.png``), give the folder back; returns its path."""
        if self._executor is not None:
            try:
                self.flush()
                if self._saved and self.config["epochs"] != max(self._saved):
                    self.config["epochs"] = max(self._saved)
                    self._write_config()
                if self.history:
                    from netgaze.lab.curves import plot_curves
                    plot_curves(self.history, self.folder.curves_path, title=self.folder.path.name)
                self.folder.log(f"RunWriter closed after epochs {sorted(self._saved)}")
            finally:
                self._executor.shutdown(wait=True)
                self._executor = None
                if self._lock is not None:
                    self._lock.release()
                    self._lock = None
        return self.folder.path

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _version() -> str:
    from netgaze._util.version import VERSION
    return VERSION
