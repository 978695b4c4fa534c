"""``netgaze train segment``: train an FCN (``netgaze.lab.segment.train_segmentation``)."""
from __future__ import annotations

import argparse

from netgaze.cli.parsing import seed
from netgaze.cli.parsing import (UserError, batch_size, device, existing_file, nonnegative_int, out_dir,
                                 picture_count, picture_side, positive_float, positive_int)
from netgaze.errors import printable

HELP = "train an FCN-32s/16s/8s segmentation model on shapes masks or a VOC-style folder"
EXAMPLES = """examples:
  netgaze train segment --data shapes --encoder simple --decoder fcn8 --epochs 8 --out runs/fcn8-simple
  netgaze train segment --data shapes --encoder simple --decoder fcn32 --epochs 8 --out runs/fcn32-simple
  netgaze train segment --data VOC2012/ --encoder vgg16 --decoder fcn8 --weights vgg16-397923af.pth --size 320 --out runs/voc-fcn8
  netgaze train segment --data shapes --encoder alexnet --decoder fcn16 --allow-random-init --fc-channels 512 --out runs/fcn16-alex
  netgaze train segment --data shapes --decoder fcn8 --out runs/fcn8-simple --epochs 12 --resume   # continue to epoch 12

--data is shapes (embedded: background + one class per shape) or a VOC-style folder
(JPEGImages/, SegmentationClass/ palette PNGs, ImageSets/Segmentation/{train,val}.txt; label 255 ignored).
vgg16/alexnet read torchvision's ImageNet weights from the torch hub cache or --weights FILE; nothing is downloaded.
The run folder gets run.json, history.jsonl (pixel_acc, mean_acc, mean_iou), checkpoints, curves.png,
artifacts/predictions.png."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="shapes", help="shapes | VOC-style folder PATH (default: shapes)")
    parser.add_argument("--encoder", default="simple", choices=["simple", "vgg16", "alexnet"],
                        help="encoder (default: simple)")
    parser.add_argument("--decoder", default="fcn8", choices=["fcn32", "fcn16", "fcn8"], help="decoder (default: fcn8)")
    parser.add_argument("--epochs", type=positive_int, default=8, help="train up to this epoch (default: 8)")
    parser.add_argument("--out", default=None, type=out_dir, help="run folder (default: runs/DECODER-ENCODER-DATA)")
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    parser.add_argument("--batch-size", type=batch_size, default=32, help="per process (default: 32)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="Adam learning rate (default: 3e-3 simple, 1e-4 vgg16/alexnet)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--device", default=None, type=device,
                        help="cpu | cuda | cuda:N | mps (default: best available)")
    parser.add_argument("--workers", type=nonnegative_int, default=0, help="data loader processes (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    pretrained = parser.add_argument_group("vgg16 / alexnet encoders")
    pretrained.add_argument("--weights", default=None, type=existing_file, help="torchvision ImageNet weights file "
                            "(default: vgg16-397923af.pth / alexnet-owt-7be5be79.pth in the torch hub cache)")
    pretrained.add_argument("--allow-random-init", action="store_true",
                            help="train from random weights when no ImageNet weights file is found")
    pretrained.add_argument("--fc-channels", type=positive_int, default=None,
                            help="width of fc6/fc7 (default 4096, the only width that takes ImageNet fc weights)")
    data = parser.add_argument_group("data")
    data.add_argument("--n", type=picture_count, default=None, help="shapes: training pictures (default: 2000)")
    data.add_argument("--size", type=picture_side, default=None,
                      help="picture size in pixels (shapes default 64, VOC 256)")


def run(args: argparse.Namespace) -> int:
    from netgaze.lab.segment import train_segmentation

    if args.encoder == "simple" and (args.weights or args.allow_random_init):
        raise UserError("--weights and --allow-random-init apply to the vgg16 and alexnet encoders")
    if args.n is not None and args.data != "shapes":
        raise UserError(f"--n applies to --data shapes, not {args.data}")
    data_options = {k: v for k, v in [("n", args.n), ("size", args.size)] if v is not None}
    run_ = train_segmentation(data=args.data, encoder=args.encoder, decoder=args.decoder, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, out=args.out, seed=args.seed,
                              resume=args.resume, weights=args.weights, allow_random_init=args.allow_random_init,
                              fc_channels=args.fc_channels, data_options=data_options, device=args.device,
                              workers=args.workers, progress=not args.quiet)
    last = run_.history[-1] if run_.history else {}
    summary = "  ".join(f"{k} {last[k]:.4f}" for k in ("pixel_acc", "mean_acc", "mean_iou", "test_loss") if k in last)
    print(printable(f"{run_.path}: epoch {run_.epoch}  {summary}"))
    return 0
