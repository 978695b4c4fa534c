"""Shared test fixtures: model snapshots that prove a call left a model exactly as found, and waits
with deadlines (lines of a child process, polling) that fail with a message instead of hanging."""
from __future__ import annotations

import os
import queue
import threading
import time
from typing import Callable, IO

import pytest
import torch
import torch.nn as nn

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


class ModelSnapshot:
    """state_dict values, training flags, requires_grad and hook counts of a model."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.training = {n: m.training for n, m in model.named_modules()}
        self.requires_grad = {n: p.requires_grad for n, p in model.named_parameters()}
        self.grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}

    def assert_unchanged(self) -> None:
        model = self.model
        now = model.state_dict()
        assert now.keys() == self.state.keys()
        for key, value in self.state.items():
            assert torch.equal(now[key], value), f"{key} changed"
        assert {n: m.training for n, m in model.named_modules()} == self.training
        assert {n: p.requires_grad for n, p in model.named_parameters()} == self.requires_grad
        for n, p in model.named_parameters():
            before = self.grads[n]
            assert (p.grad is None) == (before is None), f"{n}.grad appeared or vanished"
            if before is not None:
                assert torch.equal(p.grad, before)
        for name, module in model.named_modules():
            for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                         "_backward_pre_hooks", "_forward_hooks_with_kwargs"):
                hooks = getattr(module, attr, None)
                assert not hooks, f"hook left on {name or 'model'} ({attr})"


@pytest.fixture
def snapshot():
    """``snap = snapshot(model)`` ... ``snap.assert_unchanged()``."""
    return ModelSnapshot


@pytest.fixture
def one_thread():
    """One torch thread: small convolutions on a busy two-core machine run ~10x faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Lines:
    """The lines a child process writes to a pipe, each awaited with a deadline: a test that waits
    for a line that never comes fails with ``what`` and the lines seen so far, instead of hanging."""

    def __init__(self, pipe: IO[str]):
        self.seen: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(pipe,), daemon=True, name="test-lines").start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line)
        self._queue.put(None)                   # the pipe closed: the process ended

    def next(self, what: str, timeout: float = 60) -> str:
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout:g} s: {what}; seen so far: {self.seen!r}") from None
        if line is None:
            self._queue.put(None)
            raise AssertionError(f"the process closed its output before {what}; seen: {self.seen!r}")
        self.seen.append(line)
        return line

    def rest(self, timeout: float = 60) -> str:
        """Everything until the pipe closes (the process ended)."""
        out, deadline = [], time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the output did not end within {timeout:g} s; seen: {self.seen + out!r}")
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)
                self.seen += out
                return "".join(out)
            out.append(line)


@pytest.fixture
def lines() -> Callable[[IO[str]], Lines]:
    """``out = lines(process.stdout)``; ``out.next("the URL", timeout=60)``: a line, or a clear failure."""
    return Lines


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30, every: float = 0.02):
    """Poll ``condition`` until it is true (returns its value); past ``timeout`` fail with ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)


@pytest.fixture
def until():
    """``until(lambda: ..., "what is awaited", timeout=30)``: polls with a deadline (``wait_until``)."""
    return wait_until
