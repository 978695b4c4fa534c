"""netgaze study: Grad-CAM across layers, models or epochs of trained runs."""
from __future__ import annotations

import argparse

from netgaze.cli.common import UserError, existing_dir

HELP = "run a study on run folders: layers (S1), models (S2) or epochs (S3)"
EXAMPLES = """examples:
  netgaze study layers runs/shapes-cnn --images 6
  netgaze study models runs/cnn runs/cnn-bn runs/cnn-robust
  netgaze study epochs runs/shapes-cnn --images 4
The figures and a JSON of the numbers go to the (first) run's artifacts/ folder, where
`netgaze report` finds them.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=["layers", "models", "epochs"], help="which comparison")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folder(s); several for `models`")
    parser.add_argument("--images", type=int, default=6, help="pictures in the figures (default 6)")
    parser.add_argument("--eval", type=int, default=128, help="test pictures behind the numbers (models, epochs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the picture pick")
    parser.add_argument("--out", help="output folder (default: the run's artifacts/)")


def run(args: argparse.Namespace) -> int:
    from netgaze import studies

    for path in args.runs:
        existing_dir(path)
    if args.study != "models" and len(args.runs) != 1:
        raise UserError(f"`study {args.study}` takes one run folder, got {len(args.runs)}")
    if args.study == "layers":
        result = studies.layers_study(args.runs[0], n_images=args.images, seed=args.seed, out=args.out)
    elif args.study == "models":
        result = studies.models_study(args.runs, n_images=args.images, seed=args.seed, n_eval=args.eval, out=args.out)
    else:
        result = studies.epochs_study(args.runs[0], n_images=args.images, seed=args.seed, n_eval=args.eval, out=args.out)
    for path in [*result.figures, result.path]:
        print(path)
    return 0
