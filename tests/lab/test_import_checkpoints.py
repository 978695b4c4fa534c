"""import_checkpoints: run folders from trainings that already happened (state dicts, Lightning, Hugging Face).

The Lightning and Hugging Face files are written here as those libraries lay them out (neither
library is needed): a ``.ckpt`` dict whose ``state_dict`` carries the LightningModule's
attribute prefix and whose ``epoch`` counts from 0, and ``checkpoint-N`` folders with
``model.safetensors`` / ``pytorch_model.bin``, ``config.json`` and ``trainer_state.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch.utils.data import TensorDataset

import netgaze as ng
from netgaze.lab.checkpoint_import import CheckpointImportError
from netgaze.lab.models import ModelError

USER_CODE = Path(__file__).parent / "user_code"
BUILD = "netgaze_test_usercnn:SmallCNN"


@pytest.fixture(autouse=True)
def user_code_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))


def _states(n: int) -> list[dict[str, torch.Tensor]]:
    """n different weight sets of SmallCNN(width=4, classes=3)."""
    from netgaze_test_usercnn import SmallCNN

    states = []
    for seed in range(n):
        torch.manual_seed(seed)
        states.append({k: v.clone() for k, v in SmallCNN(4, 3).state_dict().items()})
    return states


def _test_set() -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(9, 1, 8, 8, generator=g), torch.arange(9) % 3)


def _assert_epochs(run: Path, expected: dict[int, dict[str, torch.Tensor]]) -> None:
    loaded = ng.load_run(run, trust_code=True)
    assert [e for e, _ in loaded.checkpoints] == sorted(expected)
    for epoch, state in expected.items():
        got = loaded.model_at(epoch).state_dict()
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state), epoch


def test_a_folder_of_pt_files_becomes_one_epoch_each(tmp_path):
    states = _states(3)
    files = tmp_path / "ckpts"
    files.mkdir()
    for epoch, state in zip((1, 2, 10), states):      # natural order: epoch_10 after epoch_2
        torch.save(state, files / f"epoch_{epoch}.pt")
    torch.save({"model_state_dict": states[1], "optimizer": {"lr": 0.1}}, files / "model-1.pth")  # other weights
    (files / "README.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointImportError, match=r"epoch_1.pt and .*model-1.pth are both epoch 1"):
        ng.import_checkpoints(tmp_path / "bad", files, build=BUILD, data={"test": _test_set()})
    (files / "model-1.pth").unlink()
    run = ng.import_checkpoints(tmp_path / "run", files, build=BUILD, build_args={"width": 4, "classes": 3},
                                data={"test": _test_set()}, metrics={2: {"val_acc": 0.5}, 10: {"val_acc": 0.75}})
    _assert_epochs(run, dict(zip((1, 2, 10), states)))
    config = json.loads((run / "run.json").read_text())
    assert config["metric"] == "val_acc" and config["model"] == BUILD
    assert [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()] == [
        {"epoch": 1}, {"epoch": 2, "val_acc": 0.5}, {"epoch": 10, "val_acc": 0.75}]


def test_lightning_checkpoints_lose_the_module_prefix_and_count_epochs_from_one(tmp_path):
    states = _states(2)
    files = tmp_path / "lightning"
    files.mkdir()
    for lightning_epoch, state in enumerate(states):       # Lightning's epoch=0 is after the first epoch
        wrapped = {f"model.{k}": v for k, v in state.items()}
        wrapped["criterion.weight"] = torch.ones(3)          # the LightningModule's other parts
        ckpt = {"epoch": lightning_epoch, "global_step": 3 * (lightning_epoch + 1),
                "pytorch-lightning_version": "2.4.0", "state_dict": wrapped,
                "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": lightning_epoch}}}},
                "hyper_parameters": {"lr": 0.01, "width": 4}}
        torch.save(ckpt, files / f"epoch={lightning_epoch}-step={3 * (lightning_epoch + 1)}.ckpt")
    torch.save(torch.load(files / "epoch=1-step=6.ckpt", weights_only=True), files / "last.ckpt")  # same as epoch 2
    run = ng.import_checkpoints(tmp_path / "run", files, build=BUILD, data={"test": _test_set()})
    _assert_epochs(run, {1: states[0], 2: states[1]})


def test_hugging_face_checkpoint_folders_with_their_logged_metrics(tmp_path):
    states = _states(2)
    out = tmp_path / "hf"
    for epoch, state in zip((1, 2), states):
        folder = out / f"checkpoint-{5 * epoch}"
        folder.mkdir(parents=True)
        if epoch == 1:
            save_file(state, str(folder / "model.safetensors"))
        else:
            torch.save(state, folder / "pytorch_model.bin")
        (folder / "config.json").write_text(json.dumps({"model_type": "small-cnn", "num_labels": 3}))
        log = [{"epoch": e, "step": 5 * e, "eval_accuracy": 0.25 * e, "eval_loss": 1.0 / e} for e in range(1, epoch + 1)]
        log.insert(0, {"epoch": 0.4, "step": 2, "loss": 1.3, "learning_rate": 0.001})
        (folder / "trainer_state.json").write_text(json.dumps({"epoch": float(epoch), "global_step": 5 * epoch,
                                                                "log_history": log}))
    (out / "runs").mkdir()      # the Trainer's TensorBoard folder beside them
    run = ng.import_checkpoints(tmp_path / "run", out, build=BUILD, data={"test": _test_set()})
    _assert_epochs(run, {1: states[0], 2: states[1]})
    history = ng.load_run(run, trust_code=True).history
    assert history == [{"epoch": 1, "eval_accuracy": 0.25, "eval_loss": 1.0},
                       {"epoch": 2, "eval_accuracy": 0.5, "eval_loss": 0.5}]
    assert json.loads((run / "run.json").read_text())["metric"] == "eval_accuracy"
    one = ng.import_checkpoints(tmp_path / "one", out / "checkpoint-10", build=BUILD, data={"test": _test_set()})
    _assert_epochs(one, {2: states[1]})


def test_files_that_are_not_weights_or_do_not_fit_are_one_line(tmp_path):
    from netgaze_test_usercnn import SmallCNN

    torch.save(SmallCNN(), tmp_path / "whole_model.pt")       # a pickled module, not a state dict
    with pytest.raises(CheckpointImportError, match="weights_only=True.*save model.state_dict"):
        ng.import_checkpoints(tmp_path / "r1", [tmp_path / "whole_model.pt"], build=BUILD, data={"test": _test_set()})
    torch.save(_states(1)[0], tmp_path / "w4.pt")
    with pytest.raises(ModelError, match=r"w4.pt does not fit build='netgaze_test_usercnn:SmallCNN'.*size mismatch"):
        ng.import_checkpoints(tmp_path / "r2", [tmp_path / "w4.pt"], build=BUILD, build_args={"width": 8},
                              data={"test": _test_set()})
    assert not (tmp_path / "r2").exists()          # refused before anything was written
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointImportError, match="holds no checkpoint"):
        ng.import_checkpoints(tmp_path / "r3", tmp_path / "empty", build=BUILD, data={"test": _test_set()})
