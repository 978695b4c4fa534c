"""Hugging Face's RunCallback: a real ``Trainer.train`` of a tiny ViT (built from a ``ViTConfig``,
nothing downloaded) writes a run that rebuilds the model offline and that every command reads."""
from __future__ import annotations

import importlib
import json
import sys
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate", reason="the Hugging Face Trainer needs accelerate (pip install accelerate)")

import netgaze as ng  # noqa: E402
from netgaze.cli import main  # noqa: E402

CLASSES = ["cat", "dog", "bird"]


class Pictures(Dataset):
    """The Trainer's kind of dataset: ``{"pixel_values": [3, 32, 32], "labels": int}`` dicts."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 3
        self.pictures = torch.randn(n, 3, 32, 32, generator=g) * 0.5
        for i, label in enumerate(self.labels.tolist()):
            self.pictures[i, :, :16, 8 * label:8 * label + 8] += 1.5

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pictures[i], "labels": self.labels[i]}


def _tiny_vit() -> torch.nn.Module:
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64, num_labels=3,
                                    id2label=dict(enumerate(CLASSES)), label2id={c: i for i, c in enumerate(CLASSES)})
    torch.manual_seed(0)
    return transformers.ViTForImageClassification(config)


def _accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, 1) == prediction.label_ids).mean())}


def _train(model, callback, tmp_path, epochs: int, **args) -> None:
    arguments = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"), num_train_epochs=epochs, per_device_train_batch_size=8, learning_rate=1e-3,
        save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, **args)
    trainer = transformers.Trainer(model=model, args=arguments, train_dataset=Pictures(24), eval_dataset=Pictures(12, 1),
                                   compute_metrics=_accuracy, callbacks=[callback])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.train()


def test_a_hugging_face_trainer_writes_epochs_1_to_n_with_its_metrics_and_the_trained_weights(tmp_path):
    from netgaze.integrations.transformers import RunCallback

    model = _tiny_vit()
    run = tmp_path / "runs" / "vit"
    _train(model, RunCallback(run, data={"test": Pictures(6, 2)}), tmp_path, 3,
           eval_strategy="epoch", logging_strategy="epoch")
    config = json.loads((run / "run.json").read_text())
    assert config["model"] == "hf:ViTForImageClassification" and config["model_args"]["config"]["hidden_size"] == 32
    loaded = ng.load_run(run)                       # rebuilt offline from the config, no trust needed
    assert [e for e, _ in loaded.checkpoints] == [1, 2, 3]
    assert [h["epoch"] for h in loaded.history] == [1, 2, 3]
    for record in loaded.history:                   # the Trainer's own names, the epoch's evaluation included
        assert {"loss", "eval_loss", "eval_accuracy"} <= set(record)
        assert not any(k.endswith(("_runtime", "_per_second")) for k in record)
    assert loaded.config["metric"] == "eval_accuracy" and loaded.classes == CLASSES
    trained = model.state_dict()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, trained[key]), key
    # the model returns an ImageClassifierOutput: explained through its logits with no output=
    assert main(["study", "epochs", str(run), "--images", "2", "--eval", "6", "--quiet"]) == 0
    assert (run / "artifacts" / "epochs.json").is_file()


def test_without_evaluation_each_epoch_is_saved_with_its_training_loss(tmp_path):
    from netgaze.integrations.transformers import RunCallback, epoch_metrics

    run = tmp_path / "vit"
    _train(_tiny_vit(), RunCallback(run, data={"test": Pictures(3)}, classes=["a", "b", "c"]), tmp_path, 2,
           eval_strategy="no", logging_steps=1)
    loaded = ng.load_run(run)
    assert [h["epoch"] for h in loaded.history] == [1, 2] and loaded.classes == ["a", "b", "c"]
    assert all("loss" in h and "eval_loss" not in h for h in loaded.history)
    log = [{"loss": 3.0, "epoch": 0.5}, {"loss": 2.0, "epoch": 1.0}, {"eval_loss": 1.0, "eval_runtime": 0.1, "epoch": 1.0},
           {"loss": 0.5, "epoch": 1.5}]
    assert epoch_metrics(log, 1) == {"loss": 2.0, "eval_loss": 1.0} and epoch_metrics(log, 2) == {"loss": 0.5}


def test_hf_builds_only_transformers_model_classes():
    from netgaze.lab.models import ModelError, build_from_spec

    config = json.loads(_tiny_vit().config.to_json_string(use_diff=False))
    assert type(build_from_spec("hf:ViTForImageClassification", {"config": config})).__name__ == \
        "ViTForImageClassification"
    for name in ("os", "ViTConfig", "os:system"):
        with pytest.raises(ModelError, match="transformers has no model class"):
            build_from_spec(f"hf:{name}", {"config": config})


def test_without_transformers_the_callback_names_the_extra(monkeypatch):
    from netgaze.integrations.extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.delitem(sys.modules, "netgaze.integrations.transformers", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'netgaze\[transformers\]'"):
        importlib.import_module("netgaze.integrations.transformers")


def test_only_the_world_process_zero_writes(tmp_path):
    from types import SimpleNamespace

    from netgaze.integrations.transformers import RunCallback

    callback = RunCallback(tmp_path / "rank1", data={"test": Pictures(3)})
    state = SimpleNamespace(is_world_process_zero=False, epoch=1.0, global_step=3, log_history=[{"loss": 1.0, "epoch": 1.0}])
    callback.on_train_begin(None, state, None, model=_tiny_vit())
    callback.on_epoch_end(None, state, None)
    callback.on_train_end(None, state, None)
    assert not (tmp_path / "rank1").exists()
