"""What every subcommand shares: a parser whose errors are one line, and the argument checks.

Every option is checked where it is parsed, by the ``type=`` functions below
(``positive_int``, ``positive_float``, ``device``, ``out_dir`` ...): a bad value ends as one
line ``netgaze CMD: error: argument --epochs: ...`` and exit status 2 before any work starts
or anything is written. Mistakes found later (a corrupt run folder, a picture that cannot be
read) are ``netgaze.errors.UserError`` raised by the library; ``netgaze.cli.main`` prints them
as one line with the same exit status.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import NoReturn

from netgaze.errors import UserError, one_line, printable

__all__ = ["OneLineParser", "UserError", "positive_int", "nonnegative_int", "positive_float", "at_most",
           "picture_side", "picture_count", "process_count", "batch_size",
           "nonnegative_float", "finite_float", "seed", "perplexity", "fraction", "device", "existing_file", "existing_dir", "run_folder",
           "out_dir", "out_file", "load_model_argument", "output_entry", "OUTPUT_HELP"]

_INT = re.compile(r"[+-]?[0-9]+")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (exit status 2), no usage block."""

    def error(self, message: str) -> NoReturn:
        message = printable(" ".join(message.split()))
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _integer(text: str) -> int:
    if not _INT.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


OUTPUT_HELP = ("the entry of the model's output that is explained, for a model that returns a dict or tuple: "
               "a key (logits) or an index (0); default: the output itself, its 'logits' or 'out' entry, or "
               "a tuple's first")


def output_entry(text: str) -> str | int:
    """``--output``: a key of a dict output (``logits``) or an index of a tuple (``0``, ASCII digits)."""
    key = text.strip()
    if not key:
        raise argparse.ArgumentTypeError("expected a key (logits) or an index (0), got an empty string")
    if _INT.fullmatch(key):
        return int(key)
    if not key.isprintable():
        raise argparse.ArgumentTypeError(f"expected a key (logits) or an index (0), got {text!r}")
    return key


def positive_int(text: str) -> int:
    """A whole number >= 1 (ASCII digits only)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


# Stated limits, checked before anything is allocated (a typo must not exhaust the machine).
MAX_PICTURE_SIDE = 4096        # --size: 4096 x 4096 pictures, 16.7 megapixels
MAX_PICTURES = 200_000         # --n of the synthetic sets (2.4 GB at 64 px)
MAX_PROCESSES = 64             # --workers
MAX_BATCH = 65_536             # --batch-size, --max-batch


def at_most(limit: int, what: str):
    """A ``type=`` for whole numbers from 1 to ``limit``; the message states the limit and why."""
    def check(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"at most {limit:,} {what}, got {text}")
        return value
    check.__name__ = f"at_most_{limit}"
    return check


picture_side = at_most(MAX_PICTURE_SIDE, "pixels a side")
picture_count = at_most(MAX_PICTURES, "pictures")
process_count = at_most(MAX_PROCESSES, "processes")
batch_size = at_most(MAX_BATCH, "pictures a batch")


def nonnegative_int(text: str) -> int:
    """A whole number >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


MAX_SEED = 2 ** 32 - 1         # --seed: what NumPy's and scikit-learn's random states take


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to 2**32 - 1."""
    value = nonnegative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"at most 2**32 - 1 = {MAX_SEED}, got {text}")
    return value


def perplexity(text: str) -> float:
    """A t-SNE perplexity: a number from 1 to 1000 (below 1 the neighbour search cannot converge)."""
    value = finite_float(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must lie between 1 and 1000, got {text}")
    return value


def finite_float(text: str) -> float:
    """A finite number (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text}")
    return value


def device(text: str) -> str:
    """A device this machine has: cpu, cuda, cuda:N (N < the GPU count) or mps."""
    from netgaze._util.devices import check_device

    try:
        check_device(text)
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def existing_file(text: str) -> str:
    """A path to an existing file (returned as typed)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{'is a folder, not a file' if path.is_dir() else 'no such file'}: {text}")
    return text


def existing_dir(text: str) -> str:
    """A path to an existing folder (returned as typed)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{'is a file, not a folder' if path.exists() else 'no such folder'}: {text}")
    return text


def run_folder(text: str) -> str:
    """A path to an existing folder: a run folder (or, for ``report``, a folder of run folders)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{'is a file, not a run folder' if path.exists() else 'no such run folder'}: "
                                         f"{text}")
    return text


def _file_on_the_way(path: Path) -> Path | None:
    """The first existing non-folder among ``path`` and its parents, if any."""
    for candidate in [path, *path.parents]:
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def _unwritable(path: Path) -> str | None:
    """Why nothing can be written in folder ``path`` or its nearest existing parent (None: it can).

    Tried, not guessed: a hidden folder is made there and removed at once (``os.access`` says
    yes to root in ``/proc``, and a read-only mount answers only to a try)."""
    import os
    import secrets

    where = next((p for p in [path, *path.parents] if p.exists()), None)
    if where is None:
        return None
    probe = where / f".netgaze-write-test-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.mkdir(probe)
    except OSError as err:
        return f"{where} is not writable ({err.strerror or err})"
    try:
        os.rmdir(probe)
    except OSError:
        pass
    return None


def out_dir(text: str) -> str:
    """An output folder: existing or creatable (no file in its place or on its way) and writable."""
    blocking = _file_on_the_way(Path(text))
    if blocking is not None:
        what = "is a file" if blocking == Path(text) else f"cannot be created: {blocking} is a file"
        raise argparse.ArgumentTypeError(f"output folder {text} {what}")
    problem = _unwritable(Path(text))
    if problem is not None:
        raise argparse.ArgumentTypeError(f"output folder {text} cannot be written: {problem}")
    return text


def out_file(text: str) -> str:
    """An output file: not an existing folder, its folder existing or creatable."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name (e.g. {path / 'report.html'})")
    blocking = _file_on_the_way(path.parent)
    if blocking is not None:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {blocking} is a file, not a folder")
    problem = _unwritable(path.parent)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {problem}")
    return text


MODEL_HELP = ("torchvision:NAME (a classifier, segmenter or detector, e.g. torchvision:resnet18, "
              "torchvision:fcn_resnet50, torchvision:fasterrcnn_resnet50_fpn), timm:NAME (e.g. timm:convnext_tiny), "
              "random weights without --weights; or hf:FOLDER, a Hugging Face save_pretrained folder (config.json and "
              "model.safetensors; class names from its id2label)")


def add_model_arguments(parser, source) -> None:
    """``--model``, ``--weights``, ``--weights-enum`` and ``--labels`` (``source``: the --run/--model group)."""
    source.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--weights", type=existing_file,
                        help="weights for --model: a state dict, .pth/.pt (read with weights_only=True) "
                        "or .safetensors; the number of classes is read from it")
    parser.add_argument("--weights-enum", metavar="MEMBER",
                        help="torchvision weights whose class names to use, e.g. IMAGENET1K_V2 (default: found from "
                        "the weights file's name, or its number of classes)")
    parser.add_argument("--labels", metavar="FILE", type=existing_file, help="class names for --model, one per line")


def load_model_argument(run: str | None, model: str | None, weights: str | None, size: int, *,
                        tasks: tuple[str, ...] = ("classify",), command: str = "this command",
                        epoch: int | None = None, labels: str | None = None, weights_enum: str | None = None):
    """The model of ``--run FOLDER [--epoch N]`` or ``--model torchvision:NAME | timm:NAME [--weights FILE]``.

    A named model without weights prints ONE warning line on stderr when the command ends
    well (after an error, only the error's line): its weights are random and its classes are
    shown as indices. Weights that hold NaN or infinity are refused (``NonFiniteError``).
    """
    from netgaze.zoo import load_run_model
    from netgaze.zoo.named import load_named_model

    if run:
        if weights or labels or weights_enum:
            raise UserError("--weights, --weights-enum and --labels go with --model; a run folder has its own")
        loaded = load_run_model(run, epoch, tasks=tasks, command=command)
    else:
        loaded = load_named_model(model, weights, labels=labels, weights_enum=weights_enum, size=size)
    loaded.check_finite_weights()          # NaN/inf weights: one line naming them, never "predicted x (nan%)"
    if loaded.random_weights:
        names = "" if command == "embed" else "; classes from --labels" if labels else "; classes shown as indices"
        defer_warning(f"netgaze {command}: warning: {model} has random weights (no --weights){names}")
    return loaded


_DEFERRED: list[str] = []


def defer_warning(line: str) -> None:
    """A warning printed when the command ends well (``flush_warnings``): an error stays one line."""
    _DEFERRED.append(printable(line))


def flush_warnings(print_them: bool) -> None:
    """Print (or drop, after an error) the warnings ``defer_warning`` kept, once each."""
    lines = list(dict.fromkeys(_DEFERRED))
    _DEFERRED.clear()
    for line in lines if print_them else ():
        print(line, file=sys.stderr)


def print_error(command: str, message: str) -> None:
    """One line on stderr: ``netgaze COMMAND: error: MESSAGE``."""
    print(f"netgaze {command}: error: {one_line(message)}", file=sys.stderr)
