"""Dynamic batching in worker threads (the explorer in one process; ``netgaze serve`` runs a
worker process instead, see ``processes.py``): concurrent requests for the same model, layer
and method share one pass.

Requests wait in a bounded queue, grouped by a key (the model, epoch, layers, method and
kind of target). A free worker thread takes the oldest group and up to ``max_batch`` of its
requests at once, without waiting for more: while a worker is busy the requests that arrive
meanwhile pile up and are served together by the next pass, as model servers do. (Waiting
for a batch to fill was measured too: with 16 clients it made one large batch that left the
CPU idle while it ran, and gained nothing.) The asyncio event loop only
enqueues and awaits; PyTorch runs in the worker threads, each with its own model copies.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence


class QueueFull(Exception):
    """The queue holds ``max_queue`` requests already: the client should retry later."""


@dataclass
class _Pending:
    job: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    seq: int


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    largest: int = 0
    rejected: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class BatchQueue:
    """A bounded queue served by worker threads in batches of requests with equal keys.

    Args:
        run_batch: ``(worker_state, jobs) -> results`` (one result per job, in order); runs in
            a worker thread. An exception fails the batch; each job is then run alone, so one
            bad request cannot fail the others.
        key: ``job -> hashable``; only jobs with equal keys are batched together.
        workers: worker threads.
        max_batch: most jobs per pass.
        max_queue: most jobs waiting; more raise ``QueueFull``.
        make_state: ``worker index -> state`` passed to ``run_batch`` (one model cache per worker).
    """

    def __init__(self, run_batch: Callable[[Any, Sequence[Any]], list[Any]], key: Callable[[Any], Hashable], *,
                 workers: int = 1, max_batch: int = 16, max_queue: int = 64,
                 make_state: Callable[[int], Any] = lambda i: None):
        if workers < 1 or max_batch < 1 or max_queue < 1:
            raise ValueError("workers, max_batch and max_queue must be >= 1")
        self.run_batch, self.key = run_batch, key
        self.max_batch, self.max_queue = max_batch, max_queue
        self.stats = BatchStats()
        self._groups: OrderedDict[Hashable, deque[_Pending]] = OrderedDict()
        self._pending = 0
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, args=(make_state(i),), daemon=True,
                                          name=f"netgaze-serve-worker-{i}") for i in range(workers)]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    async def submit(self, job: Any) -> Any:
        """Queue one job and wait for its result (raises what the job raised, or ``QueueFull``)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batch queue is closed")
            if self._pending >= self.max_queue:
                self.stats.rejected += 1
                raise QueueFull(f"{self._pending} requests are waiting; retry shortly")
            self._groups.setdefault(self.key(job), deque()).append(_Pending(job, future, loop, next(self._seq)))
            self._pending += 1
            self._cond.notify()
        return await future

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers after the batch in progress; fail what is still waiting."""
        with self._cond:
            self._closed = True
            left = [p for group in self._groups.values() for p in group]
            self._groups.clear()
            self._pending = 0
            self._cond.notify_all()
        _resolve([(p, None, RuntimeError("the server is shutting down")) for p in left])
        for thread in self._threads:
            thread.join(timeout)

    def _take(self) -> list[_Pending] | None:
        with self._cond:
            while not self._closed and self._pending == 0:
                self._cond.wait()
            if self._closed:
                return None
            key = min(self._groups, key=lambda k: self._groups[k][0].seq)   # the oldest request first
            group = self._groups[key]
            batch = [group.popleft() for _ in range(min(self.max_batch, len(group)))]
            if not group:
                del self._groups[key]
            self._pending -= len(batch)
            return batch

    def _work(self, state: Any) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            self.stats.batches += 1
            self.stats.requests += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            self.stats.sizes[len(batch)] = self.stats.sizes.get(len(batch), 0) + 1
            try:
                results = self.run_batch(state, [p.job for p in batch])
                _resolve([(p, result, None) for p, result in zip(batch, results)])
            except BaseException as err:  # noqa: BLE001 - re-raised in the awaiting request
                if len(batch) == 1:
                    _resolve([(batch[0], None, err)])
                    continue
                for p in batch:            # find out which request failed; the others succeed
                    try:
                        _resolve([(p, self.run_batch(state, [p.job])[0], None)])
                    except BaseException as single:  # noqa: BLE001
                        _resolve([(p, None, single)])


def _resolve(outcomes: list[tuple[_Pending, Any, BaseException | None]]) -> None:
    """Settle futures with ``(pending, result, error)``: one wake-up of each event loop per batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)

    def settle(items: list) -> None:
        for p, result, error in items:
            if p.future.done():
                continue
            if error is not None:
                p.future.set_exception(error)
            else:
                p.future.set_result(result)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(settle, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
