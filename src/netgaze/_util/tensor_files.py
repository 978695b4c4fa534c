"""safetensors files read lazily through a memory map: rows on demand, memory flat as files grow.

``MappedTensors(path)`` parses the file's header (8 bytes of length, a JSON header, the data)
and maps the file copy-on-write; ``.tensor(key)`` is a zero-copy ``torch.Tensor`` over the
mapping, so nothing is read until a row is touched, and a write never reaches the file.

A process that streams through a mapped tensor keeps every page it touched resident (mapped
file pages count in its RSS) until it lets go of them: ``drop_pages(tensor, start, stop)``
tells the kernel that rows ``start:stop`` of a mapped tensor are no longer needed
(``madvise(MADV_DONTNEED)``); a later read of them maps them again from the page cache. The
streaming analyses call it after each chunk, which keeps their memory flat whatever the file's
size. On a tensor that is not mapped (or where ``madvise`` does not exist) it does nothing.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
import weakref
from pathlib import Path
from typing import Any

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


class _Mapping(mmap.mmap):
    """The file's mapping; every tensor made from it holds it (through the buffer it exports), so it
    stays in ``_LIVE`` exactly as long as some tensor still reads it."""

    address = 0

    def owns(self, address: int) -> bool:
        return self.address <= address < self.address + len(self)

    def drop(self, address: int, nbytes: int) -> None:
        """Drop the whole pages inside ``[address, address + nbytes)`` of the mapping."""
        flag = getattr(mmap, "MADV_DONTNEED", None)
        if not hasattr(self, "madvise") or flag is None or nbytes <= 0:
            return
        page = mmap.PAGESIZE
        start = address - self.address
        first = -(-start // page) * page
        last = min(len(self), start + nbytes) // page * page
        if last > first:
            self.madvise(flag, first, last - first)


_LIVE: "weakref.WeakSet[_Mapping]" = weakref.WeakSet()


class MappedTensors:
    """The tensors of one safetensors file, mapped (read lazily, never copied whole).

    Attributes:
        path: the file.
        metadata: the header's ``__metadata__`` (strings), ``{}`` when absent.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with open(self.path, "rb") as handle:
            head = handle.read(8)
            if len(head) != 8:
                raise ValueError(f"{self.path} is too short for a safetensors file")
            (size,) = struct.unpack("<Q", head)
            if size > 100_000_000:
                raise ValueError(f"{self.path}: header of {size} bytes")
            header = json.loads(handle.read(size))
            if not isinstance(header, dict):
                raise ValueError(f"{self.path}: the header is not a JSON object")
            self.metadata: dict[str, str] = dict(header.pop("__metadata__", None) or {})
            self._entries: dict[str, dict[str, Any]] = header
            self._base = 8 + size
            length = os.fstat(handle.fileno()).st_size
            for key, entry in header.items():
                begin, end = entry["data_offsets"]
                if entry["dtype"] not in DTYPES or not 0 <= begin <= end <= length - self._base:
                    raise ValueError(f"{self.path}: tensor {key!r} has an unknown dtype or lies outside the file")
            self._map = _Mapping(handle.fileno(), 0, access=mmap.ACCESS_COPY) if length else None
        if self._map is not None:
            self._map.address = _address(self._map)
            _LIVE.add(self._map)

    def keys(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(int(v) for v in self._entries[key]["shape"])

    def tensor(self, key: str) -> torch.Tensor:
        """The tensor ``key`` as a zero-copy view of the mapping (pages are read when touched)."""
        entry = self._entries[key]
        dtype, shape = DTYPES[entry["dtype"]], self.shape(key)
        begin, end = entry["data_offsets"]
        count = 1
        for side in shape:
            count *= side
        if count == 0 or self._map is None:
            return torch.empty(shape, dtype=dtype)
        if end - begin != count * torch.empty((), dtype=dtype).element_size():
            raise ValueError(f"{self.path}: tensor {key!r} holds {end - begin} bytes for shape {list(shape)}")
        return torch.frombuffer(self._map, dtype=dtype, count=count, offset=self._base + begin).view(shape)


def _address(buffer: mmap.mmap) -> int:
    import ctypes

    view = (ctypes.c_char * 1).from_buffer(buffer)
    address = ctypes.addressof(view)
    del view  # only the address is kept: the buffer is not held exported
    return address


def drop_pages(tensor: Any, start: int = 0, stop: int | None = None) -> None:
    """Let the kernel drop the pages of rows ``start:stop`` of a mapped tensor (no-op for others).

    Rows are along the first dimension of a contiguous tensor. Only whole pages inside the rows
    are dropped, so neighbouring rows stay as they are.
    """
    if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0 or not tensor.is_contiguous() or \
            tensor.device.type != "cpu":
        return
    address = tensor.data_ptr()
    for mapping in list(_LIVE):
        if mapping.owns(address):
            stop = len(tensor) if stop is None else min(stop, len(tensor))
            row = tensor[0].numel() * tensor.element_size() if len(tensor) else 0
            mapping.drop(address + start * row, (stop - start) * row)
            return

