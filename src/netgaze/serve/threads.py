"""How many PyTorch threads a worker process uses when ``--threads`` is not given.

Measured with ``benchmarks/bench_serve.py`` on a 2-core machine (16 client processes, as the
Explain page asks): the shapes CNN served 2.2-2.3x its one-by-one throughput with one thread
per worker and 1.1-1.5x with PyTorch's default threads, which fight the event loop and each
other over the cores for passes of a few milliseconds. A large model is the other way round:
one user of resnet18 at 224 px is answered faster by PyTorch's threads. So the worker times
one forward pass of each served model on one thread and keeps one thread when every model is
cheap (``SMALL_FORWARD_MS``), else PyTorch's default.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import torch

SMALL_FORWARD_MS = 10.0   # one picture's forward on one thread; below it a pass is too short to split


def forward_ms(model: torch.nn.Module, channels: int, size: tuple[int, int], repeats: int = 3) -> float:
    """The median time of one picture's no-grad forward pass, in milliseconds, on the current threads."""
    x = torch.zeros(1, channels, *size)
    times = []
    with torch.no_grad():
        model(x)                                     # warm-up: allocations, lazy initialisation
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def choose_threads(sources: Iterable[Any]) -> int | None:
    """1 when every served model's one-picture forward takes under ``SMALL_FORWARD_MS`` on one
    thread, else None (PyTorch's default). Leaves the process on the threads it chose."""
    default = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        slowest = max((forward_ms(s.model, s.channels, s.size) for s in sources if s.model is not None), default=0.0)
    except Exception:  # noqa: BLE001 - a model that cannot run a zero picture: keep PyTorch's choice
        slowest = float("inf")
    if slowest < SMALL_FORWARD_MS:
        return 1
    torch.set_num_threads(default)
    return None
