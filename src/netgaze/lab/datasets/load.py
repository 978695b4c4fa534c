"""``load_dataset``: one string names any lab dataset (the ``--data`` argument of the CLI)."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from netgaze.lab.datasets.base import DatasetError
from netgaze.lab.datasets.digits import digits
from netgaze.lab.datasets.folders import image_folder
from netgaze.lab.datasets.mnist_idx import mnist
from netgaze.lab.datasets.resized import Resized
from netgaze.lab.datasets.shapes import shapes
from netgaze.lab.datasets.tensor_file import tensor_dataset

SPEC_FORMS = ('"digits"', '"shapes"', '"mnist:PATH" (a folder of MNIST IDX files)',
              '"folder:PATH" or an existing folder PATH (one sub-folder per class)',
              '"tensors:PATH" (a data.safetensors file a RunWriter kept)')
EMBEDDED: dict[str, Callable[..., Dataset]] = {"digits": digits, "shapes": shapes}


def _call(builder: Callable[..., Dataset], what: str, fixed: dict[str, Any], options: dict[str, Any]) -> Dataset:
    """Build a set; ``size`` also works for sets with a fixed picture size (resized when read)."""
    allowed = [name for name in inspect.signature(builder).parameters if name not in fixed]
    options = dict(options)
    size = options.pop("size", None) if "size" not in allowed else None
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed + ([] if "size" in allowed else ["size"]))
        raise DatasetError(f"{what}: unknown option(s) {', '.join(unknown)}; valid: {valid}")
    dataset = builder(**fixed, **options)
    if size is not None and tuple(dataset.size) != (size, size):
        dataset = Resized(dataset, size)
    return dataset


def load_dataset(spec: str, split: str = "train", **options: Any) -> Dataset:
    """The dataset named by ``spec``, one split of it.

    Args:
        spec: "digits", "shapes", "mnist:PATH", "folder:PATH", the path of an image folder, or
            "tensors:PATH" (splits kept exactly by ``RunWriter``, ``tensor_file``).
        split: "train" or "test" (image folders and digits also take "all").
        **options: the named builder's own parameters (e.g. ``n=500, spurious=True`` for shapes,
            ``size=128, test_list="lists/test_list.mat"`` for a folder); an option the builder
            does not take is an error that lists the valid ones. ``size`` works for every set:
            digits and MNIST files (28 px) are resized when read (``Resized``).

    Returns:
        A dataset of ``(image float32 [C, H, W] in [0, 1], label)`` with ``.classes``,
        ``.channels``, ``.size``, ``.name``, ``.mean`` and ``.std``.
    """
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise DatasetError(f"empty dataset name; valid forms: {', '.join(SPEC_FORMS)}")
    spec = str(spec).strip()
    if spec.lower() in EMBEDDED:
        return _call(EMBEDDED[spec.lower()], spec.lower(), {"split": split}, options)
    kind, sep, rest = spec.partition(":")
    if sep and kind.lower() == "mnist":
        return _call(mnist, "mnist", {"root": rest, "split": split}, options)
    if sep and kind.lower() == "tensors":
        return _call(tensor_dataset, "tensor file", {"root": rest, "split": split}, options)
    if sep and kind.lower() == "folder":
        return _call(image_folder, "image folder", {"root": rest, "split": split}, options)
    if Path(spec).is_dir():
        return _call(image_folder, "image folder", {"root": spec, "split": split}, options)
    raise DatasetError(f"unknown dataset {spec!r} (not a name and not an existing folder); "
                       f"valid forms: {', '.join(SPEC_FORMS)}")
