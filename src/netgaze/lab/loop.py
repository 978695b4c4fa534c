"""The epoch loop every lab trainer shares: checkpoints, resume, history, curves, DDP, AMP.

A task subclasses ``EpochTrainer`` and writes ``compute`` (one batch -> loss and summed
statistics); see ``netgaze.lab.train`` for the classifier and for how to reuse this.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any, Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from netgaze.lab.curves import plot_curves
from netgaze.lab.distributed import DistributedContext, seed_everything
from netgaze.lab.runs import RunError, RunFolder

# run.json keys that may change between a run and its resume (the rest must match).
FREE_CONFIG_KEYS = {"epochs", "device", "workers", "tensorboard", "created", "world_size", "amp",
                    "versions", "progress", "data_from_run"}

Stats = dict[str, torch.Tensor]


def same_setting(key: str, old: dict[str, Any], new: dict[str, Any], folder: RunFolder) -> bool:
    """Whether setting ``key`` of ``run.json`` (``old``) is unchanged in ``new``; ``data``
    compares where the data lies (a moved run resumed with its data named from here)."""
    if old.get(key) == new.get(key):
        return True
    if key == "data" and isinstance(old.get(key), str) and isinstance(new.get(key), str):
        from netgaze.lab.datapaths import same_data
        return same_data(old, new[key], folder.path)
    return False

# curves.png during training: at most this fraction of the training time goes to drawing it;
# the first drawing is assumed to cost CURVES_FIRST_COST seconds (matplotlib's import included).
CURVES_BUDGET = 0.02
CURVES_FIRST_COST = 0.6


def amp_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """The autocast dtype of mixed precision, or None for full precision.

    Mixed precision is used on CUDA only (``amp=None`` turns it on there, ``amp=False``
    off); every other device trains in float32 and never enters ``torch.autocast`` nor
    makes a grad scaler. bfloat16 where the GPU supports it (no scaler needed), else
    float16, which the trainer pairs with a ``GradScaler``.
    """
    if device.type != "cuda" or (amp is not None and not amp):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


class EpochTrainer:
    """Train for N epochs, checkpoint every epoch, resume from the last complete one.

    Subclasses implement ``compute`` and, when a metric is not a mean over samples,
    ``summarize``. A task with several optimizers (a GAN) overrides ``train_step``.

    Args:
        model: the model (on the CPU or already on ``ctx.device``); it is moved and,
            under torchrun, wrapped in DistributedDataParallel (``self.model``); the plain
            module stays available as ``self.module``.
        optimizers: name -> optimizer; all are saved in each checkpoint and restored on resume.
        train_set, test_set: datasets whose items are tuples of tensors / numbers.
        folder: the run folder (only the main process writes).
        ctx: from ``distributed_context()``.
        batch_size: per process.
        seed: the run's seed; epoch ``e`` of rank ``r`` draws from ``seed_everything(seed, e, r)``.
        workers: DataLoader worker processes.
        amp: mixed precision (bfloat16 where supported, else float16 with a grad scaler);
            None turns it on for CUDA only. Ignored off CUDA.
        tensorboard: also write TensorBoard scalars to ``folder/tensorboard``.
        progress: show a progress bar per epoch (main process only).
        metadata: extra JSON saved in every checkpoint's metadata (class names, model name
            and arguments).
    """

    def __init__(self, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], train_set: Dataset,
                 test_set: Dataset | None, *, folder: RunFolder, ctx: DistributedContext, batch_size: int,
                 seed: int = 0, workers: int = 0, amp: bool | None = None, tensorboard: bool = False,
                 progress: bool = True, metadata: dict[str, Any] | None = None):
        self.ctx = ctx
        self.device = ctx.device
        self.module = model.to(ctx.device)
        self.model = ctx.wrap(self.module)
        self.optimizers = optimizers
        self.folder = folder
        self.seed = seed
        self.progress = progress
        self.metadata = metadata or {}
        self.amp_dtype = amp_dtype(ctx.device, amp)
        self.scaler = torch.amp.GradScaler(ctx.device.type) if self.amp_dtype == torch.float16 else None
        pin = ctx.device.type == "cuda"
        self.train_sampler = ctx.train_sampler(train_set, seed)
        self.train_loader = DataLoader(train_set, batch_size=batch_size, sampler=self.train_sampler,
                                       num_workers=workers, pin_memory=pin)
        self.test_loader = None
        if test_set is not None:
            self.test_loader = DataLoader(ctx.eval_share(test_set), batch_size=batch_size, shuffle=False,
                                          num_workers=workers, pin_memory=pin)
        self._curves_at, self._curves_cost = 0.0, CURVES_FIRST_COST
        self._curves_drawn: list[dict[str, Any]] | None = None
        self.writer = None  # opened by ``fit`` once the folder is ours (a refused start writes nothing)
        self.tensorboard = tensorboard

    # ------------------------------------------------------------- the task
    def compute(self, batch: Sequence[torch.Tensor], train: bool) -> tuple[torch.Tensor, Stats]:
        """Loss of one batch (on the device) and statistics summed over its samples.

        Statistics are 0-d (or fixed-shape) tensors; keep them on the device (no
        ``.item()``, which waits for the device). Include ``"count"``.
        """
        raise NotImplementedError

    def summarize(self, sums: Stats) -> dict[str, float]:
        """Epoch metrics from statistics summed over the epoch (and processes).

        The default divides every statistic by ``count`` (means per sample).
        """
        count = float(sums["count"])
        return {k: float(v) / max(count, 1.0) for k, v in sums.items() if k != "count"}

    def train_step(self, batch: Sequence[torch.Tensor]) -> Stats:
        """One optimisation step on one batch; returns its summed statistics."""
        (optimizer,) = self.optimizers.values()
        with self.autocast():
            loss, stats = self.compute(batch, train=True)
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            loss.backward()
            optimizer.step()
        return stats

    def eval_step(self, batch: Sequence[torch.Tensor]) -> Stats:
        with torch.no_grad(), self.autocast():
            return self.compute(batch, train=False)[1]

    # ------------------------------------------------------------- machinery
    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision around a forward pass; a no-op (autocast untouched) without AMP."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(b) for b in batch)
        return batch

    def run_epoch(self, loader: DataLoader, train: bool, desc: str) -> dict[str, float]:
        """One pass over ``loader``; returns the summarised metrics (summed across processes)."""
        self.model.train(train)
        sums: Stats = {}
        bar = tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr,
                   disable=not (self.progress and self.ctx.is_main))
        for batch in bar:
            stats = (self.train_step if train else self.eval_step)(self.to_device(batch))
            for k, v in stats.items():
                v = v.detach()
                sums[k] = sums[k] + v if k in sums else v
        keys = sorted(sums)
        totals = dict(zip(keys, (t.cpu() for t in self.ctx.sum([sums[k] for k in keys]))))
        self.last_count = int(totals["count"]) if "count" in totals else None
        return self.summarize(totals)

    def training_state(self) -> dict[str, Any]:
        state = {"optimizers": {n: o.state_dict() for n, o in self.optimizers.items()}}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_training_state(self, state: dict[str, Any]) -> None:
        for name, optimizer in self.optimizers.items():
            if name in state.get("optimizers", {}):
                optimizer.load_state_dict(state["optimizers"][name])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def start(self, config: dict[str, Any], resume: bool,
              epochs: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Take the folder's lock, then write ``run.json`` or resume: returns (last finished epoch, history).

        Everything that can refuse the start (another process owns the folder, a run exists
        without ``resume``, a changed configuration, fewer ``epochs`` than already trained, a
        damaged last checkpoint) is checked before anything is written, so a refused start
        leaves the folder as it was.
        """
        from netgaze.lab.datapaths import stored_config

        folder, ctx = self.folder, self.ctx
        config = stored_config(json.loads(json.dumps(config, default=str)), folder.path)
        if ctx.is_main:
            self._lock = folder.lock().acquire()
        ctx.barrier()
        existing = folder.checkpoints()
        if existing and not resume:
            raise RunError(f"{folder.path} already holds a run (epochs up to {existing[-1][0]}); "
                           "resume it (resume=True, --resume) or choose another output folder")
        last = existing[-1][0] if existing else 0
        if existing:
            old = folder.read_config()
            changed = sorted(k for k in set(old) | set(config)
                             if k not in FREE_CONFIG_KEYS and not same_setting(k, old, config, folder))
            if changed:
                detail = "; ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in changed)
                raise RunError(f"cannot resume {folder.path} with a different configuration ({detail})")
            if epochs is not None and epochs < last:
                raise RunError(f"{folder.path} is already trained to epoch {last}; resuming with {epochs} epochs "
                               f"would train nothing (give at least {last} epochs to keep it, more to continue)")
            weights = folder.load_weights(last)  # checks the checksum; a damaged one names the previous epoch
        if ctx.is_main:
            removed = folder.prepare()
            if removed:
                folder.log(f"removed {len(removed)} partial file(s) of an interrupted run: "
                           + ", ".join(str(p.relative_to(folder.path)) for p in removed))
        if existing:
            self.module.load_state_dict(weights)
            self.load_training_state(folder.load_training_state(last))
            history = folder.history_from_checkpoints(last)
        else:
            history = []
        ctx.barrier()
        if ctx.is_main:
            if existing:
                config = {**config, "created": folder.read_config().get("created", config.get("created"))}
            folder.write_config(config)
            if existing:
                folder.write_history(history)
                folder.log(f"resumed after epoch {last}")
            else:
                folder.save_epoch(0, self.module, {}, self.training_state(), self.metadata)
                folder.write_history([])
                folder.log(f"started: {config}")
        ctx.barrier()
        return last, history

    def release(self) -> None:
        """Give the run folder's lock back (``fit`` does this when it ends, however it ends)."""
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            lock.release()

    def fit(self, epochs: int, config: dict[str, Any], resume: bool = False) -> list[dict[str, Any]]:
        """Train up to epoch ``epochs`` (continuing a resumed run); return the history.

        Each finished epoch writes its checkpoint (weights, training state, metadata
        last), then ``history.jsonl`` and TensorBoard scalars; ``curves.png`` is drawn at
        the end (and during the run when that is cheap, see ``update_curves``).
        """
        try:
            return self._fit(epochs, config, resume)
        finally:
            self.release()

    def _fit(self, epochs: int, config: dict[str, Any], resume: bool) -> list[dict[str, Any]]:
        last, history = self.start(config, resume, epochs)
        if self.tensorboard and self.ctx.is_main:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(self.folder.path / "tensorboard"))
        self._curves_at = time.perf_counter()  # the drawing budget counts training time only
        for epoch in range(last + 1, epochs + 1):
            began = time.perf_counter()
            seed_everything(self.seed, epoch, self.ctx.rank)
            self.train_sampler.set_epoch(epoch)
            record: dict[str, Any] = {"epoch": epoch}
            pictures = {}
            train = self.run_epoch(self.train_loader, True, f"epoch {epoch}/{epochs} train")
            record.update({f"train_{k}": v for k, v in train.items()})
            pictures["train"] = self.last_count
            if self.test_loader is not None:
                test = self.run_epoch(self.test_loader, False, f"epoch {epoch}/{epochs} test")
                record.update({f"test_{k}": v for k, v in test.items()})
                pictures["test"] = self.last_count
            # samples behind each split's numbers, summed over processes (a dict: not a curve)
            record["pictures"] = {k: v for k, v in pictures.items() if v is not None}
            record["seconds"] = round(time.perf_counter() - began, 3)
            history.append(record)
            if self.ctx.is_main:
                self.end_epoch(record, history, epochs)
            self.ctx.barrier()
        if self.ctx.is_main and history:  # also after a crash between a checkpoint and its drawing
            self.update_curves(history, final=True)
        if self.writer is not None:
            self.writer.close()
        return history

    def update_curves(self, history: list[dict[str, Any]], final: bool) -> None:
        """Draw ``curves.png`` from the history, unless it already shows exactly this history.

        ``final`` (the end of ``fit``) always draws. Before that, a drawing (about 0.2 s, plus
        0.4 s to import matplotlib the first time) is made only when it costs at most
        ``CURVES_BUDGET`` of the training time since the last one: live curves for long
        epochs, none for short ones, whose run pays for one drawing at its end. A run killed
        in between keeps an older ``curves.png``; ``history.jsonl`` is always current, and
        resuming (even with no epoch left to train) redraws the curves from it.
        """
        now = time.perf_counter()
        if history == self._curves_drawn:
            return
        if not final and now - self._curves_at < self._curves_cost / CURVES_BUDGET:
            return
        plot_curves(history, self.folder.curves_path, title=self.folder.path.name)
        self._curves_drawn = [dict(r) for r in history]
        self._curves_at = time.perf_counter()
        self._curves_cost = self._curves_at - now

    def end_epoch(self, record: dict[str, Any], history: list[dict[str, Any]], epochs: int) -> None:
        """Main process only: checkpoint, history, curves, TensorBoard, log, one line on stderr."""
        epoch = record["epoch"]
        self.folder.save_epoch(epoch, self.module, record, self.training_state(), self.metadata)
        self.folder.write_history(history)
        self.update_curves(history, final=False)  # fit draws the last epoch's curves
        if self.writer is not None:
            for key, value in record.items():
                split, _, name = key.partition("_")
                if split in ("train", "test") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{name}/{split}", value, epoch)
            self.writer.flush()
        line = "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in record.items() if k not in ("epoch", "pictures"))
        self.folder.log(f"epoch {epoch}/{epochs}  {line}")
        if self.progress:
            tqdm.write(f"epoch {epoch}/{epochs}  {line}", file=sys.stderr)
