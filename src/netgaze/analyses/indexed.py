"""Pictures with their dataset index, read in chunks, for the one-pass analyses that must say which
picture scored, and the process group they share under torchrun."""
from __future__ import annotations

import atexit
import os
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Subset


def picture_of(item) -> torch.Tensor:
    """The picture of a dataset item: ``(picture, label, ...)`` or a bare picture."""
    return item[0] if isinstance(item, (tuple, list)) else item


class IndexedPictures(Dataset):
    """``dataset[i]`` as ``(picture, i)``: a DataLoader over it yields each batch's dataset indices."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return picture_of(self.dataset[i]), i


RowReader = Callable[[range], "tuple[torch.Tensor, torch.Tensor]"]


def row_reader(dataset: Dataset) -> tuple[RowReader, Callable[[range], None]] | None:
    """``(read, release)`` for datasets that read many rows at once (``read_rows``: the lab's
    tensor datasets, a run's kept data; also through ``Subset``s), else None.

    ``read(rows)`` gives (pictures [B, C, H, W], labels [B]) of positions ``rows`` of ``dataset``;
    ``release(rows)`` lets go of their memory-mapped pages once they are used.
    """
    positions = None
    while isinstance(dataset, Subset):
        index = torch.as_tensor(list(dataset.indices), dtype=torch.int64)
        positions = index if positions is None else index[positions]
        dataset = dataset.dataset
    if not callable(getattr(dataset, "read_rows", None)):
        return None
    base = dataset
    release_rows = getattr(base, "release", None)

    def read(rows: range):
        if positions is None:
            return base.read_rows(rows)
        return base.read_rows(positions[rows.start:rows.stop])

    def release(rows: range) -> None:
        if not callable(release_rows):
            return
        if positions is None:
            release_rows(rows.start, rows.stop)
        elif rows.stop > rows.start:
            chosen = positions[rows.start:rows.stop]
            first, last = int(chosen.min()), int(chosen.max()) + 1
            if last - first == len(chosen):  # a contiguous block of the base dataset
                release_rows(first, last)

    return read, release


def picture_batches(dataset: Dataset, batch_size: int, count: int | None = None, rank: int = 0, world: int = 1
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(pictures [B, C, H, W], dataset indices [B])`` of the first ``count`` pictures, in batches.

    Batch ``b`` covers pictures ``b * batch_size ...`` whatever the number of processes; this
    process takes batches ``rank, rank + world, ...`` (torchrun). Datasets that read rows in
    bulk (``row_reader``) are read one slice per batch and their pages let go after it, so memory
    stays flat however many pictures there are; others go through a ``DataLoader``.
    """
    count = len(dataset) if count is None else count
    starts = range(rank * batch_size, count, world * batch_size)
    reader = row_reader(dataset)
    if reader is not None:
        read, release = reader
        for start in starts:
            rows = range(start, min(count, start + batch_size))
            pictures, _ = read(rows)
            yield pictures, torch.arange(rows.start, rows.stop, dtype=torch.int64)
            release(rows)
        return
    mine = [i for start in starts for i in range(start, min(count, start + batch_size))]
    indexed = IndexedPictures(dataset)
    source = indexed if world == 1 and count == len(dataset) else Subset(indexed, mine)
    yield from DataLoader(source, batch_size=batch_size, shuffle=False)


def join_process_group(device: torch.device | str = "cpu") -> tuple[int, int, bool]:
    """(rank, world size, created): joins the torchrun group from the environment when there is one.

    Without torchrun (no ``WORLD_SIZE`` above 1) it is ``(0, 1, False)``. A group this call makes
    stays for the rest of the process (destroyed at exit), so the next analysis finds it: making a
    second default group in the same torchrun store after destroying the first races (a rank can
    read the first group's addresses and wait forever).
    """
    device = torch.device(device)
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(_destroy_at_exit)
    return dist.get_rank(), dist.get_world_size(), True


def _destroy_at_exit() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def leave_process_group(created: bool) -> None:
    """Kept for symmetry: the group stays until the process exits (see ``join_process_group``)."""


def gather_to_main(value, world: int):
    """Every process's ``value`` as a list on rank 0 (None on the others); ``[value]`` alone."""
    if world <= 1:
        return [value]
    found = [None] * world if dist.get_rank() == 0 else None
    dist.gather_object(value, found, dst=0)
    return found
