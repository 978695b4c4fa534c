"""A least-recently-used cache bounded by memory, shared safely between threads."""
from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import numpy as np
import torch
import torch.nn as nn


def size_of(value: Any) -> int:
    """Bytes held by tensors, arrays, modules and (recursively) containers of them."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, nn.Module):
        return sum(size_of(t) for t in value.state_dict().values())
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, dict):
        return sum(size_of(k) + size_of(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(size_of(v) for v in value)
    if hasattr(value, "__dict__"):
        return sum(size_of(v) for v in vars(value).values())
    return sys.getsizeof(value)


class MemoryLRU:
    """Keeps the most recently used values while their total size stays under ``max_bytes``.

    A value larger than the whole budget is returned but not kept. ``get_or_make`` computes a
    missing value outside the lock, so a slow load never blocks readers of other keys.

    Args:
        max_bytes: the memory bound.
        name: shown in ``stats()``.
    """

    def __init__(self, max_bytes: int, name: str = "cache"):
        self.max_bytes = int(max_bytes)
        self.name = name
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            if key not in self._items:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]

    def put(self, key: Hashable, value: Any) -> Any:
        size = size_of(value)
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            if size <= self.max_bytes:
                self._items[key] = (value, size)
                self.bytes += size
                while self.bytes > self.max_bytes:
                    self.bytes -= self._items.popitem(last=False)[1][1]
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        value = self.get(key)
        return value if value is not None else self.put(key, make())

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def items(self) -> list[tuple[Hashable, Any]]:
        """The kept ``(key, value)`` pairs, least recently used first."""
        with self._lock:
            return [(key, value) for key, (value, _) in self._items.items()]

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "items": len(self._items), "bytes": self.bytes, "max_bytes": self.max_bytes,
                "hits": self.hits, "misses": self.misses}
