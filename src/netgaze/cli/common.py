"""Helpers shared by the subcommands."""
from __future__ import annotations

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


def load_model_argument(run: str | None, model: str | None, weights: str | None, size: int,
                        epoch: int | None = None):
    """The model of ``--run FOLDER [--epoch N]`` or ``--model torchvision:NAME [--weights FILE]``."""
    from netgaze.studies.files import load_run_model, load_torchvision

    with user_errors():
        if run:
            if weights:
                raise UserError("--weights goes with --model; a run folder has its own checkpoints")
            return load_run_model(run, epoch)
        if not model.startswith("torchvision:"):
            raise UserError(f"--model takes torchvision:NAME (e.g. torchvision:resnet18), got {model!r}")
        return load_torchvision(model.split(":", 1)[1], weights, size)
