"""``RunCallback`` for Lightning: a netgaze run folder from ``Trainer.fit``, one line.

    from netgaze.integrations.lightning import RunCallback

    trainer = L.Trainer(max_epochs=10, callbacks=[
        RunCallback("runs/mine", build="mypkg.models:SmallCNN", build_args={"width": 16},
                    data={"test": test_set}, module_attr="model")])
    trainer.fit(lit_module, train_loader, val_loader)
    # then: netgaze study epochs runs/mine --trust-code, netgaze report runs/mine, ng.load_run("runs/mine")

When it saves. Lightning 2.x (checked on 2.6) runs, per training epoch: ``on_train_epoch_start``,
the training batches, then -- when validation is due at the end of the epoch -- the validation
loop (``on_validation_start`` ... ``on_validation_end``), and only then ``on_train_epoch_end``.
Epoch-level training metrics (``train_loss_epoch``) first exist in ``trainer.callback_metrics``
at ``on_train_epoch_end``; the validation metrics of the epoch already do. So the callback saves
at ``on_train_epoch_end``, when both exist. An epoch without validation
(``check_val_every_n_epoch > 1``) is saved with its training metrics only: the previous
validation's values are left out, not repeated. The sanity check's validation is never saved.

Epochs count finished epochs: Lightning's ``current_epoch`` 0 is netgaze's epoch 1 (epoch 0 is the
weights before training, which the callback does not save). Metrics are
``trainer.callback_metrics`` as logged (names kept: ``val_acc``, ``train_loss_epoch``,
``train_loss_step`` ...; one-number tensors become floats). Only the global rank 0 writes
(``trainer.is_global_zero``); the other ranks do nothing. A fit resumed from a Lightning
checkpoint (``current_epoch > 0`` at ``on_train_start``) continues the run folder.

The network saved is the one ``build`` rebuilds: the LightningModule's attribute named by
``module_attr`` (e.g. ``"model"``), else the LightningModule itself when its weights fit the build,
else its one attribute whose weights fit; otherwise a ``ModelError`` names the keys that did not fit.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch
import torch.nn as nn

from netgaze.integrations.extras import require
from netgaze.lab.models import ModelError, build_from_spec
from netgaze.lab.models.import_path import is_import_path
from netgaze.lab.run_data import DEFAULT_MAX_DATA_MB
from netgaze.lab.run_writer import RunWriter, default_build, unwrap

_pl = require("lightning.pytorch", "lightning", "netgaze.integrations.lightning.RunCallback")


class RunCallback(_pl.Callback):
    """Writes a netgaze run folder while Lightning trains: one checkpoint per training epoch.

    Args:
        path: the run folder (new, or one this training resumes).
        build: how other processes rebuild the network (see ``netgaze.RunWriter``):
            ``torchvision:NAME``, ``timm:NAME``, a lab model, or ``package.module:callable``.
            None takes ``module:Class`` of the network's class, built without arguments
            (the LightningModule itself: with its ``hparams`` as arguments).
        build_args: keyword arguments of ``build`` (JSON).
        data: ``{"test": dataset, ...}`` of ``(picture [C, H, W], label)`` kept in the run, or a
            dataset spec such as ``"folder:PATH"``.
        classes: class names; None takes the datasets' ``.classes`` or the label numbers.
        metric: the history key the studies and the explorer plot (None: netgaze's rule).
        module_attr: the LightningModule's attribute holding the network (``"model"``); None
            tries the LightningModule itself, then its attributes.
        task: ``"classify"`` (or ``"reconstruct"``, ``"segment"``).
        max_data_mb: the most data kept in the run (see ``RunWriter``).
    """

    def __init__(self, path: str | os.PathLike, build: str | None = None, *,
                 build_args: Mapping[str, Any] | None = None, data: Mapping[str, Any] | str | None = None,
                 classes: list[str] | None = None, metric: str | None = None, module_attr: str | None = None,
                 task: str = "classify", max_data_mb: float = DEFAULT_MAX_DATA_MB):
        super().__init__()
        self.path, self.build, self.build_args = path, build, build_args
        self.data, self.classes, self.metric, self.task = data, classes, metric, task
        self.module_attr, self.max_data_mb = module_attr, max_data_mb
        self.writer: RunWriter | None = None
        self._network: nn.Module | None = None
        self._val_keys: set[str] = set()
        self._keys_before_validation: set[str] = set()
        self._validated = False

    # ----------------------------------------------------------------- hooks
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or self.writer is not None:
            return
        network, build, args = self._pick_network(pl_module)
        self._network = network
        self.writer = RunWriter(self.path, network, build, build_args=args, data=self.data, classes=self.classes,
                                task=self.task, metric=self.metric, max_data_mb=self.max_data_mb,
                                resume=trainer.current_epoch > 0)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._validated = False

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._keys_before_validation = set(trainer.callback_metrics)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._val_keys |= set(trainer.callback_metrics) - self._keys_before_validation
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.writer is None or not trainer.is_global_zero:
            return
        metrics: dict[str, float] = {}
        for key, value in trainer.callback_metrics.items():
            if not self._validated and key in self._val_keys:
                continue   # the last validation's value, not this epoch's
            if isinstance(value, torch.Tensor):
                if value.numel() != 1:
                    continue
                value = value.detach().float().item()
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[str(key)] = float(value)
        self.writer.save(int(trainer.current_epoch) + 1, self._network, metrics)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._close()   # the epochs saved so far stay a valid run

    def _close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    # ---------------------------------------------------------- the network
    def _pick_network(self, pl_module: nn.Module) -> tuple[nn.Module, str, dict[str, Any]]:
        args = dict(self.build_args or {})
        if self.module_attr is not None:
            network = getattr(pl_module, self.module_attr, None)
            if not isinstance(network, nn.Module):
                children = ", ".join(name for name, _ in pl_module.named_children()) or "none"
                raise ModelError(f"module_attr={self.module_attr!r}: the LightningModule "
                                 f"{type(pl_module).__name__} has no such sub-module (its sub-modules: {children})")
            return network, self.build or default_build(unwrap(network)), args
        if self.build is None:   # the LightningModule itself, rebuilt from its own hyper-parameters
            hparams = dict(getattr(pl_module, "hparams", {}) or {})
            return pl_module, default_build(pl_module), args or hparams
        trust = self.build.partition(":")[0] if is_import_path(self.build) else False
        expected = {k: tuple(v.shape) for k, v in build_from_spec(self.build, args, trust_code=trust).state_dict().items()}
        whole = {k: tuple(v.shape) for k, v in pl_module.state_dict().items()}
        if _fits(expected, whole):
            return pl_module, self.build, args
        children = {name: {k: tuple(v.shape) for k, v in child.state_dict().items()}
                    for name, child in pl_module.named_children()}
        fitting = [name for name, shapes in children.items() if _fits(expected, shapes)]
        if len(fitting) == 1:
            return getattr(pl_module, fitting[0]), self.build, args
        if fitting:
            raise ModelError(f"several attributes of {type(pl_module).__name__} fit build={self.build!r} "
                             f"({', '.join(fitting)}): pass module_attr='NAME' to choose")
        named = next((name for name, shapes in children.items() if set(shapes) == set(expected)), None)
        if named is not None:   # the network is there, built with other arguments
            wrong = sorted(k for k in expected if children[named][k] != expected[k])
            raise ModelError(f"{type(pl_module).__name__}.{named} has the keys of build={self.build!r} but other "
                             f"shapes: {wrong[0]} is {list(children[named][wrong[0]])}, the build makes "
                             f"{list(expected[wrong[0]])} ({len(wrong)} keys differ); pass the build_args that "
                             f"construct it (and module_attr={named!r})")
        raise ModelError(f"neither the LightningModule {type(pl_module).__name__} nor one of its attributes "
                         f"({', '.join(children) or 'none'}) fits build={self.build!r}: the build makes "
                         f"{_some(sorted(expected))}; the LightningModule has {_some(sorted(whole))}. "
                         "Pass module_attr='NAME' for the attribute holding the network, and the build that makes it")


def _fits(expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> bool:
    return expected == got


def _some(keys: list[str], n: int = 4) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


__all__ = ["RunCallback"]
