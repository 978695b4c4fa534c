"""Example images for the studies: picked deterministically, with labels and object masks.

Every study of one run (and every model of a comparison) explains the SAME pictures, so
they are picked once from the test split by a seeded rule that does not depend on any
model: one image per class in class order, then further rounds, each class's images in a
seeded random order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch


@dataclass
class Examples:
    """A batch of example pictures and what is known about them.

    Attributes:
        images: float [B, C, H, W] in [0, 1].
        labels: long [B], the true classes (-1 where unknown).
        indices: the pictures' indices in ``dataset``.
        masks: bool [B, H, W] object masks when the dataset has them (``shapes``), else None.
        classes: the dataset's class names (may be empty).
    """

    images: torch.Tensor
    labels: torch.Tensor
    indices: list[int]
    masks: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        """One short row label per picture: ``#index class``."""
        out = []
        for i, label in zip(self.indices, self.labels.tolist()):
            name = self.classes[label] if 0 <= label < len(self.classes) else str(label)
            out.append(f"#{i} {name}")
        return out


def pick_indices(labels: Sequence[int], n: int = 6, seed: int = 0) -> list[int]:
    """Indices of ``n`` pictures, covering the classes round-robin, reproducible for a seed.

    Args:
        labels: the label of every picture of the dataset.
        n: how many to pick (fewer when the dataset is smaller).
        seed: the shuffle within each class.
    """
    labels = [int(v) for v in labels]
    generator = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for index in torch.randperm(len(labels), generator=generator).tolist():
        by_class.setdefault(labels[index], []).append(index)
    queues = [by_class[c] for c in sorted(by_class)]
    picked: list[int] = []
    rank = 0
    while len(picked) < min(n, len(labels)):
        for queue in queues:
            if rank < len(queue) and len(picked) < n:
                picked.append(queue[rank])
        rank += 1
    return picked


def dataset_labels(dataset) -> list[int]:
    """Labels of a dataset, read from a ``targets`` / ``labels`` attribute when it has one."""
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is not None and len(values) == len(dataset):
            return [int(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def pick_examples(dataset, n: int = 6, seed: int = 0, indices: Sequence[int] | None = None) -> Examples:
    """The example batch of a dataset of ``(image, label)`` pairs.

    Args:
        dataset: a map-style dataset; ``.classes`` and ``.mask(i)`` are used when present.
        n: number of pictures when ``indices`` is not given.
        seed: see ``pick_indices``.
        indices: explicit picture indices instead of the seeded pick.
    """
    chosen = list(indices) if indices is not None else pick_indices(dataset_labels(dataset), n, seed)
    items = [dataset[i] for i in chosen]
    images = torch.stack([torch.as_tensor(image, dtype=torch.float32) for image, _ in items])
    labels = torch.tensor([int(label) if isinstance(label, (int, torch.Tensor)) else -1 for _, label in items])
    masks = None
    if hasattr(dataset, "mask"):
        masks = torch.stack([torch.as_tensor(dataset.mask(i)).bool() for i in chosen])
    return Examples(images, labels, chosen, masks, list(getattr(dataset, "classes", []) or []))


def mask_area(masks: torch.Tensor) -> torch.Tensor:
    """Share of each picture covered by its mask, [B]: what a uniform map scores on ``metrics.energy_inside``."""
    return masks.float().flatten(1).mean(1)
