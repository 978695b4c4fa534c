"""netgaze study: Grad-CAM across layers, models or epochs of trained runs."""
from __future__ import annotations

import argparse

from netgaze.cli.common import UserError, nonnegative_int, out_dir, positive_int, run_folder

HELP = ("run a study on run folders: layers (S1), models (S2), epochs (S3), latent (S8, VAE runs), "
        "area (area explanations of a VAE or FCN run)")
EXAMPLES = """examples:
  netgaze study layers runs/shapes-cnn --images 6
  netgaze study models runs/cnn runs/cnn-bn runs/cnn-robust
  netgaze study epochs runs/shapes-cnn --images 4
  netgaze study latent runs/vae           # traversal, interpolation, imputation, embedding
  netgaze study area runs/vae             # area guided backprop / Grad-CAM of reconstructions
  netgaze study area runs/fcn             # the same for one class of a segmentation map
  netgaze study layers moved/dogs --data /mnt/data/Images   # the run's data moved
The figures and a JSON of the numbers go to the (first) run's artifacts/ folder, where
`netgaze report` finds them.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=["layers", "models", "epochs", "latent", "area"], help="which comparison")
    parser.add_argument("runs", nargs="+", metavar="RUN", type=run_folder, help="run folder(s); several for `models`")
    parser.add_argument("--images", type=positive_int, default=6, help="pictures in the figures (default 6)")
    parser.add_argument("--eval", type=nonnegative_int, default=128,
                        help="test pictures behind the numbers (models, epochs; 0 = the figure's)")
    parser.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the picture pick")
    parser.add_argument("--out", type=out_dir, help="output folder (default: the run's artifacts/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--epoch", type=nonnegative_int,
                        help="the checkpoint to study (default: the last; not for `epochs`)")
    parser.add_argument("--data", metavar="SPEC",
                        help="where the runs' data is now, when it moved (default: from run.json)")


def run(args: argparse.Namespace) -> int:
    from netgaze import studies
    from netgaze.lab.runs import load_run

    if args.study != "models" and len(args.runs) != 1:
        raise UserError(f"`study {args.study}` takes one run folder, got {len(args.runs)}")
    if args.study in ("latent", "area"):
        return _run_reconstruction_or_segment_study(args)
    if args.epoch is not None and args.study == "epochs":
        raise UserError("`study epochs` goes through every checkpoint; --epoch does not apply")
    runs = [load_run(path, args.epoch, data=args.data) for path in args.runs]
    if args.study == "layers":
        result = studies.layers_study(runs[0], n_images=args.images, seed=args.seed, out=args.out)
    elif args.study == "models":
        result = studies.models_study(runs, n_images=args.images, seed=args.seed, n_eval=args.eval, out=args.out,
                                      progress=not args.quiet)
    else:
        result = studies.epochs_study(runs[0], n_images=args.images, seed=args.seed, n_eval=args.eval, out=args.out,
                                      progress=not args.quiet)
    for path in [*result.figures, result.path]:
        print(path)
    return 0


def _run_reconstruction_or_segment_study(args: argparse.Namespace) -> int:
    from netgaze.lab.runs import load_run
    from netgaze.studies.common import require_task

    run = load_run(args.runs[0], args.epoch, data=args.data)
    if args.study == "latent":
        require_task(run, ("reconstruct",), "`study latent`")
        from netgaze.studies.latent import latent_study
        results = list(latent_study(run).values())
    elif run.task == "reconstruct":
        from netgaze.studies.area import area_study
        results = [area_study(run, n_show=args.images)]
    elif run.task == "segment":
        from netgaze.studies.area_segments import area_segments_study
        results = [area_segments_study(run, n_show=args.images, seed=args.seed)]
    else:
        require_task(run, ("reconstruct", "segment"), "`study area`")
    for result in results:
        for path in [*result.figures, result.path]:
            print(path)
    return 0
