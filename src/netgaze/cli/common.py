"""Helpers shared by the subcommands."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from netgaze.errors import UserError


def existing_file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no such file: {path}")
    return p


def existing_dir(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"no such folder: {path}")
    return p


@contextmanager
def user_errors():
    """Turn the library's input errors (bad pictures, runs, models, data) into ``UserError``."""
    from netgaze.studies.files import ExplainInputError

    try:
        yield
    except ExplainInputError as err:
        raise UserError(str(err)) from None
    except ValueError as err:
        if type(err).__name__ in ("ModelError", "RunError", "DatasetError"):
            raise UserError(str(err).splitlines()[0]) from None
        raise


MODEL_HELP = ("torchvision:NAME (a classifier, segmenter or detector, e.g. torchvision:resnet18, "
              "torchvision:fcn_resnet50, torchvision:fasterrcnn_resnet50_fpn) or timm:NAME (e.g. timm:convnext_tiny); "
              "random weights without --weights")


def add_model_arguments(parser, source) -> None:
    """``--model``, ``--weights``, ``--weights-enum`` and ``--labels`` (``source``: the --run/--model group)."""
    source.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--weights", help="weights for --model: a state dict, .pth/.pt (read with weights_only=True) "
                        "or .safetensors; the number of classes is read from it")
    parser.add_argument("--weights-enum", metavar="MEMBER",
                        help="torchvision weights whose class names to use, e.g. IMAGENET1K_V2 (default: found from "
                        "the weights file's name, or its number of classes)")
    parser.add_argument("--labels", metavar="FILE", help="class names for --model, one per line")


def load_model_argument(run: str | None, model: str | None, weights: str | None, size: int, *,
                        labels: str | None = None, weights_enum: str | None = None, command: str = ""):
    """The model of ``--run FOLDER`` or ``--model torchvision:NAME | timm:NAME [--weights FILE]``.

    A named model without weights prints ONE warning line on stderr: its weights are
    random and its classes are shown as indices.
    """
    from netgaze.studies.files import load_run_model
    from netgaze.studies.named_models import load_named_model

    with user_errors():
        if run:
            if weights or labels or weights_enum:
                raise UserError("--weights, --weights-enum and --labels go with --model; a run folder has its own")
            return load_run_model(run)
        loaded = load_named_model(model, weights, labels=labels, weights_enum=weights_enum, size=size)
    if loaded.random_weights:
        names = "" if command == "embed" else "; classes from --labels" if labels else "; classes shown as indices"
        print(f"netgaze {command}: warning: {model} has random weights (no --weights){names}", file=sys.stderr)
    return loaded
