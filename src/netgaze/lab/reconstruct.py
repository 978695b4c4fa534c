"""Train a reconstruction model (VAE, conditional, denoising, VAE-GAN) into a run folder.

``train_reconstruction(data="digits", model="vae-linear", loss="bce", epochs=10, out="runs/vae")``
writes the same run folder as the classifier trainer (``netgaze.lab.runs``): ``run.json``
with ``task="reconstruct"``, one checkpoint per epoch (epoch 0 = initial weights),
``history.jsonl``, ``curves.png``, ``log.txt``; ``resume=True`` continues from the last
complete checkpoint. The epoch loop, checkpoints, resume, curves and DDP are
``netgaze.lab.loop.EpochTrainer``'s; this file only says what one batch computes.

History per epoch (all per image, sums over pixels / latent units as in the classic
PyTorch example): ``train_loss``, ``test_loss``, ``train_recon``, ``test_recon``,
``train_kl``, ``test_kl``, ``train_pixel_mse`` / ``test_pixel_mse`` (mean squared error
per pixel, comparable across losses and models), ``seconds``; for ``vaegan`` also
``train_gan_dec``, ``train_gan_dis``, ``train_dis_updates`` / ``train_dec_updates``
(share of batches that updated the discriminator / decoder under equilibrium gating),
``train_dis_real`` / ``train_dis_rec`` / ``train_dis_prior`` (the discriminator's BCE per
kind of picture, the numbers the gating reads) and ``train_real_acc`` / ``train_rec_acc`` /
``train_prior_acc`` (its accuracy on each kind, logit > 0 = real), measured on the training
batches in training mode: in eval mode its batch-norm running statistics, taken over mixed
real/fake batches, make its test accuracy meaningless.
Test terms use the mean of q(z|x) (eval mode). A VAE-GAN's
``recon`` is its discriminator-feature error, not a pixel error.

MNIST comparison point: ``--data mnist:PATH --model vae-linear --loss bce`` with the
defaults (784-400-20, Adam lr 1e-3, batch 128, BCE summed + KL) is the classic PyTorch
example's configuration, whose published test loss is about 105.6 per image after 10 epochs.
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import torch

from netgaze.errors import ArgumentError, warn_user
from netgaze.lab.distributed import DistributedContext, distributed_context, seed_everything
from netgaze.lab.loop import EpochTrainer, Stats
from netgaze.lab.models import build_model
from netgaze.lab.models.vae_loss import RECON_LOSSES, vae_loss
from netgaze.lab.models.vaegan import VAEGAN
from netgaze.lab.runs import Run, RunFolder, load_run

RECONSTRUCTION_MODELS = ("vae-linear", "vae-conv", "cvae", "dvae", "vaegan")
# VAE-GAN terms logged per training batch (before the update), averaged into train_* history
# keys: VAEGAN.losses name -> history name (names ending in "acc" are drawn as percentages).
GAN_BATCH_TERMS = {"dis_real": "dis_real", "dis_rec": "dis_rec", "dis_prior": "dis_prior",
                   "acc_real": "real_acc", "acc_rec": "rec_acc", "acc_prior": "prior_acc"}
# Fewer updates per epoch than this and a VAE-GAN barely moves in the epochs people run
# (400 pictures at batch 64: 7 updates an epoch, the test pixel MSE stays near its start).
GAN_MIN_UPDATES = 20


def load_reconstruction_data(data: str, split: str, options: dict[str, Any] | None = None):
    """A dataset split of pictures in [0, 1] (``netgaze.lab.datasets.load_dataset``)."""
    from netgaze.lab.datasets import load_dataset
    return load_dataset(data, split, **(options or {}))


def model_arguments(model: str, dataset, latent: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Builder arguments from the data: channels, size, latent size, classes for ``cvae``."""
    picture = dataset[0][0]
    channels = int(getattr(dataset, "channels", picture.shape[0]))
    size = tuple(getattr(dataset, "size", picture.shape[-2:]))
    if size[0] != size[1]:
        raise ArgumentError(f"reconstruction models take square pictures; the data are {size[0]}x{size[1]}")
    args: dict[str, Any] = {"in_channels": channels, "image_size": int(size[0]), "latent": int(latent)}
    if model == "cvae":
        args["num_classes"] = len(dataset.classes)
    args.update(extra or {})
    return args


class ReconstructionTrainer(EpochTrainer):
    """``EpochTrainer`` for VAEs (one Adam, summed negative ELBO) and VAE-GANs (gated, three Adams).

    Args:
        loss: ``"bce"`` or ``"mse"`` pixel loss of the VAEs.
        (the rest as ``EpochTrainer``)
    """

    def __init__(self, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer], train_set,
                 test_set, *, folder: RunFolder, ctx: DistributedContext, batch_size: int, loss: str = "bce",
                 seed: int = 0, workers: int = 0, amp: bool | None = None, tensorboard: bool = False,
                 progress: bool = True, metadata: dict[str, Any] | None = None):
        super().__init__(model, optimizers, train_set, test_set, folder=folder, ctx=ctx, batch_size=batch_size,
                         seed=seed, workers=workers, amp=amp, tensorboard=tensorboard, progress=progress,
                         metadata=metadata)
        self.loss = loss
        if isinstance(self.module, VAEGAN) and self.ctx.distributed:
            raise ArgumentError("vaegan trains in one process; run it without torchrun")

    def compute(self, batch: Sequence[torch.Tensor], train: bool) -> tuple[torch.Tensor, Stats]:
        x, y = batch[0], batch[1]
        count = torch.tensor(float(len(x)), device=x.device)
        if isinstance(self.module, VAEGAN):
            terms = self.module.losses(x)
            stats = {"loss": terms["encoder"], "recon": terms["feature"], "kl": terms["kl"],
                     "gan_dec": terms["gan_dec"], "gan_dis": terms["discriminator"],
                     "pixel_mse": terms["pixel_mse"] / x[0].numel()}
            return terms["encoder"], {**{k: v.detach() * count for k, v in stats.items()}, "count": count}
        recon, mu, logvar = self.model(x, y) if self.module.conditional else self.model(x)
        with torch.autocast(x.device.type, enabled=False):  # BCE refuses autocast
            parts = vae_loss(recon.float(), x.float(), mu.float(), logvar.float(), self.loss)
            pixel = (recon.float() - x.float()).pow(2).flatten(1).mean(1).sum()
        stats = {k: v.detach() for k, v in parts.items()}
        return parts["loss"], {**stats, "pixel_mse": pixel.detach(), "count": count}

    def train_step(self, batch: Sequence[torch.Tensor]) -> Stats:
        if not isinstance(self.module, VAEGAN):
            return super().train_step(batch)
        x = batch[0]
        terms = self.module.train_step(x, self.optimizers)
        n = float(len(x))
        stats = {"loss": terms["encoder"], "recon": terms["feature"], "kl": terms["kl"],
                 "gan_dec": terms["gan_dec"], "gan_dis": terms["discriminator"],
                 "pixel_mse": terms["pixel_mse"] / x[0].numel(),
                 "dis_updates": terms["train_dis"], "dec_updates": terms["train_dec"],
                 **{name: terms[k] for k, name in GAN_BATCH_TERMS.items()}}
        out = {k: torch.tensor(v * n, device=x.device) for k, v in stats.items()}
        out["count"] = torch.tensor(n, device=x.device)
        return out


def train_reconstruction(data: str = "digits", model: str = "vae-linear", *, loss: str = "bce",
                         latent: int = 20, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
                         out: str | os.PathLike = "runs/vae", seed: int = 0, resume: bool = False,
                         model_args: dict[str, Any] | None = None, data_options: dict[str, Any] | None = None,
                         device: str | None = None, progress: bool = True) -> Run:
    """Train, checkpointing every epoch; returns the loaded run (last epoch, eval mode).

    Args:
        data: ``"digits"``, ``"mnist:PATH"`` (IDX files) or an image-folder path.
        model: one of ``RECONSTRUCTION_MODELS``.
        loss: ``"bce"`` or ``"mse"`` pixel loss, summed per image (ignored by ``vaegan``,
            which measures reconstruction in discriminator features).
        latent: size of z.
        epochs: train until this epoch (a resumed run continues up to it).
        batch_size: pictures per step; the VAE loss is the batch SUM, as in the classic example.
        lr: Adam learning rate (``vaegan``: each of its three Adams, betas 0.5/0.999).
        out: the run folder. It must not hold checkpoints unless ``resume``.
        seed: initial weights, shuffling and sampling noise.
        resume: continue the run in ``out`` from its last complete checkpoint.
        model_args: more builder arguments (``{"arch": "conv"}`` for cvae/dvae, ``{"width": 64}``).
        data_options: ``load_dataset`` options (e.g. ``{"size": 64}`` for an image folder).
        device: None picks CUDA, then MPS, then the CPU.
        progress: progress bars and one line per epoch on stderr.

    Raises:
        RunError: ``out`` holds another run, or a resume with a different configuration.
    """
    if model not in RECONSTRUCTION_MODELS:
        raise ArgumentError(f"unknown reconstruction model {model!r}; choose one of {', '.join(RECONSTRUCTION_MODELS)}")
    if loss not in RECON_LOSSES:
        raise ArgumentError(f"unknown loss {loss!r}; choose one of {', '.join(RECON_LOSSES)}")
    train_set = load_reconstruction_data(data, "train", data_options)
    test_set = load_reconstruction_data(data, "test", data_options)
    args = model_arguments(model, train_set, latent, model_args)
    classes = list(getattr(train_set, "classes", []))
    config = {"task": "reconstruct", "data": data, "data_options": dict(data_options or {}), "model": model,
              "model_args": args, "loss": loss, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "seed": seed, "classes": classes}
    seed_everything(seed)
    net = build_model(model, **args)
    updates = math.ceil(len(train_set) / batch_size)
    if model == "vaegan" and updates < GAN_MIN_UPDATES:  # warned once the options are known to be valid
        warn_user(f"vaegan: {len(train_set)} training pictures at batch size {batch_size} make only {updates} "
                  f"updates per epoch; a VAE-GAN learns from updates (try a batch size of "
                  f"{max(1, len(train_set) // GAN_MIN_UPDATES)} or less)")
    optimizers = net.optimizers(lr) if isinstance(net, VAEGAN) else {"adam": torch.optim.Adam(net.parameters(), lr=lr)}
    with distributed_context(device) as ctx:
        trainer = ReconstructionTrainer(net, optimizers, train_set, test_set, loss=loss, folder=RunFolder(out),
                                        ctx=ctx, batch_size=batch_size, seed=seed, progress=progress,
                                        metadata={"classes": classes, "model": model, "model_args": args})
        trainer.fit(epochs, config, resume)
        ctx.barrier()
    return load_run(out)


__all__ = ["train_reconstruction", "ReconstructionTrainer", "model_arguments", "load_reconstruction_data",
           "RECONSTRUCTION_MODELS"]
