"""RunWriter: a run folder from a plain PyTorch loop with the user's own class, usable from anywhere.

The user's model lives in ``tests/lab/user_code/netgaze_test_usercnn.py`` (a module of their own,
on PYTHONPATH as an installed package would be). Numbers, not shapes: weights are compared
bit for bit, the kept test pictures exactly (they are not in [0, 1] and would not survive PNG).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Subset, TensorDataset

import netgaze as ng
from netgaze.lab.datasets.base import DatasetError
from netgaze.lab.models import ModelError, UntrustedCodeError, build_from_spec, trusting_code
from netgaze.lab.run_metric import pick_metric

USER_CODE = Path(__file__).parent / "user_code"
SRC = Path(__file__).resolve().parents[2] / "src"
BUILD = "netgaze_test_usercnn:SmallCNN"


@pytest.fixture(autouse=True)
def user_code_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))


def _data(n: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.7 + 0.1     # float pictures, not in [0, 1]
    y = torch.arange(n) % 3
    x[y == 1, :, :4] += 1.5                                  # a little signal to learn
    return x, y


def train_plain_loop(out: Path, epochs: int = 2, metric_name: str = "val_acc") -> tuple[nn.Module, list]:
    """The user's loop; the netgaze lines are the ``with`` and ``save``."""
    from netgaze_test_usercnn import SmallCNN

    torch.manual_seed(0)
    x, y = _data()
    model = SmallCNN(width=4, classes=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    states = []
    with ng.RunWriter(out, model=model, build=BUILD, build_args={"width": 4, "classes": 3},
                      data={"test": TensorDataset(x, y)}, classes=["a", "b", "c"]) as writer:
        for epoch in range(1, epochs + 1):
            for i in range(0, len(x), 8):
                loss = F.cross_entropy(model(x[i:i + 8]), y[i:i + 8])
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                acc = (model(x).argmax(1) == y).float().mean()
            writer.save(epoch, model, metrics={metric_name: acc, "train_loss": loss.detach()})
            states.append({k: v.clone() for k, v in model.state_dict().items()})
    return model, states


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(USER_CODE)])
    env["MPLBACKEND"] = "Agg"
    return env


def _netgaze(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netgaze", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=240)


def test_a_plain_loop_with_its_own_class_works_everywhere_from_a_fresh_interpreter(tmp_path):
    run = tmp_path / "project" / "runs" / "mine"
    _, states = train_plain_loop(run)
    config = json.loads((run / "run.json").read_text())
    assert config["model"] == BUILD and config["model_args"] == {"width": 4, "classes": 3}
    assert config["data"] == "tensors:data.safetensors" and config["metric"] == "val_acc" and config["epochs"] == 2
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2] and set(history[0]) == {"epoch", "val_acc", "train_loss"}
    torch.save(states, tmp_path / "expected.pt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    study = _netgaze(["study", "epochs", str(run), "--trust-code", "--images", "2", "--eval", "6", "--quiet"],
                     elsewhere)
    assert study.returncode == 0, study.stderr
    rows = json.loads((run / "artifacts" / "epochs.json").read_text())["numbers"]["per_epoch"]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["test_acc"] for r in rows] == pytest.approx([h["val_acc"] for h in history], abs=1e-6)
    report = _netgaze(["report", str(run)], elsewhere)
    assert report.returncode == 0, report.stderr
    assert (run / "report.html").stat().st_size > 1000
    check = f"""
import torch, netgaze as ng
expected = torch.load({str(tmp_path / 'expected.pt')!r}, weights_only=True)
x = torch.load({str(tmp_path / 'x.pt')!r}, weights_only=True)
for epoch, state in zip((1, 2), expected):
    run = ng.load_run({str(run)!r}, epoch=epoch, trust_code=True)
    got = run.model.state_dict()
    assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state), epoch
test = run.dataset("test")
images = torch.stack([test[i][0] for i in range(len(test))])
assert images.dtype == torch.float32 and torch.equal(images, x) and test.classes == ["a", "b", "c"]
assert [int(test[i][1]) for i in range(len(test))] == [i % 3 for i in range(len(test))]
print("same")
"""
    torch.save(_data()[0], tmp_path / "x.pt")
    loaded = subprocess.run([sys.executable, "-c", check], cwd=elsewhere, env=_env(), capture_output=True, text=True,
                            timeout=120)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "same", loaded.stderr


def _hostile_run(tmp_path: Path, build: str, args: dict) -> Path:
    """A real run folder whose run.json was edited to name other code."""
    run = tmp_path / "hostile"
    train_plain_loop(run, epochs=1)
    config = json.loads((run / "run.json").read_text())
    config.update(model=build, model_args=args)
    (run / "run.json").write_text(json.dumps(config))
    return run


def test_a_hostile_run_naming_os_system_runs_nothing_with_or_without_trust(tmp_path):
    marker = tmp_path / "PWNED"
    run = _hostile_run(tmp_path, "os:system", {"command": f"touch {marker}"})
    with pytest.raises(UntrustedCodeError, match=r"trust_code=True \(--trust-code\)"):
        ng.load_run(run)
    with pytest.raises(UntrustedCodeError, match="builtin_function_or_method"):
        ng.load_run(run, trust_code=True)        # trusted, still only classes and functions of the module
    with pytest.raises(UntrustedCodeError):
        ng.load_run(run, trust_code="os")
    result = _netgaze(["study", "epochs", str(run), "--quiet"], tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--trust-code" in result.stderr
    result = _netgaze(["explain", "--run", str(run), "--all", "--trust-code", "--out", str(tmp_path / "x")], tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "builtin_function_or_method" in result.stderr
    assert not marker.exists()


def test_an_untrusted_module_is_never_imported(tmp_path, monkeypatch):
    evil = tmp_path / "code"
    evil.mkdir()
    marker = tmp_path / "imported"
    (evil / "netgaze_test_evil.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom netgaze_test_usercnn import SmallCNN as _S\n"
        "class Net(_S):\n    pass\n")
    monkeypatch.syspath_prepend(str(evil))
    run = _hostile_run(tmp_path, "netgaze_test_evil:Net", {"width": 4, "classes": 3})
    for refused in (False, "netgaze_test_usercnn", ["other"]):
        with pytest.raises(UntrustedCodeError, match="--trust-module netgaze_test_evil"):
            ng.load_run(run, trust_code=refused)
    assert not marker.exists() and "netgaze_test_evil" not in sys.modules
    loaded = ng.load_run(run, trust_code="netgaze_test_evil")      # naming the module trusts it
    assert marker.exists() and type(loaded.model).__name__ == "Net"


def test_trust_reaches_every_epoch_and_a_trusting_block(tmp_path):
    run = tmp_path / "run"
    _, states = train_plain_loop(run)
    loaded = ng.load_run(run, epoch=2, trust_code=True)
    earlier = loaded.model_at(1)
    assert all(torch.equal(earlier.state_dict()[k], states[0][k]) for k in states[0])
    with trusting_code(BUILD.split(":")[0]):
        assert ng.load_run(run).epoch == 2
    with pytest.raises(UntrustedCodeError):
        ng.load_run(run)


def test_a_builder_function_must_return_a_module(tmp_path):
    assert isinstance(build_from_spec("netgaze_test_usercnn:make_small_cnn", {"width": 2}, trust_code=True), nn.Module)
    with pytest.raises(UntrustedCodeError, match="returned a int"):
        build_from_spec("netgaze_test_usercnn:not_a_model", {}, trust_code=True)
    with pytest.raises(ModelError, match="takes no argument 'depth'; its arguments are: width, classes"):
        build_from_spec(BUILD, {"depth": 3}, trust_code=True)


def test_a_wrong_build_string_lists_the_accepted_forms(tmp_path):
    from netgaze_test_usercnn import SmallCNN

    x, y = _data(6)
    for build in ("resnet-9000", "simple-cn", "not a path"):
        with pytest.raises(ModelError) as err:
            ng.RunWriter(tmp_path / "r", model=SmallCNN(), build=build, data={"test": TensorDataset(x, y)})
        message = str(err.value)
        assert all(form in message for form in ("torchvision:NAME", "timm:NAME", "simple-cnn",
                                                "package.module:callable", "trust_code=True"))
    assert not (tmp_path / "r").exists()


def test_a_build_that_makes_another_model_is_refused_at_once(tmp_path):
    from netgaze_test_usercnn import SmallCNN

    x, y = _data(6)
    with pytest.raises(ModelError, match=r"features.0.bias is \[4\] but the build makes \[8\]"):
        ng.RunWriter(tmp_path / "r", model=SmallCNN(4), build=BUILD, build_args={"width": 8},
                     data={"test": TensorDataset(x, y)})
    script_class = type("ScriptNet", (SmallCNN,), {"__module__": "__main__"})
    with pytest.raises(ModelError, match=r"defined in the script you run \(__main__\)"):
        ng.RunWriter(tmp_path / "r", model=script_class(), data={"test": TensorDataset(x, y)})


def test_data_over_the_limit_says_how_to_keep_a_sample(tmp_path):
    from netgaze_test_usercnn import SmallCNN

    x, y = _data(64)
    big = TensorDataset(x, y)                                     # 64 * 64 floats = 16 KiB
    with pytest.raises(DatasetError) as err:
        ng.RunWriter(tmp_path / "r", model=SmallCNN(), build=BUILD, data={"test": big}, max_data_mb=0.01)
    message = str(err.value)
    assert "test: 64 pictures of 1x8x8 float32" in message and "over the limit of 0.01 MB" in message
    assert "torch.utils.data.Subset(test_set, range(1000))" in message and "max_data_mb=" in message
    assert "folder:PATH" in message and "\n" not in message and not (tmp_path / "r" / "run.json").exists()
    with ng.RunWriter(tmp_path / "r", model=SmallCNN(), build=BUILD, data={"test": Subset(big, range(0, 64, 2))},
                      max_data_mb=0.01) as writer:
        writer.save(1, SmallCNN())
    kept = ng.load_run(tmp_path / "r", trust_code=True).dataset("test")
    assert len(kept) == 32 and torch.equal(kept[5][0], x[10])


def test_the_plotted_metric_follows_a_stated_rule_and_metric_overrides(tmp_path):
    assert pick_metric({}, [{"epoch": 1, "loss": 0.3, "accuracy": 0.5, "val_acc": 0.4}]) == "val_acc"
    assert pick_metric({}, [{"epoch": 1, "eval_accuracy": 0.7, "eval_loss": 0.1}]) == "eval_accuracy"
    assert pick_metric({}, [{"epoch": 1, "seconds": 3.0, "my_score": 2}]) == "my_score"
    assert pick_metric({"metric": "f1"}, [{"epoch": 1, "test_acc": 0.5}]) == "f1"
    from netgaze_test_usercnn import SmallCNN

    x, y = _data(6)
    with ng.RunWriter(tmp_path / "r", model=SmallCNN(), build=BUILD, data={"test": TensorDataset(x, y)},
                      metric="f1") as writer:
        writer.save(1, SmallCNN(), metrics={"test_acc": 0.5, "f1": torch.tensor(0.25)})
    config = json.loads((tmp_path / "r" / "run.json").read_text())
    assert config["metric"] == "f1"
    assert ng.load_run(tmp_path / "r", trust_code=True).history == [{"epoch": 1, "test_acc": 0.5, "f1": 0.25}]


def test_lab_names_and_installed_builders_need_no_trust(tmp_path, monkeypatch):
    import importlib.metadata as metadata

    from netgaze_test_usercnn import make_small_cnn

    point = types.SimpleNamespace(name="tiny-user-net", value="netgaze_test_usercnn:make_small_cnn",
                                  load=lambda: make_small_cnn)
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points",
                        lambda **kw: [point] if kw.get("group") == "netgaze.models" else real(**kw))
    x, y = _data(6)
    for build, args in (("tiny-user-net", {"width": 3}), ("simple-cnn", {"num_classes": 3, "in_channels": 1})):
        model = build_from_spec(build, args)
        with ng.RunWriter(tmp_path / build, model=model, build=build, build_args=args,
                          data={"test": TensorDataset(x, y)}) as writer:
            writer.save(1, model)
        loaded = ng.load_run(tmp_path / build)            # no trust needed: installed code
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.model.state_dict().items())
    assert "tiny-user-net" in str(pytest.raises(ModelError, build_from_spec, "nope").value)


def test_save_refuses_a_repeated_epoch_and_the_writer_owns_the_folder(tmp_path):
    from netgaze_test_usercnn import SmallCNN
    from netgaze.errors import RunError
    from netgaze.lab.runlock import RunBusyError

    x, y = _data(6)
    model = SmallCNN()
    writer = ng.RunWriter(tmp_path / "r", model=model, build=BUILD, data={"test": TensorDataset(x, y)})
    writer.save(1, model)
    with pytest.raises(RunError, match="already has a checkpoint of epoch 1"):
        writer.save(1, model)
    with pytest.raises(RunBusyError):
        ng.RunWriter(tmp_path / "r", model=model, build=BUILD, data={"test": TensorDataset(x, y)})
    writer.close()
    with pytest.raises(RunError, match="resume=True"):
        ng.RunWriter(tmp_path / "r", model=model, build=BUILD, data={"test": TensorDataset(x, y)})
    with ng.RunWriter(tmp_path / "r", model=model, build=BUILD, data={"test": TensorDataset(x, y)},
                      resume=True) as again:
        again.save(2, model, metrics={"val_acc": 1.0})
    assert [e for e, _ in ng.load_run(tmp_path / "r", trust_code=True).checkpoints] == [1, 2]


def test_an_image_folder_is_referenced_not_copied_and_travels_by_path(tmp_path):
    import numpy as np
    from PIL import Image

    from netgaze_test_usercnn import SmallCNN

    folder = tmp_path / "pictures"
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "fox"):
        (folder / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / name / f"{i}.png")
    model = SmallCNN()
    with ng.RunWriter(tmp_path / "runs" / "r", model=model, build=BUILD, data=f"folder:{folder}",
                      data_options={"size": 8, "mode": "L"}) as writer:
        writer.save(1, model)
    config = json.loads((tmp_path / "runs" / "r" / "run.json").read_text())
    assert config["data"] == f"folder:{folder}" and config["data_from_run"] == "folder:../../pictures"
    assert config["classes"] == ["cat", "dog", "fox"] and not (tmp_path / "runs" / "r" / "data.safetensors").exists()
    test = ng.load_run(tmp_path / "runs" / "r", trust_code=True).dataset("test")
    expected = ng.datasets.load_dataset(f"folder:{folder}", "test", size=8, mode="L")
    assert len(test) == len(expected) == 3 and all(torch.equal(test[i][0], expected[i][0]) for i in range(3))


def test_a_failed_background_write_is_raised_by_the_next_call(tmp_path, monkeypatch):
    from netgaze_test_usercnn import SmallCNN

    x, y = _data(6)
    model = SmallCNN()
    writer = ng.RunWriter(tmp_path / "r", model=model, build=BUILD, data={"test": TensorDataset(x, y)})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(writer.folder, "save_state", disk_full)
    writer.save(1, model)                       # returns at once: the write happens on the writer's thread
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    assert writer._lock is None and not (tmp_path / "r" / "checkpoints" / "epoch-0001.json").exists()


def test_object_masks_are_kept_with_the_pictures_through_a_subset(tmp_path):
    test = ng.datasets.shapes("test", n=40, size=16)
    model = build_from_spec("simple-cnn", {"num_classes": len(test.classes), "in_channels": 3})
    sample = Subset(test, range(0, 40, 3))
    with ng.RunWriter(tmp_path / "r", model=model, build="simple-cnn",
                      build_args={"num_classes": len(test.classes), "in_channels": 3}, data={"test": sample}) as writer:
        writer.save(1, model)
    kept = ng.load_run(tmp_path / "r").dataset("test")
    assert kept.classes == test.classes and len(kept) == 14
    for i, j in enumerate(range(0, 40, 3)):
        assert torch.equal(kept[i][0], test[j][0]) and kept[i][1] == test[j][1]
        assert torch.equal(kept.mask(i), torch.as_tensor(test.mask(j)).bool())
    assert kept.masks.dtype == torch.bool and kept.masks.shape == (14, 16, 16)
    result = _netgaze(["study", "dissect", str(tmp_path / "r"), "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_bare_torchvision_network_is_kept_bare_and_explained_exactly(tmp_path):
    """``build="torchvision:NAME"`` for the user's own (unwrapped) network: the run records
    ``normalize: False`` instead of putting ImageNet normalisation in front of a model that was
    never trained with it, and explains exactly the user's network."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=2).eval()
    test_set = torch.utils.data.TensorDataset(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]))
    with ng.RunWriter(tmp_path / "run", model, build="torchvision:resnet18", build_args={"num_classes": 2},
                      data={"test": test_set}, classes=["a", "b"]) as writer:
        writer.save(1, model, {"val_acc": 0.5})
        assert writer.last_epoch == 1
    run = ng.load_run(tmp_path / "run")
    assert run.config["model_args"] == {"num_classes": 2, "normalize": False}
    x = test_set.tensors[0]
    assert torch.equal(run.model(x), model(x))
    assert torch.equal(ng.gradcam(run.model, x, "layer3"), ng.gradcam(model, x, "layer3"))
