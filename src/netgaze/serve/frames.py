"""The byte protocol between the explorer and its worker processes (over their stdin and stdout).

To a worker: ``[kind: u8][id: u64][length: u32]`` then ``length`` bytes; kinds are ``SETUP``
(JSON: what to load, sent once first), ``EXPLAIN`` (the request's JSON body as the client sent
it) and ``UPLOAD`` (16 bytes of upload ID, then height and width as u32, then RGB bytes).
From a worker: ``[id: u64][status: u16][batch: u16][first: u8][length: u32]`` then the answer's
JSON; ``batch`` is the size of the pass that answered it and ``first`` marks one answer per pass.
"""
from __future__ import annotations

import struct
from typing import Iterator

import numpy as np

SETUP, EXPLAIN, UPLOAD = 0, 1, 2
REQUEST = struct.Struct("!BQI")
REPLY = struct.Struct("!QHHBI")
UPLOAD_HEAD = struct.Struct("!16sII")


def request_frame(kind: int, request_id: int, payload: bytes) -> bytes:
    return REQUEST.pack(kind, request_id, len(payload)) + payload


def reply_frame(request_id: int, status: int, payload: bytes, batch: int = 0, first: bool = False) -> bytes:
    return REPLY.pack(request_id, status, batch, int(first), len(payload)) + payload


def upload_payload(upload_id: str, array: np.ndarray) -> bytes:
    h, w = array.shape[:2]
    return UPLOAD_HEAD.pack(upload_id.encode("ascii"), h, w) + np.ascontiguousarray(array, np.uint8).tobytes()


def upload_array(payload: bytes) -> tuple[str, np.ndarray]:
    raw_id, h, w = UPLOAD_HEAD.unpack_from(payload)
    pixels = np.frombuffer(payload, np.uint8, offset=UPLOAD_HEAD.size).reshape(h, w, 3)
    return raw_id.decode("ascii"), pixels.copy()


class FrameReader:
    """Whole frames out of a byte stream that arrives in pieces of any size."""

    def __init__(self, header: struct.Struct):
        self.header, self.buffer = header, bytearray()

    def feed(self, data: bytes) -> Iterator[tuple]:
        """Add ``data``; yield ``(*header fields, payload)`` for every frame now complete."""
        self.buffer += data
        size = self.header.size
        while len(self.buffer) >= size:
            fields = self.header.unpack_from(self.buffer)
            end = size + fields[-1]
            if len(self.buffer) < end:
                return
            payload = bytes(self.buffer[size:end])
            del self.buffer[:end]
            yield (*fields[:-1], payload)
