"""netgaze explain: explain picture files with one method; writes overlay PNGs."""
from __future__ import annotations

import argparse
import re

from netgaze.cli.parsing import (UserError, add_model_arguments, batch_size, fraction, load_model_argument,
                                 nonnegative_int, out_dir, picture_side, positive_int, run_folder)
from netgaze.errors import printable
from netgaze.methods import LAYER_METHODS, METHODS

HELP = "explain pictures with Grad-CAM (or another method) and write overlay PNGs"
EXAMPLES = """examples:
  netgaze explain --run runs/shapes-cnn --images cat.jpg dog.png --method gradcam --out explained/
  netgaze explain --run runs/shapes-cnn --images a.png --method guided_gradcam --layer features.conv3 --target star
  netgaze explain --model torchvision:resnet18 --weights resnet18-f37072fd.pth --images dog.jpg \\
      --method gradcam --layer layer4 --out explained/          # ImageNet names from torchvision
  netgaze explain --model timm:convnext_tiny --weights my-10-classes.safetensors --labels classes.txt \\
      --images dog.jpg --target 3
  netgaze explain --run runs/shapes-cnn --all --split test --method gradcam --layer -1 --out expl/
  torchrun --nproc_per_node=2 -m netgaze explain --run runs/shapes-cnn --all --out expl/   # sharded
  (--all writes one safetensors shard per --shard-size pictures plus index.json; reruns skip
   finished shards; ng.load_explanations("expl/") reads them back)

segmenters and detectors (torchvision):
  netgaze explain --model torchvision:fcn_resnet50 --weights fcn_resnet50_coco-1167a1af.pth \\
      --images street.jpg --target class:person             # the class over the whole map
  netgaze explain --model torchvision:deeplabv3_mobilenet_v3_large --images a.jpg \\
      --target class:15@40,20,180,200                       # the class inside a box x0,y0,x1,y1
  netgaze explain --model torchvision:fasterrcnn_resnet50_fpn --weights fasterrcnn.pth \\
      --images street.jpg --target box:30,40,120,200:person # the detection that best matches the box
  netgaze explain --model torchvision:retinanet_resnet50_fpn --images a.jpg --target det:0 \\
      --layer backbone[0] --score-threshold 0     # FPN level '0'; random weights detect with threshold 0
  --target for a segmenter: CLASS | class:CLASS | class:CLASS@x0,y0,x1,y1 (default: the class
  predicted on most pixels, where it is predicted); for a detector: det:I | box:x0,y0,x1,y1[:CLASS]
  | CLASS (default det:0). Coordinates are pixels of the square --size picture netgaze reads.
  A layer whose output is a dict or tuple takes [key]: backbone[0], backbone[out], backbone.fpn[pool].
methods (a layer's map): """ + " ".join(LAYER_METHODS) + """
methods (per pixel): """ + " ".join(m for m in METHODS if m not in LAYER_METHODS) + """
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=run_folder, help="a run folder (its last checkpoint): made by `netgaze train`, "
                        "ng.RunWriter, a Lightning or transformers RunCallback, or ng.import_checkpoints")
    add_model_arguments(parser, source)
    parser.add_argument("--epoch", type=nonnegative_int, help="with --run: the checkpoint's epoch (default: the last)")
    pictures = parser.add_mutually_exclusive_group(required=True)
    pictures.add_argument("--images", nargs="+", metavar="PICTURE", help="picture files to explain")
    pictures.add_argument("--all", action="store_true", help="explain a whole dataset (with --run) into shards")
    parser.add_argument("--data", help="with --all: dataset spec, e.g. where the run's data is now when it "
                        "moved (default: the run's own dataset, found from run.json)")
    parser.add_argument("--split", default="test", help="with --all: train or test (default test)")
    parser.add_argument("--shard-size", type=positive_int, default=256,
                        help="with --all: pictures per shard (default 256)")
    parser.add_argument("--batch-size", type=batch_size, default=32,
                        help="with --all: pictures per pass (default 32)")
    parser.add_argument("--method", default="gradcam", help="explanation method (default gradcam)")
    parser.add_argument("--layer", help="dotted layer name, or -1 = the last spatial stage's output, -2 = the stage "
                        "before; default: -1 (a segmenter's backbone output; a detector's last backbone stage, "
                        "before the feature pyramid)")
    parser.add_argument("--target", help="class name or index to explain (default: each picture's top class); "
                        "segmenters and detectors: see below")
    parser.add_argument("--score-threshold", type=fraction, metavar="T",
                        help="detectors: keep detections scoring at least T (default: the model's own)")
    parser.add_argument("--size", type=picture_side, default=224, help="picture size for --model (default 224)")
    parser.add_argument("--out", default="explanations", type=out_dir, help="output folder (default ./explanations)")


def run(args: argparse.Namespace) -> int:
    from netgaze.studies.explain_files import check_method, explain_files

    args.method = check_method(args.method)
    if args.all:
        return _explain_all(args)
    loaded = load_model_argument(args.run, args.model, args.weights, args.size, labels=args.labels,
                                 weights_enum=args.weights_enum, command="explain", epoch=args.epoch)
    if args.score_threshold is not None:
        _set_threshold(loaded, args.score_threshold)
    if loaded.task != "classify":
        from netgaze.studies.explain_dense import explain_dense_files
        for path, what in explain_dense_files(loaded, args.images, args.method, args.layer, args.target, args.out):
            print(printable(f"{path}  explained {what}"))
        return 0
    written = explain_files(loaded, args.images, args.method, args.layer, args.target, args.out)
    for path, label, confidence in written:
        print(printable(f"{path}  predicted {label} ({confidence:.0%})"))
    return 0


def _set_threshold(loaded, threshold: float) -> None:
    if loaded.task != "detect":
        raise UserError("--score-threshold goes with a detector (torchvision:fasterrcnn_..., retinanet_..., ...)")
    holder = getattr(loaded.model, "roi_heads", loaded.model)
    holder.score_thresh = threshold


def _explain_all(args: argparse.Namespace) -> int:
    """``--all``: every picture of a dataset, sharded; torchrun-aware (see ``explain_dataset``)."""
    from netgaze.analyses.dataset_explanations import explain_dataset
    from netgaze.lab.runs import check_finite_weights, load_run
    from netgaze.studies.common import require_task

    if not args.run:
        raise UserError("--all explains a run's dataset: give --run (and optionally --data)")
    run = require_task(load_run(args.run, args.epoch, data=args.data), ("classify",), "`explain --all`")
    check_finite_weights(run)
    dataset = run.dataset(args.split)
    target = None
    if args.target is not None:
        if args.target != "label" and not re.fullmatch(r"[0-9]+", args.target):
            raise UserError(f"--all takes --target INDEX or --target label, got {args.target!r}")
        target = "label" if args.target == "label" else int(args.target)
    layer = int(args.layer) if args.layer is not None and re.fullmatch(r"-?[0-9]+", args.layer) else (args.layer or -1)
    index = explain_dataset(run.model, dataset, args.method, layer, target, args.out,
                            shard_size=args.shard_size, batch_size=args.batch_size)
    print(printable(index))
    return 0
