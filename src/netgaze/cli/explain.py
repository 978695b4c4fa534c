"""netgaze explain: explain picture files with one method; writes overlay PNGs."""
from __future__ import annotations

import argparse

from netgaze.cli.common import UserError, load_model_argument, user_errors

HELP = "explain pictures with Grad-CAM (or another method) and write overlay PNGs"
EXAMPLES = """examples:
  netgaze explain --run runs/shapes-cnn --images cat.jpg dog.png --method gradcam --out explained/
  netgaze explain --run runs/shapes-cnn --images a.png --method guided_gradcam --layer features.conv3 --target star
  netgaze explain --model torchvision:resnet18 --weights resnet18-f37072fd.pth --images dog.jpg \\
      --method gradcam --layer layer4 --out explained/
  netgaze explain --run runs/shapes-cnn --all --split test --method gradcam --layer -1 --out expl/
  torchrun --nproc_per_node=2 -m netgaze explain --run runs/shapes-cnn --all --out expl/   # sharded
  (--all writes one safetensors shard per --shard-size pictures plus index.json; reruns skip
   finished shards; ng.load_explanations("expl/") reads them back)
methods: gradcam gradcam_pp hirescam layercam xgradcam scorecam guided_gradcam
         saliency guided_backprop smoothgrad integrated_gradients
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run folder made by `netgaze train` (its last checkpoint)")
    source.add_argument("--model", help="torchvision:NAME, e.g. torchvision:resnet18 (use with --weights)")
    parser.add_argument("--weights", help="weights for --model: .pth/.pt (read with weights_only=True) or .safetensors")
    pictures = parser.add_mutually_exclusive_group(required=True)
    pictures.add_argument("--images", nargs="+", metavar="PICTURE", help="picture files to explain")
    pictures.add_argument("--all", action="store_true", help="explain a whole dataset (with --run) into shards")
    parser.add_argument("--data", help="with --all: dataset spec (default: the run's own dataset)")
    parser.add_argument("--split", default="test", help="with --all: train or test (default test)")
    parser.add_argument("--shard-size", type=int, default=256, help="with --all: pictures per shard (default 256)")
    parser.add_argument("--batch-size", type=int, default=32, help="with --all: pictures per pass (default 32)")
    parser.add_argument("--method", default="gradcam", help="explanation method (default gradcam)")
    parser.add_argument("--layer", help="dotted layer name, or -1 = the last spatial stage's output, -2 = the stage before; default: -1")
    parser.add_argument("--target", help="class name or index to explain; default: each picture's top class")
    parser.add_argument("--size", type=int, default=224, help="picture size for --model (default 224)")
    parser.add_argument("--out", default="explanations", help="output folder (default ./explanations)")


def run(args: argparse.Namespace) -> int:
    from netgaze.studies.files import check_method, explain_files

    with user_errors():
        check_method(args.method)
        if args.all:
            return _explain_all(args)
        loaded = load_model_argument(args.run, args.model, args.weights, args.size)
        written = explain_files(loaded, args.images, args.method, args.layer, args.target, args.out)
    for path, label, confidence in written:
        print(f"{path}  predicted {label} ({confidence:.0%})")
    return 0


def _explain_all(args: argparse.Namespace) -> int:
    """``--all``: every picture of a dataset, sharded; torchrun-aware (see ``explain_dataset``)."""
    from netgaze.explain_dataset import explain_dataset
    from netgaze.lab.data import load_dataset
    from netgaze.lab.runs import load_run

    if not args.run:
        raise UserError("--all explains a run's dataset: give --run (and optionally --data)")
    run = load_run(args.run)
    dataset = (load_dataset(args.data, args.split) if args.data else run.dataset(args.split))
    target = int(args.target) if args.target is not None and args.target.isdigit() else \
        ("label" if args.target == "label" else None)
    if args.target is not None and target is None:
        raise UserError(f"--all takes --target INDEX or --target label, got {args.target!r}")
    layer = int(args.layer) if args.layer is not None and args.layer.lstrip("-").isdigit() else (args.layer or -1)
    index = explain_dataset(run.model, dataset, args.method, layer, target, args.out,
                            shard_size=args.shard_size, batch_size=args.batch_size)
    print(index)
    return 0
