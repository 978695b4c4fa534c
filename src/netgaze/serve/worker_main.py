"""An explanation worker process of ``netgaze serve``: its own interpreter, GIL and model copies.

The explorer starts it as ``python -m netgaze.serve.worker_main`` and talks to it in frames
(``frames.py``) on its stdin and stdout. The first frame says what to load: the same run
folders and model arguments as the command line (``Sources.recipe``). Each ``EXPLAIN`` frame is
a client's request body as it came; it is checked here with the explorer's own code
(``requests.parse_explain``), so the event loop only forwards bytes. Requests wait in arrival
order; each pass takes the oldest request's group (model, epoch, layers, method, kind of target)
up to ``max_batch``, and what arrives meanwhile waits for the next pass (dynamic batching with
no batch-fill wait). Each answer leaves as the JSON the client gets.

Anything printed goes to stderr (stdout carries frames only). Ctrl-C is left to the explorer,
which closes this process's stdin when it stops: the worker ends at the end of its input.
"""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import sys
import traceback
from typing import Any

from netgaze.serve.frames import EXPLAIN, REQUEST, SETUP, UPLOAD, FrameReader, reply_frame, upload_array

READ_BYTES = 1 << 20


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.dup(1)                      # frames go out here; fd 1 now points at stderr
    os.dup2(2, 1)
    _widen_pipe(out)
    sys.stdout = sys.stderr
    reader = FrameReader(REQUEST)
    setup = None
    while setup is None:
        data = _read(0, block=True)
        if not data:
            return 0
        setup = next((json.loads(p) for kind, _, p in reader.feed(data) if kind == SETUP), None)
    try:
        worker = Worker(setup)
    except Exception as err:  # noqa: BLE001 - reported to the explorer, which stops with the message
        _write(out, error_frame(0, err))
        return 1
    _write(out, reply_frame(0, 200, b'{"ready":true}'))
    worker.serve(reader, out)
    return 0


class Worker:
    """The sources, uploads, model copies and waiting requests of one worker process."""

    def __init__(self, setup: dict[str, Any]):
        import torch

        from netgaze.serve.cache import MemoryLRU
        from netgaze.serve.compute import WorkerState
        from netgaze.serve.requests import Uploads
        from netgaze.serve.sources import Sources

        if setup.get("threads"):
            torch.set_num_threads(int(setup["threads"]))
        from netgaze.lab.models.trust import trust_in_process

        recipe = dict(setup["sources"])
        trust_in_process(recipe.pop("trust_code", False))   # what the command allowed (--trust-code)
        self.sources = Sources.from_arguments(**recipe)
        if not setup.get("threads"):          # no --threads: one thread for small models (threads.py)
            from netgaze.serve.threads import choose_threads
            choose_threads(self.sources)
        budget = int(setup["cache_mb"]) * 1024 * 1024
        self.uploads = Uploads(budget // 2)
        self.state = WorkerState(MemoryLRU(budget, "checkpoints"), budget)
        self.max_batch = int(setup["max_batch"])
        self.waiting: list[tuple[int, Any]] = []     # (request ID, ExplainJob), oldest first
        gc.collect()
        gc.freeze()             # as in the explorer: the loaded objects leave the collector's sight

    def serve(self, reader: FrameReader, out: int) -> None:
        """Answer until the explorer closes stdin: take what came, run one pass, write its answers,
        read again (waiting only when no request waits)."""
        data: bytes | None = b""      # frames that came with the setup are already in the reader
        while True:
            replies = [reply for frame in reader.feed(data or b"") for reply in self.receive(*frame)]
            if self.waiting:
                replies += self.run_next()
            if replies:
                _write(out, b"".join(replies))
            data = _read(0, block=not self.waiting)
            if data == b"":
                return

    def receive(self, kind: int, request_id: int, payload: bytes) -> list[bytes]:
        """Keep an upload, or check a request and queue it (a bad one is answered at once)."""
        from netgaze.serve.requests import parse_explain
        from netgaze.serve.web import parse_json

        if kind == UPLOAD:
            self.uploads.put(*upload_array(payload))
            return []
        if kind != EXPLAIN:
            return []
        try:
            self.waiting.append((request_id, parse_explain(parse_json(payload), self.sources, self.uploads)))
            return []
        except Exception as err:  # noqa: BLE001 - answered as the explorer answers it
            return [error_frame(request_id, err)]

    def run_next(self) -> list[bytes]:
        """One pass over the oldest request's group; a failed pass is retried one request at a time,
        so one bad request cannot fail the others."""
        key = self.waiting[0][1].key()
        batch = [item for item in self.waiting if item[1].key() == key][:self.max_batch]
        chosen = {id(item) for item in batch}
        self.waiting = [item for item in self.waiting if id(item) not in chosen]
        try:
            return self.answers(batch)
        except Exception:  # noqa: BLE001
            if len(batch) == 1:
                return [error_frame(batch[0][0], sys.exc_info()[1])]
        replies = []
        for item in batch:
            try:
                replies += self.answers([item])
            except Exception as err:  # noqa: BLE001
                replies.append(error_frame(item[0], err))
        return replies

    def answers(self, batch: list[tuple[int, Any]]) -> list[bytes]:
        from netgaze.serve.compute import answer_json, explain_batch

        results = explain_batch(self.state, [job for _, job in batch])
        return [reply_frame(request_id, 200, answer_json(result), len(batch), i == 0)
                for i, ((request_id, _), result) in enumerate(zip(batch, results))]


def error_frame(request_id: int, err: BaseException) -> bytes:
    from netgaze.serve.compute import answer_json
    from netgaze.serve.api_error import one_line, status_and_message

    status, message = status_and_message(err)
    if status >= 500:
        traceback.print_exception(err, file=sys.stderr)
    return reply_frame(request_id, status, answer_json({"error": one_line(message)}))


def _widen_pipe(fd: int) -> None:
    """A 1 MB pipe buffer (Linux; 64 KB by default): a pass's answers (16 maps of 48 px are
    ~200 KB) are written at once instead of waiting for the explorer to read each 64 KB."""
    try:
        import fcntl
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, READ_BYTES)
    except (ImportError, AttributeError, OSError):
        pass


def _read(fd: int, block: bool) -> bytes | None:
    """What is waiting on ``fd`` (b"" at its end); None when nothing is and ``block`` is False."""
    if not block and not select.select([fd], [], [], 0)[0]:
        return None
    return os.read(fd, READ_BYTES)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


if __name__ == "__main__":
    sys.exit(main())
