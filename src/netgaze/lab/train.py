"""Train a classifier into a run folder: ``train_classifier(data="shapes", model="simple-cnn")``.

The same call trains in one process or, under ``torchrun --nproc_per_node=N``, in N
processes with DistributedDataParallel (only rank 0 writes).

Reusing the machinery for another task (reconstruction, segmentation)
--------------------------------------------------------------------
Everything but the loss lives in ``netgaze.lab.loop.EpochTrainer``; a task writes::

    from netgaze.lab.distributed import distributed_context, seed_everything
    from netgaze.lab.loop import EpochTrainer
    from netgaze.lab.runs import RunFolder, load_run

    class VAETrainer(EpochTrainer):
        def compute(self, batch, train):            # batch is already on self.device
            x, _ = batch
            recon, mu, logvar = self.model(x)
            loss = vae_loss(recon, x, mu, logvar)   # mean over the batch
            n = torch.tensor(x.shape[0], device=x.device)
            return loss, {"loss": loss.detach() * n, "count": n}   # sums over samples

    def train_vae(..., out, resume=False, seed=0, device=None):
        with distributed_context(device) as ctx:
            seed_everything(seed)                    # model init is reproducible
            model = build_model("vae", **model_args)
            config = {"task": "reconstruct", "data": data, "data_options": ..., "model": "vae",
                      "model_args": model_args, "epochs": epochs, "seed": seed, ...}
            trainer = VAETrainer(model, {"adam": torch.optim.Adam(model.parameters(), lr)},
                                 train_set, test_set, folder=RunFolder(out), ctx=ctx,
                                 batch_size=batch_size, seed=seed,
                                 metadata={"model": "vae", "model_args": model_args})
            trainer.fit(epochs, config, resume=resume)
            ctx.barrier()
        return load_run(out)

``fit`` writes ``run.json``, the epoch-0 checkpoint (initial weights), then per epoch the
checkpoint, ``history.jsonl`` (keys ``epoch``, ``train_*``, ``test_*``, ``seconds``) and
TensorBoard scalars, and at the end ``curves.png`` (one panel per metric; redrawn during
the run only when that costs under 2% of the time); ``resume=True`` continues
from the last complete checkpoint and refuses a changed configuration. Metrics that are
not means over samples (IoU from a summed confusion matrix) override ``summarize``; a
task with several optimizers (VAE-GAN) passes them all in ``optimizers`` and overrides
``train_step``. Smaller pieces can be used alone: ``RunFolder.save_epoch`` /
``load_weights`` / ``load_training_state``, ``atomic_write_json``, ``plot_curves``,
``distributed_context``, ``seed_everything``.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from netgaze.errors import ArgumentError
from netgaze.lab.distributed import distributed_context, seed_everything
from netgaze.lab.loop import EpochTrainer, Stats
from netgaze.lab.models import build_model, builder_parameters
from netgaze.lab.runs import Run, RunFolder, load_run

OPTIMIZERS = ("adam", "sgd")
AUGMENT_PRESETS = ("none", "robust")
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.01}
# Models made for ImageNet pictures train at 224 px unless a size is given; the lab's small
# models keep their data's own size (64 px shapes and image folders, 28 px digits and MNIST).
IMAGENET_SIZE = 224
IMAGENET_FAMILIES = ("torchvision:", "timm:", "transfer-")


def default_image_size(model: str) -> int | None:
    """The picture size a model trains at when none is given; None keeps the data's own size."""
    return IMAGENET_SIZE if model.startswith(IMAGENET_FAMILIES) else None


class ClassifierTrainer(EpochTrainer):
    """Cross-entropy training; metrics ``loss`` (mean) and ``acc`` (fraction correct)."""

    def compute(self, batch: Sequence[torch.Tensor], train: bool) -> tuple[torch.Tensor, Stats]:
        x, y = batch[0], batch[1]
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        n = torch.tensor(y.shape[0], device=y.device)
        return loss, {"loss": loss.detach().float() * n, "acc": (logits.argmax(1) == y).sum(), "count": n}


def classifier_datasets(data: str, augment: str, data_options: dict[str, Any]) -> tuple[Dataset, Dataset]:
    """(train, test) datasets of a spec, the training split augmented by a preset."""
    from netgaze.lab import datasets as lab_data
    if augment not in AUGMENT_PRESETS:
        raise ArgumentError(f"augment must be one of {', '.join(AUGMENT_PRESETS)}, got {augment!r}")
    train_set = lab_data.load_dataset(data, "train", **data_options)
    test_set = lab_data.load_dataset(data, "test", **data_options)
    if augment != "none":
        transform = lab_data.augmentation(augment, train_set.size, train_set.channels)
        train_set = lab_data.Transformed(train_set, transform)
    return train_set, test_set


def default_out(data: str, model: str) -> str:
    """``runs/MODEL-DATA`` with characters unsafe in folder names replaced."""
    name = f"{model}-{Path(data.rstrip('/')).name or data}"
    return str(Path("runs") / re.sub(r"[^A-Za-z0-9._-]+", "_", name))


def classifier_model_args(model: str, train_set: Dataset, model_options: dict[str, Any]) -> dict[str, Any]:
    """Builder arguments: ``model_options`` plus what the data says (classes, channels, mean, std)."""
    accepted = builder_parameters(model)
    image = train_set[0][0]
    known = {"num_classes": len(train_set.classes), "in_channels": int(image.shape[0])}
    if "mean" in accepted and "std" in accepted:
        mean, std = getattr(train_set, "mean", None), getattr(train_set, "std", None)
        if mean is None or std is None:
            from netgaze.lab.datasets.base import channel_stats
            sample = torch.stack([train_set[i][0] for i in range(0, len(train_set), max(1, len(train_set) // 1024))])
            mean, std = channel_stats(sample)
        known.update(mean=[float(v) for v in mean], std=[float(v) for v in std])
    args = {k: v for k, v in known.items() if k in accepted}
    args.update(model_options)
    return args


def train_classifier(data: str = "shapes", model: str = "simple-cnn", augment: str = "none", epochs: int = 10,
                     batch_size: int = 64, lr: float | None = None, optimizer: str = "adam",
                     weight_decay: float = 0.0, out: str | None = None, seed: int = 0, resume: bool = False,
                     device: str | None = None, tensorboard: bool = False, amp: bool | None = None,
                     workers: int = 0, data_options: dict[str, Any] | None = None,
                     model_options: dict[str, Any] | None = None, progress: bool = True) -> Run:
    """Train a classifier, checkpointing every epoch into a run folder; return the loaded run.

    Args:
        data: "shapes", "digits", "mnist:PATH" or an image folder (``load_dataset`` specs).
        model: a registered model name (``model_names()``), e.g. "simple-cnn",
            "simple-cnn-bn", "transfer-resnet18", "torchvision:resnet18", "timm:NAME".
        augment: "none" or "robust" (colour jitter, random affine, random resized crop),
            applied to the training split only.
        epochs: train up to this epoch (a resumed run continues to it).
        batch_size: per process (under torchrun the global batch is N times larger).
        lr: learning rate; None = 1e-3 for Adam, 0.01 for SGD (momentum 0.9).
        optimizer: "adam" or "sgd".
        weight_decay: L2 penalty of the optimizer.
        out: the run folder; None = ``runs/MODEL-DATA``.
        seed: seeds model initialisation, data order, augmentation and dropout; on the CPU
            the same seed gives bit-identical weights, resumed or not.
        resume: continue from the last complete checkpoint of ``out``.
        device: "cpu", "cuda", "cuda:1", "mps"; None picks CUDA, then MPS, then CPU.
        tensorboard: also write TensorBoard scalars to ``out/tensorboard``.
        amp: mixed precision; None = on CUDA only.
        workers: DataLoader worker processes.
        data_options: options of the dataset (e.g. ``{"n": 500, "size": 32}`` for shapes).
            ``size`` works for every dataset; without it torchvision, timm and transfer
            models train at 224 px (``default_image_size``), the lab's models at the
            data's own size.
        model_options: builder arguments (e.g. ``{"unfreeze": True, "weights": "r18.pth"}``);
            ``num_classes``, ``in_channels``, ``mean`` and ``std`` come from the data.
        progress: show a progress bar per epoch and a line per epoch on stderr.

    Returns:
        ``load_run(out)``: the last epoch's model in eval mode, history, config.

    Raises:
        ValueError: a bad option; ``ModelError`` / ``DatasetError`` / ``RunError`` (all
            ValueErrors) for unknown models, unreadable data, or a run folder that exists
            without ``resume`` or was made with a different configuration.
    """
    if optimizer not in OPTIMIZERS:
        raise ArgumentError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if epochs < 1 or batch_size < 1:
        raise ArgumentError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    data_options, model_options = dict(data_options or {}), dict(model_options or {})
    if "size" not in data_options and default_image_size(model) is not None:
        data_options["size"] = default_image_size(model)
    out = out or default_out(data, model)
    with distributed_context(device) as ctx:
        train_set, test_set = classifier_datasets(data, augment, data_options)
        # JSON round trip: run.json holds exactly what rebuilds the model (tuples become lists)
        model_args = json.loads(json.dumps(classifier_model_args(model, train_set, model_options), default=str))
        data_options = json.loads(json.dumps(data_options, default=str))
        seed_everything(seed)
        net = build_model(model, **model_args)
        params = [p for p in net.parameters() if p.requires_grad]
        if optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
        classes = list(train_set.classes)
        config = {"task": "classify", "data": data, "data_options": data_options, "augment": augment,
                  "model": model, "model_args": model_args, "classes": classes, "epochs": epochs,
                  "batch_size": batch_size, "lr": lr, "optimizer": optimizer, "weight_decay": weight_decay,
                  "seed": seed, "device": str(ctx.device), "world_size": ctx.world_size, "amp": amp,
                  "workers": workers, "tensorboard": tensorboard, "data_facts": dict(getattr(train_set, "facts", {})),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "versions": {"torch": torch.__version__, "netgaze": _version()}}
        trainer = ClassifierTrainer(net, {optimizer: opt}, train_set, test_set, folder=RunFolder(out), ctx=ctx,
                                    batch_size=batch_size, seed=seed, workers=workers, amp=amp,
                                    tensorboard=tensorboard, progress=progress,
                                    metadata={"classes": classes, "model": model, "model_args": model_args,
                                              "task": "classify"})
        trainer.fit(epochs, config, resume=resume)
        ctx.barrier()
    return load_run(out)


def _version() -> str:
    from netgaze._util.version import VERSION as __version__
    return __version__
