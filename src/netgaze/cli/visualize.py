"""netgaze visualize: what units respond to (activation maximization), filters, activation maps."""
from __future__ import annotations

import argparse
from pathlib import Path

from netgaze.cli.parsing import seed
from netgaze.cli.parsing import (UserError, add_model_arguments, batch_size, device, existing_file,
                                 load_model_argument, nonnegative_float, nonnegative_int, out_dir, picture_side,
                                 run_folder)
from netgaze.errors import printable

HELP = "render what channels or classes respond to, first-layer filters, or one picture's activation maps"
EXAMPLES = """examples:
  # class images of a digits classifier (the layer "logits" is the model's output)
  netgaze visualize --run runs/digits-cnn --layer logits --channels 0-9 --steps 256 --out viz/
  # 64 channels of vgg16's last conv layer, rendered in one batch
  netgaze visualize --model torchvision:vgg16 --weights vgg16-397923af.pth --layer features.28 \\
      --channels 0-63 --steps 256 --size 128 --out viz/
  # a timm model's stage (random weights: one warning line)
  netgaze visualize --model timm:resnet18 --layer net.layer3 --channels 0-7 --steps 64 --out viz/
  # channels 0, 3 and 10 to 15, with smoother images
  netgaze visualize --run runs/shapes-cnn --layer features.conv2 --channels 0,3,10-15 --tv 1 --out viz/
  # first-layer kernels as pictures
  netgaze visualize --run runs/shapes-cnn --filters --out viz/
  # one picture's maps in every conv layer, with the blank-channel table and plot
  netgaze visualize --run runs/shapes-cnn --activations cat.png --out viz/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=run_folder, help="a run folder (its last checkpoint): made by `netgaze train`, "
                        "ng.RunWriter, a Lightning or transformers RunCallback, or ng.import_checkpoints")
    add_model_arguments(parser, source)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--filters", action="store_true", help="draw a conv layer's kernels (default: the first)")
    mode.add_argument("--activations", metavar="PICTURE", type=existing_file,
                      help="draw every channel of every conv layer for a picture")
    parser.add_argument("--layer", help="layer to render (dotted name, or 'logits' for class units); with "
                                        "--filters the conv layer; with --activations a comma list (default: all conv)")
    parser.add_argument("--channels", help="units to render: '0-15', '0,3,7' or '0-3,10' (default: all)")
    parser.add_argument("--steps", type=nonnegative_int, default=256, help="optimisation steps (default 256)")
    parser.add_argument("--size", type=picture_side,
                        help="image size (default: the run's picture size; 128 for --model)")
    parser.add_argument("--objective", choices=["channel", "neuron"], default="channel",
                        help="maximise a channel's mean or its centre neuron (default channel)")
    parser.add_argument("--param", choices=["fourier", "pixel"], default="fourier",
                        help="image parameterization (default fourier, decorrelated colour)")
    parser.add_argument("--tv", type=nonnegative_float, default=0.0,
                        help="weight of the total-variation penalty (default 0)")
    parser.add_argument("--l1", type=nonnegative_float, default=0.0,
                        help="weight of an L1 pull towards black (default 0)")
    parser.add_argument("--batch-size", type=batch_size, help="render at most this many units at once (memory)")
    parser.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="cpu", type=device, help="torch device (default cpu)")
    parser.add_argument("--out", default="visualizations", type=out_dir,
                        help="output folder (default ./visualizations)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


MAX_UNITS = 4096  # units rendered by one command (each is a picture optimised in memory)


def parse_units(text: str) -> list[int]:
    """'0-3,7,10-11' -> [0, 1, 2, 3, 7, 10, 11]."""
    units: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if high < low or low < 0:
                    raise ValueError
                if len(units) + high - low + 1 > MAX_UNITS:    # counted before the list is built
                    raise UserError(f"--channels names more than {MAX_UNITS:,} units; render them in parts")
                units.extend(range(low, high + 1))
            elif part:
                units.append(int(part))
        except UserError:
            raise
        except ValueError:
            raise UserError(f"--channels: cannot read {part!r}; write e.g. '0-15' or '0,3,7'") from None
    if not units:
        raise UserError("--channels names no unit")
    return units


def _load(args: argparse.Namespace):
    return load_model_argument(args.run, args.model, args.weights, args.size or 128, tasks=("classify", "segment"),
                               labels=args.labels, weights_enum=args.weights_enum, command="visualize")


def run(args: argparse.Namespace) -> int:
    import torch

    from netgaze import viz
    from netgaze.featureviz import activation_maps, filter_grid, l1, total_variation, visualize

    out = Path(args.out)
    units = parse_units(args.channels) if args.channels else None   # a bad range is refused before any loading
    loaded = _load(args)
    model = loaded.model.to(args.device)
    if args.filters:
        path = viz.save_png(filter_grid(model, args.layer), out / f"filters-{args.layer or 'first'}.png")
        print(printable(path))
        return 0
    if args.activations:
        from netgaze.studies.explain_files import read_pictures
        picture = read_pictures([args.activations], args.size or loaded.size, loaded.channels)[0]
        layers = [name.strip() for name in args.layer.split(",")] if args.layer else None
        result = activation_maps(model, picture, layers, device=args.device)
        for stat in result.stats:
            viz.save_png(result.grid(stat.name), out / f"activations-{stat.name}.png")
        result.plot(out / "sparsity.png")
        (out / "sparsity.txt").write_text(result.table() + "\n")
        print(printable(result.table()))
        print(printable(f"maps and sparsity plot written to {out}/"))
        return 0
    if not args.layer:
        raise UserError("--layer is required to render units (e.g. --layer logits or --layer features.28)")
    regularizer = None
    if args.tv:
        regularizer = args.tv * total_variation()
    if args.l1:
        regularizer = args.l1 * l1(0.0) + regularizer if regularizer is not None else args.l1 * l1(0.0)
    path = out / f"{args.layer}-{args.objective}.png"
    try:
        images = visualize(model, args.layer, units, steps=args.steps, size=args.size or loaded.size,
                           objective=args.objective, regularizer=regularizer, param=args.param,
                           batch_size=args.batch_size, random_state=args.seed, device=args.device, out=path,
                           progress=not args.quiet)
    except IndexError as err:
        raise UserError(f"--channels: a unit is out of range for layer {args.layer!r} ({err})") from None
    torch.save(images.cpu(), out / f"{args.layer}-{args.objective}.pt")
    print(printable(f"{path}  ({images.shape[0]} images, {images.shape[-1]}x{images.shape[-2]})"))
    return 0
