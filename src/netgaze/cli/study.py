"""netgaze study: Grad-CAM across layers, models or epochs of trained runs."""
from __future__ import annotations

import argparse
import re

from netgaze.cli.parsing import seed
from netgaze.cli.parsing import OUTPUT_HELP, UserError, nonnegative_int, out_dir, output_entry, positive_int, run_folder
from netgaze.errors import printable

DATASET_STUDIES = ("strategies", "dissect", "top-examples", "concepts")
HELP = ("run a study on run folders: layers (S1), models (S2), epochs (S3), latent (S8, VAE runs), "
        "area (area explanations of a VAE or FCN run), strategies / dissect / top-examples / concepts (classifiers)")
EXAMPLES = """examples:
  netgaze study layers runs/shapes-cnn --images 6
  netgaze study models runs/cnn runs/cnn-bn runs/cnn-robust
  netgaze study epochs runs/shapes-cnn --images 4
  netgaze study latent runs/vae           # traversal, interpolation, imputation, embedding
  netgaze study area runs/vae             # area guided backprop / Grad-CAM of reconstructions
  netgaze study area runs/fcn             # the same for one class of a segmentation map
  netgaze study layers moved/dogs --data /mnt/data/Images   # the run's data moved
  netgaze study strategies runs/shapes-marker --classes triangle   # SpRAy: clusters of Grad-CAM maps
  netgaze study dissect runs/shapes-cnn   # Network Dissection: units vs object/background/marker masks
  netgaze study top-examples runs/shapes-cnn --layer features.relu3 --k 9
  netgaze study concepts runs/shapes-marker   # reference pictures per channel, concept atlas per class
  netgaze study epochs runs/my-model --output scores   # a model that returns {"scores": ..., ...}
The figures and a JSON of the numbers go to the (first) run's artifacts/ folder, where
`netgaze report` finds them.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", choices=["layers", "models", "epochs", "latent", "area", *DATASET_STUDIES],
                        help="which comparison or dataset-wide analysis")
    parser.add_argument("runs", nargs="+", metavar="RUN", type=run_folder, help="run folder(s); several for `models`")
    parser.add_argument("--images", type=positive_int, default=6, help="pictures in the figures (default 6)")
    parser.add_argument("--eval", type=nonnegative_int, default=128,
                        help="test pictures behind the numbers (models, epochs; 0 = the figure's)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the picture pick")
    parser.add_argument("--out", type=out_dir, help="output folder (default: the run's artifacts/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--epoch", type=nonnegative_int,
                        help="the checkpoint to study (default: the last; not for `epochs`)")
    parser.add_argument("--data", metavar="SPEC",
                        help="where the runs' data is now, when it moved (default: from run.json)")
    parser.add_argument("--output", type=output_entry, metavar="KEY", default=None,
                        help=OUTPUT_HELP + " (every study but latent and area)")
    dataset = parser.add_argument_group("strategies, dissect, top-examples, concepts")
    dataset.add_argument("--split", default="test", choices=["train", "test"], help="pictures analysed (default test)")
    dataset.add_argument("--classes", nargs="+", default=None,
                         help="strategies / concepts: class names or indices (default all)")
    dataset.add_argument("--method", default="gradcam", help="strategies: explanation method (default gradcam)")
    dataset.add_argument("--layer", default=None,
                         help="strategies / top-examples / concepts: layer (default the last stage)")
    dataset.add_argument("--layers", nargs="+", default=None, help="dissect: layers (default every conv layer)")
    dataset.add_argument("--clusters", type=positive_int, default=None, help="strategies: clusters per class "
                                                                              "(default: chosen by the eigengap)")
    dataset.add_argument("--maps", default=None, type=out_dir,
                         help="strategies: keep explanation shards here (resumable)")
    dataset.add_argument("--k", type=positive_int, default=9,
                         help="top-examples / concepts: pictures per channel (default 9)")
    dataset.add_argument("--steps", type=nonnegative_int, default=64,
                         help="top-examples / concepts: activation-maximization steps shown beside them (0: none)")


def run(args: argparse.Namespace) -> int:
    from netgaze import studies
    from netgaze.lab.runs import check_finite_weights, load_run

    if args.study != "models" and len(args.runs) != 1:
        raise UserError(f"`study {args.study}` takes one run folder, got {len(args.runs)}")
    if args.study in DATASET_STUDIES:
        return _run_dataset_study(args)
    if args.study in ("latent", "area"):
        if args.output is not None:
            raise UserError(f"`study {args.study}` explains the lab's VAE / FCN runs; --output does not apply")
        return _run_reconstruction_or_segment_study(args)
    if args.epoch is not None and args.study == "epochs":
        raise UserError("`study epochs` goes through every checkpoint; --epoch does not apply")
    runs = [load_run(path, args.epoch, data=args.data) for path in args.runs]
    for run in runs:
        check_finite_weights(run)
    if args.study == "layers":
        result = studies.layers_study(runs[0], n_images=args.images, seed=args.seed, out=args.out,
                                      output=args.output)
    elif args.study == "models":
        result = studies.models_study(runs, n_images=args.images, seed=args.seed, n_eval=args.eval, out=args.out,
                                      progress=not args.quiet, output=args.output)
    else:
        result = studies.epochs_study(runs[0], n_images=args.images, seed=args.seed, n_eval=args.eval, out=args.out,
                                      progress=not args.quiet, output=args.output)
    for path in [*result.figures, result.path]:
        print(printable(path))
    return 0


def _run_reconstruction_or_segment_study(args: argparse.Namespace) -> int:
    from netgaze.lab.runs import check_finite_weights, load_run
    from netgaze.studies.common import require_task

    run = load_run(args.runs[0], args.epoch, data=args.data)
    check_finite_weights(run)
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
            print(printable(path))
    return 0


def _run_dataset_study(args: argparse.Namespace) -> int:
    from netgaze.analyses import run_studies
    from netgaze.lab.runs import check_finite_weights, load_run

    run = load_run(args.runs[0], args.epoch, data=args.data)
    check_finite_weights(run)
    layer = args.layer if args.layer is None or not re.fullmatch(r"-?[0-9]+", args.layer) else int(args.layer)
    if args.study == "strategies":
        classes = None if args.classes is None else [int(c) if re.fullmatch(r"[0-9]+", c) else c for c in args.classes]
        path = run_studies.strategies_study(run, split=args.split, classes=classes, method=args.method, layer=layer,
                                            n_clusters=args.clusters, out=args.out, maps=args.maps, output=args.output,
                                            progress=not args.quiet)
    elif args.study == "dissect":
        path = run_studies.dissection_study(run, split=args.split, layers=args.layers, out=args.out,
                                            output=args.output, progress=not args.quiet)
    elif args.study == "concepts":
        classes = None if args.classes is None else [int(c) if c.isdigit() else c for c in args.classes]
        path = run_studies.concepts_study(run, layer=-1 if layer is None else layer, classes=classes, k=args.k,
                                          split=args.split, featureviz_steps=args.steps, out=args.out,
                                          progress=not args.quiet, output=args.output)
    else:
        path = run_studies.top_examples_study(run, layer=-1 if layer is None else layer, k=args.k, split=args.split,
                                              featureviz_steps=args.steps, out=args.out, output=args.output,
                                              progress=not args.quiet)
    print(printable(path))
    return 0
