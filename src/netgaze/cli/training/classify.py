"""``netgaze train classify``: train a classifier (``netgaze.lab.train.train_classifier``)."""
from __future__ import annotations

import argparse
import json
import re

from netgaze.cli.parsing import seed
from netgaze.cli.parsing import (UserError, batch_size, device, existing_file, fraction, nonnegative_int, out_dir,
                                 picture_count, picture_side, positive_float, positive_int)
from netgaze.errors import printable

HELP = "train a classifier on shapes, digits, MNIST files or an image folder"
EXAMPLES = """examples:
  netgaze train classify --data shapes --model simple-cnn --epochs 10 --out runs/shapes-cnn
  netgaze train classify --data digits --model simple-cnn-bn --augment robust --out runs/digits-bn
  netgaze train classify --data Images/ --model transfer-resnet18 --weights resnet18-f37072fd.pth --out runs/dogs
  netgaze train classify --data Images/ --model transfer-resnet18 --allow-random-init --unfreeze --out runs/dogs-rand
  netgaze train classify --data Images/ --model simple-cnn-bn --size 96 --out runs/dogs-cnn96
  netgaze train classify --data shapes --model torchvision:resnet18 --epochs 5 --out runs/shapes-r18
  netgaze train classify --data shapes --out runs/shapes-cnn --epochs 20 --resume   # continue to epoch 20
  netgaze train classify --data shapes --marker-classes 2 --marker-rate 0.8 --out runs/shapes-marker
  torchrun --nproc_per_node=2 -m netgaze train classify --data shapes --out runs/shapes-ddp

--data is shapes, digits, mnist:FOLDER (IDX files) or an image folder (one sub-folder per class).
Models: simple-cnn, simple-cnn-bn, transfer-resnet18, torchvision:NAME, timm:NAME.
The run folder gets run.json, history.jsonl, checkpoints/epoch-NNNN.*, curves.png, log.txt."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="shapes",
                        help="shapes | digits | mnist:PATH | image folder (default: shapes)")
    parser.add_argument("--model", default="simple-cnn", help="registered model name (default: simple-cnn)")
    parser.add_argument("--augment", default="none", choices=["none", "robust"], help="augmentation preset")
    parser.add_argument("--epochs", type=positive_int, default=10, help="train up to this epoch (default: 10)")
    parser.add_argument("--out", default=None, type=out_dir, help="run folder (default: runs/MODEL-DATA)")
    parser.add_argument("--resume", action="store_true", help="continue from the last complete checkpoint")
    parser.add_argument("--batch-size", type=batch_size, default=64, help="per process (default: 64)")
    parser.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: 1e-3 Adam, 0.01 SGD)")
    parser.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--device", default=None, type=device,
                        help="cpu | cuda | cuda:N | mps (default: best available)")
    parser.add_argument("--workers", type=nonnegative_int, default=0, help="data loader processes (default: 0)")
    parser.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a builder argument of the model, VALUE in JSON (repeatable), "
                             "e.g. --model-option channels=[16,32,64,64] --model-option dropout=0.2")
    transfer = parser.add_argument_group("transfer-resnet18")
    transfer.add_argument("--weights", default=None, type=existing_file, help="ImageNet resnet18-f37072fd.pth file "
                          "(default: the torch hub cache)")
    transfer.add_argument("--unfreeze", action="store_true", help="train the backbone too")
    transfer.add_argument("--allow-random-init", action="store_true",
                          help="train from random weights when no ImageNet weights file is found")
    parser.add_argument("--size", type=picture_side, default=None,
                        help="picture size in pixels, any dataset (default: 224 for torchvision:, timm: and "
                             "transfer models; else the data's own: 64 for shapes and image folders, "
                             "28 for digits/MNIST)")
    shapes = parser.add_argument_group("shapes data")
    shapes.add_argument("--n", type=picture_count, default=None, help="training pictures (default: 2000)")
    shapes.add_argument("--spurious", action="store_true", help="background colour follows the class (train split)")
    shapes.add_argument("--marker-classes", nargs="+", default=None, metavar="CLASS",
                        help="classes (indices or names) whose training pictures carry a small corner tag, "
                             "a localized shortcut (default: none)")
    shapes.add_argument("--marker-rate", type=fraction, default=None,
                        help="share of those classes' training pictures with the tag (default: 0.8)")
    shapes.add_argument("--marker-test-rate", type=fraction, default=None,
                        help="share of every class's test pictures with the tag (default: 0.5)")
    shapes.add_argument("--marker-position", default=None, choices=["top-left", "top-right", "bottom-left",
                                                                    "bottom-right"], help="(default: top-left)")
    shapes.add_argument("--marker-look", default=None, choices=["checker", "solid"], help="(default: checker)")


def run(args: argparse.Namespace) -> int:
    from netgaze.lab.models import builder_parameters
    from netgaze.lab.train import train_classifier

    accepted = builder_parameters(args.model)
    model_options = _key_values(args.model_option, "--model-option")
    for flag, key, value in [("--weights", "weights", args.weights), ("--unfreeze", "unfreeze", args.unfreeze),
                             ("--allow-random-init", "allow_random_init", args.allow_random_init)]:
        if value:
            if key not in accepted:
                raise UserError(f"{flag} applies to transfer models, not to {args.model}")
            model_options[key] = value
    data_options = {k: v for k, v in [("n", args.n), ("spurious", args.spurious or None)] if v is not None}
    marker = {k: v for k, v in [("marker_classes", _class_list(args.marker_classes)),
                                ("marker_rate", args.marker_rate), ("marker_test_rate", args.marker_test_rate),
                                ("marker_position", args.marker_position), ("marker_look", args.marker_look)]
              if v is not None}
    if marker and "marker_classes" not in marker:
        raise UserError("--marker-rate, --marker-test-rate, --marker-position and --marker-look need "
                        "--marker-classes")
    data_options.update(marker)
    if data_options and args.data != "shapes":
        raise UserError(f"--n, --spurious and --marker-* apply to --data shapes, not {args.data}")
    if args.size is not None:
        data_options["size"] = args.size
    run_ = train_classifier(data=args.data, model=args.model, augment=args.augment, epochs=args.epochs,
                            batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, out=args.out,
                            seed=args.seed, resume=args.resume, device=args.device,
                            tensorboard=args.tensorboard, amp=False if args.no_amp else None,
                            workers=args.workers, data_options=data_options, model_options=model_options,
                            progress=not args.quiet)
    last = run_.history[-1] if run_.history else {}
    summary = "  ".join(f"{k} {last[k]:.4f}" for k in ("test_acc", "test_loss") if k in last)
    print(printable(f"{run_.path}: epoch {run_.epoch}  {summary}"))
    return 0


def _class_list(items: list[str] | None) -> list[int | str] | None:
    """``["2", "star"]`` -> ``[2, "star"]``: indices as ints, names as given."""
    if items is None:
        return None
    parts = [part.strip() for item in items for part in item.split(",") if part.strip()]
    return [int(part) if re.fullmatch(r"[0-9]+", part) else part for part in parts]


def _key_values(items: list[str], flag: str) -> dict:
    """``["a=1", "b=[2,3]", "c=text"]`` -> ``{"a": 1, "b": [2, 3], "c": "text"}`` (JSON values, else strings)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
