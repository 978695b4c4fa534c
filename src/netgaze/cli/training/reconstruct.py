"""``netgaze train reconstruct``: train a VAE / VAE-GAN (``netgaze.lab.reconstruct.train_reconstruction``)."""
from __future__ import annotations

import argparse

from netgaze.cli.parsing import seed
from netgaze.cli.parsing import (UserError, batch_size, device, fraction, nonnegative_float, nonnegative_int,
                                 out_dir, picture_side, positive_float, positive_int)
from netgaze.errors import printable

HELP = "train a reconstruction model (VAE, conditional, denoising, VAE-GAN) on digits, MNIST files or an image folder"
EXAMPLES = """examples:
  netgaze train reconstruct --data digits --model vae-linear --loss bce --epochs 10 --out runs/digits-vae
  netgaze train reconstruct --data digits --model vae-conv --loss mse --latent 20 --out runs/digits-convvae
  netgaze train reconstruct --data digits --model cvae --arch conv --out runs/digits-cvae
  netgaze train reconstruct --data digits --model dvae --noise 0.3 --erase 0.5 --out runs/digits-dvae
  netgaze train reconstruct --data Images/ --size 64 --model vaegan --batch-size 32 --epochs 30 --out runs/dogs-vaegan
  netgaze train reconstruct --data Images/ --size 64 --model vaegan --pixel 1 --width 16 --out runs/dogs-vaegan-px
  netgaze train reconstruct --data shapes64/ --size 64 --model vaegan --width 16 --batch-size 16 --out runs/vg
  netgaze train reconstruct --data mnist:MNIST/raw --model vae-linear --loss bce --epochs 10 --out runs/mnist-vae
  netgaze train reconstruct --data digits --out runs/digits-vae --epochs 20 --resume   # continue to epoch 20

--data is digits, mnist:FOLDER (IDX files) or an image folder (one sub-folder per class).
On MNIST, vae-linear with the defaults (784-400-20, Adam 1e-3, batch 128, BCE summed + KL) is
the classic PyTorch example; its published test loss is about 105.6 per image after 10 epochs.
Losses are per image (summed over pixels). Evaluation decodes the mean of q(z|x).
A VAE-GAN learns from updates, not pictures: on a folder of a few hundred pictures use a small
--batch-size (16) so an epoch holds enough steps; Adam at the default --lr 1e-3 trains it
(3e-4, the paper's RMSprop rate, learns far slower in the same time).
The run folder gets run.json, history.jsonl, checkpoints/epoch-NNNN.*, curves.png, log.txt."""

MODELS = ["vae-linear", "vae-conv", "cvae", "dvae", "vaegan"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="digits", help="digits | mnist:PATH | image folder (default: digits)")
    parser.add_argument("--model", default="vae-linear", choices=MODELS, help="(default: vae-linear)")
    parser.add_argument("--loss", default="bce", choices=["bce", "mse"],
                        help="pixel reconstruction loss, summed per image (default: bce; vaegan ignores it)")
    parser.add_argument("--latent", type=positive_int, default=20, help="size of z (default: 20)")
    parser.add_argument("--epochs", type=positive_int, default=10, help="train up to this epoch (default: 10)")
    parser.add_argument("--out", default=None, type=out_dir, help="run folder (default: runs/MODEL-DATA)")
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    parser.add_argument("--batch-size", type=batch_size, default=128, help="(default: 128)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--device", default=None, type=device,
                        help="cpu | cuda | cuda:N | mps (default: best available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--size", type=picture_side, default=None,
                        help="resize an image folder's pictures to SIZE x SIZE")
    arch = parser.add_argument_group("model options")
    arch.add_argument("--arch", default=None, choices=["linear", "conv"], help="cvae / dvae body (default: linear)")
    arch.add_argument("--width", type=positive_int, default=None,
                      help="conv models: channels of the first stage (default: 32)")
    arch.add_argument("--hidden", type=positive_int, default=None, help="linear models: hidden units (default: 400)")
    arch.add_argument("--noise", type=nonnegative_float, default=None, help="dvae: Gaussian noise std (default: 0.3)")
    arch.add_argument("--erase", type=fraction, default=None, help="dvae: random-erasing probability (default: 0.5)")
    arch.add_argument("--pixel", type=nonnegative_float, default=None,
                      help="vaegan: weight of a pixel squared error beside the feature loss (default: 0, the paper)")
    arch.add_argument("--feature-stage", type=nonnegative_int, default=None,
                      help="vaegan: discriminator conv stage of the feature loss (default: the last)")
    arch.add_argument("--real-label", type=fraction, default=None,
                      help="vaegan: discriminator target for real pictures, < 1 = one-sided label smoothing "
                           "(default: 1, the paper)")
    arch.add_argument("--gate-prior", action="store_const", const=True, default=None,
                      help="vaegan: the equilibrium gates also read the discriminator's loss on prior samples "
                           "(better samples on digits, slower reconstructions on small folders)")


def _model_args(args: argparse.Namespace) -> dict:
    from netgaze.lab.models import builder_parameters

    accepted = builder_parameters(args.model)
    options = {}
    for key in ("arch", "width", "hidden", "noise", "erase", "pixel", "feature_stage", "real_label", "gate_prior"):
        value = getattr(args, key)
        if value is None:
            continue
        if key not in accepted:
            flag = key.replace("_", "-")
            raise UserError(f"--{flag} does not apply to {args.model} (its options: {', '.join(accepted)})")
        options[key] = value
    return options


def run(args: argparse.Namespace) -> int:
    from netgaze.lab.reconstruct import train_reconstruction

    out = args.out or f"runs/{args.model}-{args.data.replace(':', '-').strip('/').replace('/', '-')}"
    data_options = {"size": args.size} if args.size is not None else {}
    run_ = train_reconstruction(data=args.data, model=args.model, loss=args.loss, latent=args.latent,
                                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, out=out,
                                seed=args.seed, resume=args.resume, model_args=_model_args(args),
                                data_options=data_options, device=args.device, progress=not args.quiet)
    last = run_.history[-1] if run_.history else {}
    summary = "  ".join(f"{k} {last[k]:.4f}" for k in ("test_loss", "test_recon", "test_kl", "test_pixel_mse")
                        if k in last)
    print(printable(f"{run_.path}: epoch {run_.epoch}  {summary} (per image)"))
    return 0
