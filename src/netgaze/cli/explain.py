"""netgaze explain: explain picture files with one method; writes overlay PNGs."""
from __future__ import annotations

import argparse

from netgaze.cli.common import UserError

HELP = "explain pictures with Grad-CAM (or another method) and write overlay PNGs"
EXAMPLES = """examples:
  netgaze explain --run runs/shapes-cnn --images cat.jpg dog.png --method gradcam --out explained/
  netgaze explain --run runs/shapes-cnn --images a.png --method guided_gradcam --layer features.conv3 --target star
  netgaze explain --model torchvision:resnet18 --weights resnet18-f37072fd.pth --images dog.jpg \\
      --method gradcam --layer layer4 --out explained/
methods: gradcam gradcam_pp hirescam layercam xgradcam scorecam guided_gradcam
         saliency guided_backprop smoothgrad integrated_gradients
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run folder made by `netgaze train` (its last checkpoint)")
    source.add_argument("--model", help="torchvision:NAME, e.g. torchvision:resnet18 (use with --weights)")
    parser.add_argument("--weights", help="weights for --model: .pth/.pt (read with weights_only=True) or .safetensors")
    parser.add_argument("--images", nargs="+", required=True, metavar="PICTURE", help="picture files to explain")
    parser.add_argument("--method", default="gradcam", help="explanation method (default gradcam)")
    parser.add_argument("--layer", help="dotted layer name (or -1 = last conv layer); default: the last conv stage")
    parser.add_argument("--target", help="class name or index to explain; default: each picture's top class")
    parser.add_argument("--size", type=int, default=224, help="picture size for --model (default 224)")
    parser.add_argument("--out", default="explanations", help="output folder (default ./explanations)")


def run(args: argparse.Namespace) -> int:
    from netgaze.studies.files import ExplainInputError, check_method, explain_files, load_run_model, load_torchvision

    try:
        check_method(args.method)
        if args.run:
            if args.weights:
                raise UserError("--weights goes with --model; a run folder has its own checkpoints")
            loaded = load_run_model(args.run)
        else:
            if not args.model.startswith("torchvision:"):
                raise UserError(f"--model takes torchvision:NAME (e.g. torchvision:resnet18), got {args.model!r}")
            loaded = load_torchvision(args.model.split(":", 1)[1], args.weights, args.size)
        written = explain_files(loaded, args.images, args.method, args.layer, args.target, args.out)
    except ExplainInputError as err:
        raise UserError(str(err)) from None
    except ValueError as err:
        if type(err).__name__ in ("ModelError", "RunError", "DatasetError"):
            raise UserError(str(err).splitlines()[0]) from None
        raise
    for path, label, confidence in written:
        print(f"{path}  predicted {label} ({confidence:.0%})")
    return 0
