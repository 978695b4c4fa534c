"""Lightning's RunCallback: a real ``Trainer.fit`` of a tiny network writes a run that every command reads.

The LightningModule lives in ``tests/integrations/user_code/netgaze_test_lit.py`` (a module of the
user's own, on ``sys.path`` as an installed package would be). Weights are compared bit for bit.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch")

import netgaze as ng  # noqa: E402
from netgaze.cli import main  # noqa: E402
from netgaze.lab.models import ModelError  # noqa: E402

USER_CODE = Path(__file__).parent / "user_code"
BUILD = "netgaze_test_lit:TinyNet"


@pytest.fixture(autouse=True)
def user_code(monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))


def _data(n: int = 24) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    for i in range(n):                       # a bright quarter per class: learnable in a few steps
        x[i, 0, :4, 2 * int(y[i]):2 * int(y[i]) + 3] += 1.0
    return TensorDataset(x, y)


def _fit(module, callback, epochs: int, tmp_path: Path, **trainer_args) -> None:
    data = _data()
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[callback], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         default_root_dir=str(tmp_path), **trainer_args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # Lightning's hints about workers and log intervals
        trainer.fit(module, DataLoader(data, batch_size=8, shuffle=True), DataLoader(data, batch_size=12))


def test_a_lightning_fit_writes_epochs_1_to_n_with_lightnings_metrics_and_the_trained_weights(tmp_path):
    from netgaze.integrations.lightning import RunCallback
    from netgaze_test_lit import LitClassifier

    torch.manual_seed(0)
    lit = LitClassifier()
    run = tmp_path / "runs" / "lit"
    _fit(lit, RunCallback(run, build=BUILD, build_args={"width": 4, "classes": 3}, data={"test": _data(12)},
                          classes=["a", "b", "c"], module_attr="model"), 3, tmp_path)
    loaded = ng.load_run(run, trust_code=True)
    assert [e for e, _ in loaded.checkpoints] == [1, 2, 3] and loaded.epoch == 3
    assert [h["epoch"] for h in loaded.history] == [1, 2, 3]
    for record in loaded.history:            # Lightning's own names, every epoch with both kinds of metric
        assert {"val_acc", "val_loss", "train_loss_epoch"} <= set(record)
    assert loaded.config["metric"] == "val_acc" and loaded.classes == ["a", "b", "c"]
    trained = lit.model.state_dict()
    assert loaded.model.state_dict().keys() == trained.keys()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, trained[key]), key
    assert main(["study", "epochs", str(run), "--trust-code", "--images", "2", "--eval", "6", "--quiet"]) == 0


def test_the_network_is_found_without_module_attr_and_a_skipped_validation_is_not_repeated(tmp_path):
    from netgaze.integrations.lightning import RunCallback
    from netgaze_test_lit import LitClassifier

    lit = LitClassifier()      # its state dict holds loss.weight too: the attribute 'model' is what fits
    run = tmp_path / "lit"
    _fit(lit, RunCallback(run, build=BUILD, data={"test": _data(6)}), 2, tmp_path, check_val_every_n_epoch=2)
    history = ng.load_run(run, trust_code=True).history
    assert "val_acc" not in history[0] and "train_loss_epoch" in history[0]   # epoch 1 was not validated
    assert "val_acc" in history[1]


def test_the_lightning_module_itself_when_its_weights_fit_the_build(tmp_path):
    from netgaze.integrations.lightning import RunCallback
    from netgaze_test_lit import BareLit

    lit = BareLit()
    run = tmp_path / "bare"
    _fit(lit, RunCallback(run, build=BUILD, data={"test": _data(6)}), 2, tmp_path, limit_val_batches=0)
    loaded = ng.load_run(run, trust_code=True)
    assert [h["epoch"] for h in loaded.history] == [1, 2] and "train_loss_epoch" in loaded.history[0]
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, lit.state_dict()[key]), key


def test_weights_that_do_not_fit_the_build_name_the_keys(tmp_path):
    from netgaze.integrations.lightning import RunCallback
    from netgaze_test_lit import LitClassifier

    with pytest.raises(ModelError) as err:
        _fit(LitClassifier(), RunCallback(tmp_path / "bad", build=BUILD, build_args={"width": 8},
                                          data={"test": _data(6)}), 1, tmp_path)
    assert "LitClassifier.model has the keys of build" in str(err.value)
    assert "features.0.bias is [4], the build makes [8] (5 keys differ)" in str(err.value)
    with pytest.raises(ModelError, match=r"nor one of its attributes \(model, loss\).*module_attr='NAME'"):
        _fit(LitClassifier(), RunCallback(tmp_path / "bad1", build="torchvision:resnet18", data={"test": _data(6)}),
             1, tmp_path)
    with pytest.raises(ModelError, match="no such sub-module.*model, loss"):
        _fit(LitClassifier(), RunCallback(tmp_path / "bad2", build=BUILD, data={"test": _data(6)},
                                          module_attr="net"), 1, tmp_path)


def test_without_lightning_the_callback_names_the_extra(monkeypatch):
    from netgaze.integrations.extras import MissingExtraError

    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    monkeypatch.delitem(sys.modules, "netgaze.integrations.lightning", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'netgaze\[lightning\]'"):
        importlib.import_module("netgaze.integrations.lightning")


def test_importing_netgaze_imports_neither_lightning_nor_transformers():
    code = ("import sys, netgaze, netgaze.integrations; "
            "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_build_the_lightning_module_class_is_the_build(tmp_path):
    from netgaze.integrations.lightning import RunCallback
    from netgaze_test_lit import BareLit

    run = tmp_path / "own"
    _fit(BareLit(), RunCallback(run, data={"test": _data(6)}), 1, tmp_path, limit_val_batches=0)
    loaded = ng.load_run(run, trust_code=True)
    assert loaded.config["model"] == "netgaze_test_lit:BareLit" and type(loaded.model).__name__ == "BareLit"


def test_only_the_global_rank_zero_writes(tmp_path):
    from types import SimpleNamespace

    from netgaze.integrations.lightning import RunCallback
    from netgaze_test_lit import LitClassifier

    callback = RunCallback(tmp_path / "rank1", build=BUILD, data={"test": _data(6)}, module_attr="model")
    trainer = SimpleNamespace(is_global_zero=False, current_epoch=0, sanity_checking=False,
                              callback_metrics={"val_acc": torch.tensor(0.5)})
    lit = LitClassifier()
    callback.on_train_start(trainer, lit)
    callback.on_train_epoch_end(trainer, lit)
    callback.on_fit_end(trainer, lit)
    assert not (tmp_path / "rank1").exists()


@pytest.mark.timeout(600)
def test_a_real_two_process_ddp_fit_writes_one_run_from_rank_zero(tmp_path):
    """Two processes (ddp_spawn, gloo on the CPU) train together; only rank 0 writes, once per epoch, and the
    run's last checkpoint holds the weights both ranks ended with (DDP keeps them equal)."""
    import hashlib
    import os

    run = tmp_path / "ddp-run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(USER_CODE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(USER_CODE / "netgaze_test_ddp_fit.py"), str(run)], env=env,
                          capture_output=True, text=True, timeout=540, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = dict(line.split()[1:] for line in done.stdout.splitlines() if line.startswith("RANK "))
    assert set(ranks) == {"0", "1"} and ranks["0"] == ranks["1"], done.stdout
    loaded = ng.load_run(run, trust_code=True)
    assert [e for e, _ in loaded.checkpoints] == [1, 2] and loaded.epoch == 2
    history = (run / "history.jsonl").read_text().splitlines()
    assert len(history) == 2                                   # one line per epoch: rank 1 wrote nothing
    state = loaded.model.state_dict()
    digest = hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()
    assert digest == ranks["0"]
