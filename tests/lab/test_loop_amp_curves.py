"""EpochTrainer: mixed precision only on CUDA (and its step, run on the CPU in bfloat16),
curves.png drawn at the end of a run, within a budget during it, and again on resume."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

import netgaze.lab.loop as loop
from netgaze.lab.distributed import DistributedContext
from netgaze.lab.loop import amp_dtype
from netgaze.lab.runs import RunFolder
from netgaze.lab.train import ClassifierTrainer

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _data(n: int = 24) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.rand(n, 4, generator=g) + nn.functional.one_hot(y, 4).float()
    return TensorDataset(x, y)


def _trainer(tmp_path, optimizer: str = "sgd", **options) -> ClassifierTrainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = (torch.optim.SGD(model.parameters(), lr=0.1) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=0.01))
    return ClassifierTrainer(model, {optimizer: opt}, _data(), _data(9), folder=RunFolder(tmp_path / "run"),
                             ctx=CPU, batch_size=8, progress=False, **options)


def test_amp_dtype_is_cuda_only(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    for amp in (None, True, False):
        assert amp_dtype(cpu, amp) is None
        assert amp_dtype(torch.device("mps"), amp) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype(cuda, None) is torch.bfloat16 and amp_dtype(cuda, True) is torch.bfloat16
    assert amp_dtype(cuda, False) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype(cuda, None) is torch.float16  # the trainer pairs it with a GradScaler


def test_cpu_run_never_touches_autocast_or_grad_scaler(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a CPU run touched mixed precision")

    monkeypatch.setattr(torch, "autocast", refuse)
    monkeypatch.setattr(torch.amp, "GradScaler", refuse)
    trainer = _trainer(tmp_path, amp=True)  # asked for, ignored off CUDA
    assert trainer.amp_dtype is None and trainer.scaler is None
    seen = []
    compute = trainer.compute

    def spy(batch, train):
        seen.append(torch.is_autocast_enabled("cpu"))
        return compute(batch, train)

    trainer.compute = spy
    history = trainer.fit(1, {"task": "classify", "model": "toy"})
    assert seen and not any(seen)
    assert "scaler" not in trainer.training_state()
    assert history[0]["train_loss"] > 0


def test_mixed_precision_step_with_grad_scaler_matches_a_hand_written_one(tmp_path):
    """The CUDA code path (autocast + GradScaler), exercised on the CPU in bfloat16."""
    trainer = _trainer(tmp_path)
    reference = copy.deepcopy(trainer.module)
    trainer.amp_dtype = torch.bfloat16                     # what amp_dtype() gives on CUDA
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    dtypes = []
    compute = trainer.compute

    def spy(batch, train):
        dtypes.append(trainer.model(batch[0]).dtype)
        return compute(batch, train)

    trainer.compute = spy
    x, y = _data()[:8]
    stats = trainer.train_step((x, y))
    assert dtypes == [torch.bfloat16]
    # by hand: same autocast forward, unscaled backward, plain SGD step
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(reference(x), y)
    loss.backward()
    opt.step()
    for mine, theirs in zip(trainer.module.parameters(), reference.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-6, rtol=0), (mine - theirs).abs().max()
    assert float(stats["loss"]) == pytest.approx(8 * loss.item(), rel=1e-6)
    assert trainer.scaler.get_scale() == 2.0 ** 10          # finite gradients: scale kept
    assert trainer.training_state()["scaler"]["scale"] == 2.0 ** 10


def _count_drawings(monkeypatch) -> list[int]:
    drawn: list[int] = []
    plot = loop.plot_curves

    def counting(history, path, title=None):
        drawn.append(len(history))
        return plot(history, path, title=title)

    monkeypatch.setattr(loop, "plot_curves", counting)
    return drawn


def test_curves_drawn_once_at_the_end_of_short_epochs_and_again_on_resume(tmp_path, monkeypatch):
    drawn = _count_drawings(monkeypatch)
    _trainer(tmp_path).fit(3, {"task": "classify", "model": "toy"})
    assert drawn == [3]  # epochs of milliseconds: drawing them each epoch would cost more than 2%
    curves = tmp_path / "run" / "curves.png"
    assert curves.stat().st_size > 5000
    curves.unlink()  # as if killed between the last checkpoint and its drawing
    _trainer(tmp_path).fit(3, {"task": "classify", "model": "toy"}, resume=True)  # nothing left to train
    assert drawn == [3, 3] and curves.is_file()
    _trainer(tmp_path).fit(4, {"task": "classify", "model": "toy"}, resume=True)
    assert drawn == [3, 3, 4]


def test_curves_drawn_every_epoch_when_cheap_enough(tmp_path, monkeypatch):
    drawn = _count_drawings(monkeypatch)
    monkeypatch.setattr(loop, "CURVES_BUDGET", 1e9)  # as if epochs were long
    _trainer(tmp_path).fit(3, {"task": "classify", "model": "toy"})
    assert drawn == [1, 2, 3]  # and not once more at the end: it already shows this history
