"""Run folders: atomic writes, bit-exact checkpoints, history, curves, load_run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from netgaze.lab.curves import plot_curves
from netgaze.lab.models import build_model
from netgaze.lab.runs import (RunError, RunFolder, atomic_write_json, load_run, remove_partial_files)


def _model(seed=0):
    torch.manual_seed(seed)
    model = build_model("simple-cnn-bn", num_classes=3, in_channels=1, channels=(4, 8, 8, 8))
    model.train()
    model(torch.rand(8, 1, 16, 16))  # moves the batch-norm running statistics off their defaults
    return model


def _write_run(path, epochs=(0, 1, 2)):
    folder = RunFolder(path)
    folder.prepare()
    config = {"task": "classify", "data": "digits", "model": "simple-cnn-bn",
              "model_args": {"num_classes": 3, "in_channels": 1, "channels": [4, 8, 8, 8]}, "classes": ["a", "b", "c"]}
    folder.write_config(config)
    models = {}
    history = []
    for e in epochs:
        models[e] = _model(seed=e)
        record = {"epoch": e, "train_loss": 1.0 / (e + 1), "test_acc": 0.3 * e} if e else {}
        if e:
            history.append(record)
        folder.save_epoch(e, models[e], record, {"optimizers": {}}, {"classes": config["classes"]})
    folder.write_history(history)
    return folder, models


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    atomic_write_json(tmp_path / "a" / "x.json", {"v": 1})
    atomic_write_json(tmp_path / "a" / "x.json", {"v": 2})
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"v": 2}


def test_clean_up_removes_only_the_trainers_own_temporary_files(tmp_path):
    """Issue 14 item 2: a user's own ``.*.tmp-*`` files, anywhere in the folder, stay."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "notes" / "drafts").mkdir(parents=True)
    ours = [run / ".run.json.tmp-123", run / ".history.jsonl.tmp-9", run / ".curves.png.tmp-77",
            run / "checkpoints" / ".epoch-0003.safetensors.tmp-123", run / "checkpoints" / ".epoch-0003.optim.pt.tmp-5",
            run / "checkpoints" / ".epoch-0012.json.tmp-123"]
    users = [run / "notes" / "drafts" / ".essay.txt.tmp-1", run / ".x.json.tmp-123", run / ".run.json.tmp-abc",
             run / "checkpoints" / ".mine.json.tmp-4", run / "notes" / ".run.json.tmp-123",
             run / ".run.json.tmp-12.bak"]
    for path in ours + users:
        path.write_text("half")
    removed = remove_partial_files(run)
    assert sorted(removed) == sorted(ours)
    assert not any(p.exists() for p in ours)
    assert all(p.read_text() == "half" for p in users)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    folder, models = _write_run(tmp_path / "run")
    for epoch, model in models.items():
        saved = model.state_dict()
        loaded = folder.load_weights(epoch, verify=True)
        assert saved.keys() == loaded.keys()
        for key in saved:
            assert loaded[key].dtype == saved[key].dtype, key
            assert torch.equal(loaded[key], saved[key]), key
    assert [e for e, _ in folder.checkpoints()] == [0, 1, 2]
    # a checkpoint without its metadata (killed before the last write) does not count
    folder.checkpoint_paths(2)[2].unlink()
    assert [e for e, _ in folder.checkpoints()] == [0, 1]
    # a damaged weights file is caught by its checksum
    weights = folder.checkpoint_paths(1)[0]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(RunError, match="checksum"):
        folder.load_weights(1, verify=True)


def test_load_run_rebuilds_the_model(tmp_path):
    folder, models = _write_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.epoch == 2 and run.classes == ["a", "b", "c"] and not run.model.training
    assert [e for e, _ in run.checkpoints] == [0, 1, 2]
    assert [r["epoch"] for r in run.history] == [1, 2]
    x = torch.rand(5, 1, 16, 16)
    models[2].eval()
    assert torch.equal(run.model(x), models[2](x))
    first = load_run(tmp_path / "run", epoch=1)
    assert torch.equal(first.model.features.conv1.weight, models[1].features.conv1.weight)
    assert torch.equal(run.model_at(0).features.bn2.running_mean, models[0].features.bn2.running_mean)
    with pytest.raises(RunError, match=r"no checkpoint of epoch 7; it has epochs \[0, 1, 2\]"):
        load_run(tmp_path / "run", epoch=7)
    with pytest.raises(RunError, match="no run.json"):
        load_run(tmp_path)


def test_history_tolerates_a_torn_last_line(tmp_path):
    folder = RunFolder(tmp_path)
    folder.history_path.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert folder.read_history() == [{"epoch": 1}, {"epoch": 2}]
    folder.history_path.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(RunError, match="line 2"):
        folder.read_history()


def test_curves_png_has_one_panel_per_metric(tmp_path):
    history = [{"epoch": e, "train_acc": 0.5 + 0.1 * e, "test_acc": 0.45 + 0.1 * e,
                "train_loss": 1.0 / e, "test_loss": 1.2 / e, "seconds": 1.0} for e in range(1, 5)]
    path = plot_curves(history, tmp_path / "curves.png", title="demo")
    image = np.asarray(Image.open(path).convert("L"))
    assert image.shape[1] > 1.8 * image.shape[0]  # two panels side by side
    assert (image < 128).mean() > 0.01  # lines and text were drawn
    assert plot_curves([{"epoch": 1, "seconds": 2.0}], tmp_path / "none.png") is None
