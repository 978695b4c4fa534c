"""The data of a run written by ``RunWriter`` or ``import_checkpoints``: kept exactly, or referenced.

``data={"test": dataset, ...}``: each split's pictures and labels are read once and kept in
``RUN/data.safetensors`` as tensors (float pictures stay float: nothing is rounded to PNG);
``run.json`` then says ``"data": "tensors:data.safetensors"``, a path inside the run folder that
travels with it. The file is capped (``max_data_mb``, 512 MB by default) with a message that
says how to keep a sample. ``data="folder:PATH"`` (or any lab dataset spec) is referenced,
not copied.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from netgaze.errors import ArgumentError
from netgaze.lab.datasets.base import DatasetError
from netgaze.lab.datasets.tensor_file import tensor_file_bytes

DATA_FILE = "data.safetensors"
DEFAULT_MAX_DATA_MB = 512
SPLIT_NAMES = ("test", "train", "val")


def _split_size(name: str, dataset: Dataset) -> tuple[torch.Tensor, int]:
    """The first picture of a split and the split's length (checks the item form)."""
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentError(f"data[{name!r}] has no length; pass a map-style dataset (torch.utils.data.Dataset)") \
            from None
    if n == 0:
        raise DatasetError(f"data[{name!r}] is empty")
    item = dataset[0]
    if not isinstance(item, (tuple, list)) or len(item) < 2 or not isinstance(item[0], torch.Tensor):
        raise DatasetError(f"data[{name!r}] must yield (picture tensor [C, H, W], label) pairs, got "
                           f"{type(item).__name__}")
    x = item[0]
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise DatasetError(f"data[{name!r}]: pictures must be tensors [C, H, W] with 1 or 3 channels, got "
                           f"{tuple(x.shape)}")
    return x, n


def _materialize(dataset: Dataset, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(images, labels, object masks or None) of a whole split."""
    images, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                        collate_fn=lambda items: items)
    for items in loader:
        images.append(torch.stack([item[0].detach().cpu() for item in items]))
        labels.append(torch.tensor([int(item[1]) for item in items], dtype=torch.int64))
    images_all = torch.cat(images)
    return images_all, torch.cat(labels), _masks(dataset, len(images_all), tuple(images_all.shape[-2:]))


def _masks(dataset: Any, n: int, size: tuple[int, int]) -> torch.Tensor | None:
    """Object masks ``.mask(i)`` of a dataset (looking through ``Subset``s), when it has them."""
    indices = list(range(n))
    while not hasattr(dataset, "mask") and isinstance(getattr(dataset, "indices", None), Sequence) \
            and hasattr(dataset, "dataset"):
        indices = [int(dataset.indices[i]) for i in indices]
        dataset = dataset.dataset
    if not hasattr(dataset, "mask"):
        return None
    masks = torch.stack([torch.as_tensor(dataset.mask(i)).bool() for i in indices])
    return masks if tuple(masks.shape[1:]) == size else None


def keep_splits(data: Mapping[str, Dataset], max_data_mb: float = DEFAULT_MAX_DATA_MB,
                classes: Sequence[str] | None = None) -> tuple[bytes, dict[str, Any]]:
    """``(bytes of data.safetensors, run.json entries)`` for ``data={"test": ds, ...}``;
    ``classes`` None takes the datasets' own ``.classes``, else the label numbers.

    Raises:
        DatasetError: a split over the size limit (checked from the first picture before
            anything is read), or items that are not ``(picture [C, H, W], label)``.
    """
    if not isinstance(data, Mapping) or not data:
        raise ArgumentError("data takes {'test': dataset, ...} (kept in the run as tensors) or a dataset spec "
                            "such as 'folder:PATH' (referenced)")
    if "test" not in data:
        raise ArgumentError(f"data needs a 'test' split (the pictures the studies explain); got {', '.join(data)}")
    total, first = 0, {}
    for name, dataset in data.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ArgumentError(f"data split names are words such as 'test', 'train', 'val', got {name!r}")
        x, n = _split_size(name, dataset)
        first[name] = x
        total += n * x.numel() * x.element_size()
    limit = int(max_data_mb * 2**20)
    if total > limit:
        sizes = ", ".join(f"{name}: {len(ds)} pictures of {'x'.join(map(str, first[name].shape))} "  # type: ignore
                          f"{str(first[name].dtype).replace('torch.', '')}" for name, ds in data.items())
        raise DatasetError(
            f"the data to keep in the run is {total / 2**20:.0f} MB ({sizes}), over the limit of {max_data_mb:g} MB; "
            "keep a sample, e.g. data={'test': torch.utils.data.Subset(test_set, range(1000))}, raise max_data_mb=, "
            "or reference an image folder with data='folder:PATH'")
    splits = {name: _materialize(dataset) for name, dataset in data.items()}
    shapes = {tuple(images.shape[1:]) for images, *_ in splits.values()}
    if len(shapes) != 1:
        raise DatasetError(f"data splits hold pictures of different shapes: {sorted(shapes)}")
    c, h, w = shapes.pop()
    classes = [str(c) for c in classes] if classes is not None else _classes(data)
    n_labels = max(int(labels.max()) for _, labels, _ in splits.values()) + 1
    if classes is None:
        classes = [str(i) for i in range(n_labels)]
    elif len(classes) < n_labels:
        raise DatasetError(f"{len(classes)} class names but the data has labels up to {n_labels - 1}")
    entries = {"data": f"tensors:{DATA_FILE}", "data_options": {}, "image_size": int(h), "image_shape": [c, h, w],
               "image_channels": c, "data_splits": {name: len(labels) for name, (_, labels, _) in splits.items()},
               "classes": classes}
    return tensor_file_bytes(splits, classes), entries


def _classes(data: Mapping[str, Dataset]) -> list[str] | None:
    """Class names a dataset carries (``.classes``), looking through ``Subset``s."""
    for dataset in data.values():
        while dataset is not None:
            classes = getattr(dataset, "classes", None)
            if isinstance(classes, Sequence) and not isinstance(classes, str) and classes:
                return [str(c) for c in classes]
            dataset = getattr(dataset, "dataset", None)
    return None


def referenced(spec: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``run.json`` entries for a dataset spec that is referenced, not copied (``folder:PATH``,
    ``digits``); ``options`` are the dataset's own (``{"size": 224}`` for a folder)."""
    from netgaze.lab.datasets import load_dataset

    options = dict(options or {})
    test = load_dataset(spec, "test", **options)
    x = test[0][0]
    return {"data": spec, "data_options": options, "image_size": int(x.shape[-1]),
            "image_shape": [int(v) for v in x.shape], "image_channels": int(x.shape[0]),
            "classes": list(getattr(test, "classes", []))}
