"""Shared test fixtures: model snapshots that prove a call left a model exactly as found."""
from __future__ import annotations

import os

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
