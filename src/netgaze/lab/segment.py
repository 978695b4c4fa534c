"""Train an FCN segmentation model into a run folder.

``train_segmentation(data="shapes", encoder="simple", decoder="fcn8", epochs=8, out="runs/fcn8")``
writes the same run folder as every lab trainer (``netgaze.lab.runs``; the epoch loop,
checkpoints, resume and curves are ``netgaze.lab.loop.EpochTrainer``'s): ``run.json``
with ``task="segment"``, ``model`` = the decoder and ``model_args`` = encoder, classes...;
a checkpoint per epoch; ``history.jsonl``; ``curves.png``; and
``artifacts/predictions.png`` (test pictures, true masks, predicted masks).

History per epoch: ``train_loss`` / ``test_loss`` (pixel cross-entropy, the mean over
pixels that are not 255, averaged over batches weighted by pictures), ``pixel_acc``,
``mean_acc``, ``mean_iou`` (the TEST split's, fractions, from one confusion matrix over
the whole split, ``netgaze.metrics.segmentation``), the same as ``test_pixel_acc`` ...
(the curves read those), ``test_fw_iou``, the training split's ``train_pixel_acc`` ...
(measured on the fly, in train mode, while the weights change), and ``seconds``.
"""
from __future__ import annotations

import os
import time
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from netgaze.errors import ArgumentError
from netgaze.lab.distributed import distributed_context, seed_everything
from netgaze.lab.loop import EpochTrainer, Stats
from netgaze.lab.models import build_model
from netgaze.lab.models.fcn import DECODERS
from netgaze.lab.models.fcn_encoders import ENCODERS
from netgaze.lab.runs import Run, RunFolder, load_run
from netgaze.lab.segdata import load_segmentation
from netgaze.lab.segment_pictures import predictions_grid
from netgaze.metrics.segmentation import IGNORE_INDEX, scores

SCORE_KEYS = ("pixel_acc", "mean_acc", "mean_iou")
DEFAULT_LR = {"simple": 3e-3, "vgg16": 1e-4, "alexnet": 1e-4}


class SegmentationTrainer(EpochTrainer):
    """Pixel cross-entropy (255 ignored); scores from one confusion matrix per split and epoch."""

    num_classes: int = 2

    def compute(self, batch: Sequence[torch.Tensor], train: bool) -> tuple[torch.Tensor, Stats]:
        x, masks = batch[0], batch[1].long()
        logits = self.model(x)
        loss = F.cross_entropy(logits.float(), masks, ignore_index=IGNORE_INDEX)
        n = torch.tensor(float(len(x)), device=x.device)
        c = self.num_classes
        valid = masks != IGNORE_INDEX
        codes = masks[valid] * c + logits.detach().argmax(1)[valid]
        confusion = torch.bincount(codes, minlength=c * c)[:c * c].view(c, c)
        return loss, {"loss": loss.detach() * n, "confusion": confusion, "count": n}

    def summarize(self, sums: Stats) -> dict[str, float]:
        result = scores(sums["confusion"])
        return {"loss": float(sums["loss"]) / max(float(sums["count"]), 1.0), "pixel_acc": result.pixel_acc,
                "mean_acc": result.mean_acc, "mean_iou": result.mean_iou, "fw_iou": result.fw_iou}

    def end_epoch(self, record: dict[str, Any], history: list[dict[str, Any]], epochs: int) -> None:
        for key in SCORE_KEYS:  # the report's names: the test split's scores
            if f"test_{key}" in record:
                record[key] = record[f"test_{key}"]
        super().end_epoch(record, history, epochs)


def segmentation_model_args(encoder: str, num_classes: int, weights: str | None, allow_random_init: bool,
                            fc_channels: int | None) -> dict[str, Any]:
    """Builder arguments of an FCN (``run.json``'s ``model_args``)."""
    args: dict[str, Any] = {"encoder": encoder, "num_classes": num_classes}
    if encoder != "simple":
        args.update(weights=weights, allow_random_init=allow_random_init)
    if fc_channels is not None:
        args["fc_channels"] = fc_channels
    return args


def train_segmentation(data: str = "shapes", encoder: str = "simple", decoder: str = "fcn8", epochs: int = 8,
                       batch_size: int = 32, lr: float | None = None, out: str | os.PathLike | None = None,
                       seed: int = 0, resume: bool = False, *, weights: str | None = None,
                       allow_random_init: bool = False, fc_channels: int | None = None,
                       weight_decay: float = 0.0, data_options: dict[str, Any] | None = None,
                       device: str | None = None, workers: int = 0, examples: int = 8,
                       progress: bool = True) -> Run:
    """Train an FCN, checkpointing every epoch; returns the loaded run (last epoch, eval mode).

    Args:
        data: "shapes" (embedded) or a VOC-style folder PATH (``netgaze.lab.segdata``).
        encoder: "simple" (small CNN, quick), "vgg16" or "alexnet" (ImageNet weights from
            a local file, see ``weights``).
        decoder: "fcn32", "fcn16" or "fcn8".
        epochs: train until this epoch (a resumed run continues up to it).
        batch_size: pictures per step (per process under torchrun).
        lr: Adam's learning rate; None = 3e-3 for the simple encoder, 1e-4 for vgg16/alexnet.
        out: the run folder; None = ``runs/DECODER-ENCODER-DATA``.
        seed: initial weights, data order and dropout.
        resume: continue the run in ``out`` from its last complete checkpoint.
        weights: torchvision ImageNet weights file of the encoder; None looks in the torch
            hub cache. ``allow_random_init`` trains from random weights when none is found.
        fc_channels: width of fc6/fc7 (None: 4096 for vgg16/alexnet, 128 for simple).
        weight_decay: Adam's L2 penalty.
        data_options: options of the data (shapes: n, seed, size, num_classes, clutter;
            VOC folder: size).
        device: None picks CUDA, then MPS, then the CPU.
        workers: DataLoader worker processes.
        examples: test pictures in ``artifacts/predictions.png`` (0 for none).
        progress: progress bars and one line per epoch on stderr.

    Raises:
        ValueError: a bad option; ``ModelError`` / ``DatasetError`` / ``RunError`` (all
            ValueErrors) for missing weights, unreadable data, or a run folder that
            exists without ``resume`` or was made with a different configuration.
    """
    if decoder not in DECODERS:
        raise ArgumentError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    if encoder not in ENCODERS:
        raise ArgumentError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if epochs < 1 or batch_size < 1:
        raise ArgumentError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")
    lr = DEFAULT_LR[encoder] if lr is None else float(lr)
    data_options = dict(data_options or {})
    out = out or os.path.join("runs", f"{decoder}-{encoder}-{os.path.basename(str(data).rstrip('/')) or 'data'}")
    train_set = load_segmentation(data, "train", **data_options)
    test_set = load_segmentation(data, "test", **data_options)
    classes = list(train_set.classes)
    model_args = segmentation_model_args(encoder, len(classes), weights, allow_random_init, fc_channels)
    config = {"task": "segment", "data": data, "data_options": data_options, "model": decoder,
              "model_args": model_args, "encoder": encoder, "decoder": decoder, "classes": classes,
              "epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": "adam",
              "weight_decay": weight_decay, "seed": seed, "workers": workers,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": {"torch": torch.__version__}}
    with distributed_context(device) as ctx:
        config["device"], config["world_size"] = str(ctx.device), ctx.world_size
        seed_everything(seed)
        net = build_model(decoder, **model_args)
        params = [p for p in net.parameters() if p.requires_grad]
        trainer = SegmentationTrainer(net, {"adam": torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)},
                                      train_set, test_set, folder=RunFolder(out), ctx=ctx, batch_size=batch_size,
                                      seed=seed, workers=workers, progress=progress,
                                      metadata={"classes": classes, "model": decoder, "model_args": model_args,
                                                "task": "segment"})
        trainer.num_classes = len(classes)
        trainer.fit(epochs, config, resume=resume)
        if ctx.is_main and examples > 0:
            pick = list(range(min(examples, len(test_set))))
            images = torch.stack([test_set[i][0] for i in pick])
            masks = torch.stack([test_set[i][1] for i in pick])
            predictions_grid(trainer.module, images, masks, RunFolder(out).artifacts / "predictions.png", classes)
        ctx.barrier()
    return load_run(out)


def segmentation_dataset(run: Run, split: str = "test"):
    """The segmentation split a run was trained on (the same as ``run.dataset(split)``)."""
    return run.dataset(split)
