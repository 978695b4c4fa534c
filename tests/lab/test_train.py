"""train_classifier: history and accuracy, resume == uninterrupted, SIGKILL, torchrun, CLI."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from netgaze.cli import main as cli_main
from netgaze.lab.runs import RunError, RunFolder, load_run
from netgaze.lab.train import train_classifier

TINY = {"channels": [8, 16, 16, 32]}
FAST = dict(data="digits", model="simple-cnn", batch_size=64, lr=0.005, seed=3, progress=False, model_options=TINY)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_two_epochs(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train") / "digits"
    return train_classifier(epochs=2, out=str(out), **FAST)


def _state(path, epoch):
    return load_file(str(RunFolder(path).checkpoint_paths(epoch)[0]))


def test_history_and_accuracy(run_two_epochs):
    run = run_two_epochs
    assert [r["epoch"] for r in run.history] == [1, 2]
    for record in run.history:
        assert set(record) >= {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"}
        assert 0 <= record["train_acc"] <= 1 and 0 <= record["test_acc"] <= 1
    assert run.history[1]["test_acc"] > 0.6          # chance is 0.1
    assert run.history[1]["train_loss"] < run.history[0]["train_loss"]
    assert run.epoch == 2 and not run.model.training and run.classes == [str(d) for d in range(10)]
    assert [e for e, _ in run.checkpoints] == [0, 1, 2]
    assert run.config["task"] == "classify" and run.config["model_args"]["in_channels"] == 1
    assert (run.path / "curves.png").stat().st_size > 5000
    # the saved test accuracy is what the rebuilt model gets on the test split
    test = run.dataset("test")
    x, y = test.tensors()
    with torch.no_grad():
        acc = (run.model(x).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(run.history[1]["test_acc"], abs=1e-6)


def test_resume_equals_uninterrupted_run(run_two_epochs, tmp_path):
    out = str(tmp_path / "resumed")
    train_classifier(epochs=1, out=out, **FAST)
    with pytest.raises(RunError, match="already holds a run"):
        train_classifier(epochs=2, out=out, **FAST)
    with pytest.raises(RunError, match="different configuration.*lr"):
        train_classifier(epochs=2, out=out, resume=True, **{**FAST, "lr": 0.1})
    resumed = train_classifier(epochs=2, out=out, resume=True, tensorboard=True, **FAST)
    assert list((Path(out) / "tensorboard").glob("events.out.tfevents.*"))
    whole, part = _state(run_two_epochs.path, 2), _state(out, 2)
    assert whole.keys() == part.keys()
    for key in whole:
        assert torch.equal(whole[key], part[key]), key
    assert [r["test_acc"] for r in resumed.history] == [r["test_acc"] for r in run_two_epochs.history]


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "killed"
    code = ("from netgaze.lab.train import train_classifier; "
            f"train_classifier(epochs=40, out={str(out)!r}, **{FAST!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    meta = RunFolder(out).checkpoint_paths(2)[2]
    deadline = time.time() + 600  # generous: on a busy shared machine the imports alone take 30 s
    while not meta.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None and meta.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() else "too slow"
    time.sleep(0.3)  # somewhere inside epoch 3 or its writes
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    folder = RunFolder(out)
    done = [e for e, _ in folder.checkpoints()]
    assert done[:3] == [0, 1, 2] and done[-1] < 40
    # every visible file is whole: JSON parses, safetensors load, history has one line per epoch
    for path in out.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".safetensors":
                load_file(str(path))
    history_epochs = [r["epoch"] for r in folder.read_history()]
    assert history_epochs == list(range(1, len(history_epochs) + 1))
    run = train_classifier(epochs=done[-1] + 1, out=str(out), resume=True, **FAST)
    assert [r["epoch"] for r in run.history] == list(range(1, done[-1] + 2))
    assert not [p for p in out.rglob(".*") if p.is_file() and p.name != ".netgaze.lock"], "temporary files left behind"
    assert "resumed after epoch" in (out / "log.txt").read_text()


def test_torchrun_two_processes(tmp_path, run_two_epochs):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "netgaze", "train", "classify", "--data", "digits", "--epochs", "2", "--out", str(out),
           "--batch-size", "32", "--lr", "0.005", "--seed", "3", "--quiet", "--device", "cpu",
           "--model-option", "channels=[8,16,16,32]"]
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    run = load_run(out)
    assert run.config["world_size"] == 2
    lines = (out / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]  # written once, by rank 0
    assert (out / "log.txt").read_text().count("epoch 2/2") == 1
    # same global batch (2 x 32) as the one-process run: accuracy in the same range
    assert run.history[-1]["test_acc"] > 0.6
    assert abs(run.history[-1]["test_acc"] - run_two_epochs.history[-1]["test_acc"]) < 0.15
    # evaluation counted every test picture exactly once across the two processes: the summed
    # count is the test split's size (rank 0 alone would give 180), and the accuracy is whole
    assert [r["pictures"]["test"] for r in run.history] == [360, 360]
    assert round(run.history[-1]["test_acc"] * 360) == pytest.approx(run.history[-1]["test_acc"] * 360, abs=1e-6)


def test_cli_reports_user_errors(tmp_path, capsys):
    assert cli_main(["train", "classify", "--model", "nope", "--data", "digits", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert cli_main(["train", "classify", "--model", "transfer-resnet18", "--data", "digits",
                     "--out", str(tmp_path / "y")]) == 2
    assert "resnet18-f37072fd.pth" in capsys.readouterr().err
    assert cli_main(["train", "classify", "--model", "simple-cnn", "--unfreeze", "--out", str(tmp_path / "z")]) == 2
    assert "--unfreeze applies to transfer models" in capsys.readouterr().err


def test_a_run_folder_can_be_read_while_it_trains(tmp_path):
    """README: studies, embed and report may read a folder while it trains; they see the last
    complete checkpoint. A reader polls a folder that `train_classifier` writes in another process."""
    from netgaze.report import build_report

    out = tmp_path / "training"
    code = ("from netgaze.lab.train import train_classifier; "
            f"train_classifier(epochs=5, out={str(out)!r}, **{FAST!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen, reports, deadline = [], 0, time.monotonic() + 240
    try:
        while proc.poll() is None:
            assert time.monotonic() < deadline, "the training did not end within 240 s"
            if not RunFolder(out).checkpoints():
                time.sleep(0.02)
                continue
            run = load_run(out)                                  # never an error, whatever the trainer is writing
            done = [e for e, _ in RunFolder(out).checkpoints()]
            assert run.epoch in done and run.epoch >= max(seen, default=0)
            stored = _state(out, run.epoch)                      # the model is that checkpoint, whole
            model = run.model.state_dict()
            assert stored.keys() <= model.keys() and all(torch.equal(model[k], stored[k]) for k in stored)
            if proc.poll() is None:
                seen.append(run.epoch)
            if len(seen) % 5 == 1:
                build_report([out], tmp_path / "report.html")     # the report reads it too
                reports += 1
            time.sleep(0.02)
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert len(set(seen)) >= 2 and reports >= 1, f"read only epochs {sorted(set(seen))} while it trained"
    assert load_run(out).epoch == 5
