"""Explanation workers in child processes (``worker_main.py``), as ``netgaze serve`` runs them.

In one process, the event loop and a worker thread share one GIL: each PyTorch call hands it
over, and while the loop answers a burst of requests the worker waits up to the switch interval
for it at every call (measured: a batch of 8 took 4.8 ms under 16 users instead of 2.7 ms
alone). A worker process has its own GIL; the loop only forwards request bodies and writes the
answers the worker encoded. Requests go to the worker with the fewest in flight; at most
``max_queue`` wait in all, beyond that ``QueueFull`` (503). A worker that dies is started again
(with the uploads it had); the requests it held are answered with a 500 that says so.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from netgaze.serve.batching import BatchStats, QueueFull
from netgaze.serve.api_error import ApiError
from netgaze.serve.frames import EXPLAIN, REPLY, SETUP, UPLOAD, FrameReader, request_frame, upload_payload
from netgaze.serve.requests import Uploads

log = logging.getLogger("netgaze.serve")
START_TIMEOUT_S = 600


class WorkerStopped(ApiError):
    status = 500


class WorkerProcesses:
    """``count`` worker processes loading ``setup`` (see ``worker_main.Worker``).

    ``wait_ready()`` blocks until all have loaded (``netgaze serve`` calls it before listening, so
    a worker that cannot start is a one-line error); ``await start()`` in the serving event loop
    connects them (waiting for them first if needed); ``await explain(body)`` -> ``(status,
    answer JSON)``; ``await stop()`` or ``close()`` ends them.
    """

    def __init__(self, setup: dict[str, Any], count: int, max_queue: int, uploads: Uploads | None = None):
        self.setup, self.max_queue = setup, max_queue
        self.uploads = uploads or Uploads()     # the explorer's, re-sent to a worker that restarts
        self.stats = BatchStats()
        self.closing = False
        self._ids = itertools.count(1)
        self.children = [_Child(self) for _ in range(count)]

    @classmethod
    def start_loading(cls, recipe: dict[str, Any], settings: Any) -> "WorkerProcesses":
        """Workers for ``Sources.recipe_of(...)`` with the explorer's ``Settings``; they start loading now."""
        setup = {"sources": recipe, "max_batch": settings.max_batch, "cache_mb": settings.cache_mb,
                 "threads": settings.threads}
        return cls(setup, settings.workers, settings.max_queue)

    @property
    def pending(self) -> int:
        return sum(len(child.futures) for child in self.children)

    def wait_ready(self) -> None:
        for child in self.children:
            child.wait_ready()

    async def start(self) -> None:
        await asyncio.gather(*(child.attach() for child in self.children))

    async def explain(self, body: bytes) -> tuple[int, bytes]:
        if self.pending >= self.max_queue:
            self.stats.rejected += 1
            raise QueueFull(f"{self.pending} requests are waiting; retry shortly")
        working = [child for child in self.children if not child.failed]
        if not working:
            raise WorkerStopped("no explanation worker is running (see the server's log); restart netgaze serve")
        child = min(working, key=lambda c: len(c.futures))
        return await child.ask(next(self._ids), body)

    def upload(self, upload_id: str, array) -> None:
        """Give every worker an upload (before its ID is returned to the client)."""
        for child in self.children:
            child.send(request_frame(UPLOAD, 0, upload_payload(upload_id, array)))

    def counted(self, batch: int, first: bool) -> None:
        if batch:
            self.stats.requests += 1
        if first and batch:
            self.stats.batches += 1
            self.stats.largest = max(self.stats.largest, batch)
            self.stats.sizes[batch] = self.stats.sizes.get(batch, 0) + 1

    async def stop(self, timeout: float = 5.0) -> None:
        """End the workers from the event loop: close their input, give them ``timeout`` s to exit."""
        self.closing = True
        for child in self.children:
            if child.transport is not None:
                child.transport.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(c.process.poll() is None for c in self.children) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        self.close()

    def close(self) -> None:
        """End the workers (from any thread; kills one that does not exit in 5 s)."""
        self.closing = True
        for child in self.children:
            child.close()


class _Child:
    """One worker process, its pipes and the requests it holds."""

    def __init__(self, owner: WorkerProcesses):
        self.owner = owner
        self.futures: dict[int, asyncio.Future] = {}
        self.transport: asyncio.WriteTransport | None = None
        self.started = False            # it loaded its sources
        self.failed = False             # it could not (after a restart): requests go elsewhere
        self._attached: asyncio.Event | None = None
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen([sys.executable, "-m", "netgaze.serve.worker_main"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        self.process.stdin.write(request_frame(SETUP, 0, json.dumps(owner.setup).encode()))
        self.process.stdin.flush()

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Block until the worker has loaded its sources; ``ApiError`` with its reason if it cannot."""
        if self.started:
            return
        reader, fd = FrameReader(REPLY), self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                self.process.kill()
                raise ApiError(f"an explanation worker did not start in {timeout:.0f} s")
            data = os.read(fd, 65536)
            if not data:
                raise ApiError(f"an explanation worker exited while starting (exit code {self.process.wait()})")
            for _, status, _, _, payload in reader.feed(data):
                if status != 200:
                    raise ApiError(f"an explanation worker could not start: {json.loads(payload)['error']}")
                self.started = True
                return

    def attached(self) -> asyncio.Event:
        if self._attached is None:
            self._attached = asyncio.Event()
        return self._attached

    async def attach(self) -> None:
        """Connect the pipes to the running event loop (once the worker is ready)."""
        loop = asyncio.get_running_loop()
        if not self.started:
            await loop.run_in_executor(None, self.wait_ready)
        self.transport, _ = await loop.connect_write_pipe(asyncio.Protocol, self.process.stdin)
        await loop.connect_read_pipe(lambda: _Replies(self), self.process.stdout)
        for upload_id, array in self.owner.uploads.arrays():       # a restarted worker gets the uploads back
            self.send(request_frame(UPLOAD, 0, upload_payload(upload_id, array)))
        self.attached().set()

    async def ask(self, request_id: int, body: bytes) -> tuple[int, bytes]:
        future = asyncio.get_running_loop().create_future()
        self.futures[request_id] = future
        if not self.attached().is_set():
            await self.attached().wait()                 # a new worker is still loading
        self.send(request_frame(EXPLAIN, request_id, body))
        return await future

    def send(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def answered(self, request_id: int, status: int, batch: int, first: bool, payload: bytes) -> None:
        self.owner.counted(batch, first)
        future = self.futures.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result((status, payload))

    def fail_all(self, message: str) -> None:
        for future in self.futures.values():
            if not future.done():
                future.set_exception(WorkerStopped(message))
        self.futures.clear()

    def lost(self) -> None:
        """The worker's stdout ended: it stopped. Fail what it held; start a new one unless closing."""
        try:
            code = self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.fail_all(f"the explanation worker stopped (exit code {code}); a new one is starting, retry shortly")
        if self.owner.closing:
            return
        log.warning("netgaze serve: the explanation worker stopped (exit code %s); starting a new one", code)
        replacement = _Child(self.owner)
        self.owner.children[self.owner.children.index(self)] = replacement
        asyncio.get_running_loop().create_task(replacement.restart())

    async def restart(self) -> None:
        try:
            await self.attach()
        except Exception as err:  # noqa: BLE001 - nobody awaits a restart: say it in the log and to the waiting
            self.failed = True
            log.error("netgaze serve: the new explanation worker did not start: %s", err)
            self.fail_all(f"the explanation worker could not be restarted: {err}")
            self.attached().set()

    def close(self) -> None:
        if not self.started and self.process.poll() is None:
            self.process.kill()                  # still loading (Ctrl-C at start): nothing to finish
        if self.process.poll() is None:
            try:
                self.process.stdin.close()       # end of input: the worker exits
            except OSError:
                pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Replies(asyncio.Protocol):
    def __init__(self, child: _Child):
        self.child, self.reader = child, FrameReader(REPLY)

    def data_received(self, data: bytes) -> None:
        for request_id, status, batch, first, payload in self.reader.feed(data):
            self.child.answered(request_id, status, batch, bool(first), payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.child.lost()
