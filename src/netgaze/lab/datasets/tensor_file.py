"""Pictures kept exactly: dataset splits stored as tensors in one safetensors file.

``RunWriter`` keeps the user's test split (and any other) in ``RUN/data.safetensors``: for
each split ``SPLIT.images`` (``[N, C, H, W]``, the dtype the dataset gave: float pictures are
not rounded), ``SPLIT.labels`` (int64 ``[N]``) and, when the dataset has object masks
(``.mask(i)``, as ``shapes`` does), ``SPLIT.masks`` (bool ``[N, H, W]``); the class names are
the file's metadata.
The spec ``"tensors:PATH"`` opens a split of it like any lab dataset (``load_dataset``).
Reading never runs code (safetensors holds tensors only), and it is lazy: the file is
memory-mapped (``netgaze._util.tensor_files``), so opening a run of a million pictures reads
only the pictures that are used, and the streaming analyses let go of each chunk's pages.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from netgaze.lab.datasets.base import DatasetError, TensorImageDataset

FORMAT = "netgaze-tensors-1"


def tensor_file_bytes(splits: dict[str, tuple[torch.Tensor, ...]], classes: Sequence[str]) -> bytes:
    """The safetensors bytes of ``{split: (images [N, C, H, W], labels [N][, masks [N, H, W]])}``
    with class names."""
    from safetensors.torch import save

    tensors = {}
    for split, (images, labels, *masks) in splits.items():
        tensors[f"{split}.images"] = images.detach().to("cpu").contiguous()
        tensors[f"{split}.labels"] = labels.detach().to("cpu", torch.int64).contiguous()
        if masks and masks[0] is not None:
            tensors[f"{split}.masks"] = masks[0].detach().to("cpu", torch.bool).contiguous()
    meta = {"format": FORMAT, "classes": json.dumps(list(classes)), "splits": json.dumps(sorted(splits))}
    return save(tensors, metadata=meta)


def read_tensor_file(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], list[str]]:
    """``({split: {"images": ..., "labels": ...}}, classes)`` of a file written by ``tensor_file_bytes``;
    the tensors are memory-mapped views of the file (read when touched)."""
    from netgaze._util.tensor_files import MappedTensors

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such tensor file: {path}")
    try:
        mapped = MappedTensors(path)
        meta = mapped.metadata
        tensors = {key: mapped.tensor(key) for key in mapped.keys()}  # zero-copy views of the mapped file
        classes = json.loads(meta.get("classes", "[]"))
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file: one line
        raise DatasetError(f"{path} is not a readable tensor file ({type(err).__name__})") from None
    if meta.get("format") != FORMAT or not isinstance(classes, list):
        raise DatasetError(f"{path} is not a netgaze tensor file (format {meta.get('format')!r})")
    splits: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        split, _, part = key.rpartition(".")
        splits.setdefault(split, {})[part] = tensor
    return splits, [str(c) for c in classes]


class KeptDataset(TensorImageDataset):
    """A split kept by ``RunWriter``; with object masks it has ``.masks`` and ``.mask(i)`` like ``shapes``."""

    masks: torch.Tensor

    def mask(self, index: int) -> torch.Tensor:
        return self.masks[index]


def tensor_dataset(root: str | Path, split: str = "test") -> TensorImageDataset:
    """One split of a tensor file as a ``TensorImageDataset`` (uint8 pictures read as float / 255)."""
    splits, classes = read_tensor_file(root)
    if split not in splits or not {"images", "labels"} <= set(splits[split]):
        raise DatasetError(f"{root} holds no split {split!r}; it holds {', '.join(sorted(splits)) or 'none'}")
    parts = splits[split]
    name = Path(root).parent.name or "tensors"
    if "masks" not in parts:
        return TensorImageDataset(parts["images"], parts["labels"], classes, name=name, split=split)
    dataset = KeptDataset(parts["images"], parts["labels"], classes, name=name, split=split)
    dataset.masks = parts["masks"]
    return dataset
