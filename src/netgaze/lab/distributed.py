"""Devices, seeds and multi-process data parallelism (``torchrun``) for every lab trainer.

Under ``torchrun --nproc_per_node=N`` the environment holds ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; ``distributed_context()`` then joins the process group (gloo on CPU, nccl on
CUDA) and leaves it on exit. Without torchrun it is a one-process context with the same
interface, so a trainer has a single code path.
"""
from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import Dataset, DistributedSampler, Subset

from netgaze._util.devices import check_device


def pick_device(device: str | torch.device | None = None, local_rank: int = 0) -> torch.device:
    """``device`` if given (``DeviceError`` if this machine lacks it), else CUDA (``cuda:LOCAL_RANK``),
    else Apple MPS, else the CPU."""
    if device is not None:
        return check_device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, *streams: int) -> None:
    """Seed Python, NumPy and torch (all devices) from ``seed`` and extra stream numbers.

    ``seed_everything(seed, epoch, rank)`` gives each epoch of each process its own
    reproducible random stream, so a resumed run draws exactly what an uninterrupted one
    would have, with no random-generator state to save.
    """
    mixed = int(np.random.SeedSequence([seed, *streams]).generate_state(1)[0])
    random.seed(mixed)
    np.random.seed(mixed)
    torch.manual_seed(mixed)


@dataclass
class DistributedContext:
    """Where this process trains and how it talks to the others.

    Attributes:
        rank: this process's number, 0 .. world_size - 1.
        world_size: number of processes (1 without torchrun).
        local_rank: process number on this machine (picks the GPU).
        device: the device this process computes on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) writes files and shows progress."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model moved to the device, in ``DistributedDataParallel`` when distributed."""
        model = model.to(self.device)
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def train_sampler(self, dataset: Dataset, seed: int) -> DistributedSampler:
        """A shuffling sampler over this process's share; call ``set_epoch(e)`` each epoch.

        Used in one process too (one replica), so the order depends only on seed and epoch.
        """
        return DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                  shuffle=True, seed=seed, drop_last=False)

    def eval_share(self, dataset: Dataset) -> Dataset:
        """Every ``world_size``-th item from ``rank``: a disjoint share, no padding.

        Summed across processes, evaluation counts each item exactly once (a
        ``DistributedSampler`` would repeat items to even out the shares).
        """
        if not self.distributed:
            return dataset
        return Subset(dataset, range(self.rank, len(dataset), self.world_size))

    def sum(self, values: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Sum tensors across processes (one all-reduce); a no-op in one process."""
        if not self.distributed or not values:
            return list(values)
        flat = torch.cat([v.detach().reshape(-1).to(self.device, torch.float64) for v in values])
        dist.all_reduce(flat)
        out, start = [], 0
        for v in values:
            out.append(flat[start:start + v.numel()].reshape(v.shape))
            start += v.numel()
        return out

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


@contextlib.contextmanager
def distributed_context(device: str | torch.device | None = None) -> Iterator[DistributedContext]:
    """Join the ``torchrun`` process group when there is one; yield this process's context.

    gloo is used on the CPU and nccl on CUDA. The group is left on exit if this context
    created it.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank)
    created = False
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
        created = True
    try:
        yield DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen)
    finally:
        if created:
            dist.destroy_process_group()
