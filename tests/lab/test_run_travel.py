"""Runs that travel (issue 14 items 6, 8, 9): data paths stored so a moved run folder still works,
``--data`` to point at moved data, ``--size`` for every dataset, a damaged checkpoint on every load."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from netgaze.cli import main
from netgaze.lab.datasets import load_dataset
from netgaze.lab.datasets.base import DatasetError
from netgaze.lab.runs import DamagedCheckpointError, RunError, RunFolder, load_run
from netgaze.lab.train import default_image_size, train_classifier

TINY = {"channels": [4, 8, 8, 8]}
SMALL = dict(data="shapes", data_options={"n": 64, "size": 16}, batch_size=32, progress=False, model_options=TINY)


def picture_folder(root, per_class=8, size=20):
    """Two classes that differ by colour: red-ish and blue-ish pictures with noise."""
    rng = np.random.default_rng(0)
    for name, colour in (("red", (200, 40, 40)), ("blue", (40, 40, 200))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size + 4, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def train_tiny(data, out, **options):
    return train_classifier(data=str(data), epochs=1, out=str(out), batch_size=8, progress=False,
                            model_options=TINY, data_options={"size": 24, **options})


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """project/data/pics (outside the run) and project/runs/r, trained from project/ with relative paths."""
    root = tmp_path / "project"
    picture_folder(root / "data" / "pics")
    monkeypatch.chdir(root)
    train_tiny("data/pics", "runs/r")
    (tmp_path / "elsewhere").mkdir()
    return root


def test_data_outside_the_run_is_stored_absolute_and_relative(project):
    config = json.loads((project / "runs" / "r" / "run.json").read_text())
    assert config["data"] == str(project / "data" / "pics")
    assert config["data_from_run"] == "../../data/pics"
    assert config["data_options"]["size"] == 24


def test_every_command_after_moving_the_project_and_from_elsewhere(project, tmp_path, monkeypatch, capsys):
    moved = tmp_path / "moved"
    shutil.move(str(project), moved)           # the absolute path is gone, the layout is kept
    monkeypatch.chdir(tmp_path / "elsewhere")
    run = load_run(moved / "runs" / "r")
    test = run.dataset("test")
    assert len(test) == 4 and test.size == (24, 24) and str(moved / "data" / "pics") in str(test.root)
    run_dir = str(moved / "runs" / "r")
    assert main(["embed", "--run", run_dir, "--method", "pca", "--split", "all",
                 "--no-progress"]) == 0
    assert main(["study", "layers", run_dir, "--images", "2"]) == 0
    assert main(["explain", "--run", run_dir, "--all", "--split", "test", "--out", "expl"]) == 0
    assert json.loads((tmp_path / "elsewhere" / "expl" / "index.json").read_text())
    picture = moved / "data" / "pics" / "red" / "0.png"
    assert main(["explain", "--run", run_dir, "--images", str(picture), "--out", "one"]) == 0
    assert main(["study", "epochs", run_dir, "--images", "2", "--eval", "4", "--quiet"]) == 0
    assert main(["visualize", "--run", run_dir, "--layer", "logits", "--steps", "2", "--quiet", "--out", "viz"]) == 0
    assert main(["report", run_dir]) == 0
    html = (moved / "runs" / "r" / "report.html").read_text()
    assert "Grad-CAM on different layers" in html and "refused" not in html
    # resuming from here, the data named where it is now: the same data, not a new configuration
    assert main(["train", "classify", "--data", str(moved / "data" / "pics"), "--size", "24", "--epochs", "2",
                 "--batch-size", "8", "--model-option", "channels=[4,8,8,8]", "--quiet", "--resume",
                 "--out", run_dir]) == 0
    config = json.loads((moved / "runs" / "r" / "run.json").read_text())
    assert config["data"] == str(moved / "data" / "pics") and config["data_from_run"] == "../../data/pics"
    assert [e for e, _ in RunFolder(moved / "runs" / "r").checkpoints()] == [0, 1, 2]


def test_a_run_moved_away_from_its_data_asks_for_data(project, tmp_path, monkeypatch, capsys):
    lonely = tmp_path / "lonely"
    shutil.copytree(project / "runs" / "r", lonely)
    shutil.move(str(project / "data"), tmp_path / "data-now")
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(DatasetError, match="--data"):
        load_run(lonely).dataset("test")
    assert main(["study", "layers", str(lonely), "--images", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data" in err
    new = str(tmp_path / "data-now" / "pics")
    assert main(["study", "layers", str(lonely), "--images", "2", "--data", new]) == 0
    assert main(["embed", "--run", str(lonely), "--method", "pca", "--split", "all",
                 "--no-progress", "--data", new]) == 0
    assert main(["explain", "--run", str(lonely), "--all", "--out", "expl", "--data", new]) == 0
    dataset = load_run(lonely, data=new).dataset("test")
    assert dataset.size == (24, 24)            # the run's own options (size) still apply


def test_data_inside_the_run_folder_travels_with_it(tmp_path, monkeypatch):
    run_dir = tmp_path / "r"
    picture_folder(run_dir / "data")
    monkeypatch.chdir(tmp_path)
    train_tiny("r/data", "r")
    assert json.loads((run_dir / "run.json").read_text())["data"] == "data"
    moved = tmp_path / "far" / "away"
    moved.parent.mkdir()
    shutil.move(str(run_dir), moved)
    monkeypatch.chdir(tmp_path / "far")
    assert len(load_run(moved).dataset("train")) == 12
    # resuming the moved run with its data named from here is the same data, not a new configuration
    train_classifier(data=str(moved / "data"), epochs=2, out=str(moved), batch_size=8, progress=False,
                     model_options=TINY, data_options={"size": 24}, resume=True)
    assert [e for e, _ in RunFolder(moved).checkpoints()] == [0, 1, 2]


def test_size_works_for_every_dataset_and_defaults_per_model(tmp_path):
    digits = load_dataset("digits", "test", size=40)
    native = load_dataset("digits", "test")
    image, label = digits[7]
    assert image.shape == (1, 40, 40) and digits.size == (40, 40) and label == native[7][1]
    assert digits.classes == native.classes and digits.mean == native.mean
    # resizing a constant picture keeps it constant; the mean brightness moves little
    assert abs(float(image.mean()) - float(native[7][0].mean())) < 0.02
    folder = load_dataset(str(picture_folder(tmp_path / "pics")), "train", size=30)
    assert folder[0][0].shape == (3, 30, 30)
    with pytest.raises(DatasetError, match="valid: .*size"):
        load_dataset("digits", "test", nope=1)
    assert default_image_size("transfer-resnet18") == 224 and default_image_size("torchvision:resnet18") == 224
    assert default_image_size("timm:resnet18") == 224 and default_image_size("simple-cnn") is None


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A two-epoch run on 64 small shapes pictures, trained once; tests work on copies."""
    out = tmp_path_factory.mktemp("two") / "r"
    train_classifier(epochs=2, out=str(out), **SMALL)
    return out


def test_checksum_on_every_load_offers_the_previous_checkpoint(two_epochs, tmp_path, capsys):
    run_dir = tmp_path / "r"
    shutil.copytree(two_epochs, run_dir)
    folder = RunFolder(run_dir)
    weights = folder.checkpoint_paths(2)[0]
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x10                          # same size, one bit: safetensors would load it silently
    weights.write_bytes(bytes(data))
    with pytest.raises(DamagedCheckpointError, match=r"epoch-0002.safetensors does not match .*epoch 1, is intact"):
        load_run(run_dir)
    assert load_run(run_dir, epoch=1).epoch == 1
    picture = tmp_path / "seven.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(picture)
    assert main(["explain", "--run", str(run_dir), "--images", str(picture), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged" in err and "--epoch 1" in err
    assert main(["explain", "--run", str(run_dir), "--epoch", "1", "--images", str(picture),
                 "--out", str(tmp_path / "e")]) == 0
    assert main(["study", "layers", str(run_dir), "--epoch", "1", "--images", "2"]) == 0
    with pytest.raises(RunError, match="epoch 1, is intact"):
        train_classifier(epochs=3, out=str(run_dir), resume=True, **SMALL)


def test_resume_with_fewer_epochs_is_refused_and_keeps_the_configuration(two_epochs, tmp_path):
    run_dir = tmp_path / "r"
    shutil.copytree(two_epochs, run_dir)
    before = (run_dir / "run.json").read_bytes()
    with pytest.raises(RunError, match="already trained to epoch 2"):
        train_classifier(epochs=1, out=str(run_dir), resume=True, **SMALL)
    assert (run_dir / "run.json").read_bytes() == before
    again = train_classifier(epochs=2, out=str(run_dir), resume=True, **SMALL)
    assert again.config["epochs"] == 2 and again.epoch == 2
    reloaded = load_run(run_dir).model.state_dict()
    assert all(torch.equal(v, reloaded[k]) for k, v in again.model.state_dict().items())


def stanford_dogs(root, per_class=4):
    """Images/<wnid>-<breed>/<wnid>_<n>.jpg with lists/train_list.mat and lists/test_list.mat."""
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    files = []
    for wnid, colour in (("n02085620-Chihuahua", (210, 180, 140)), ("n02085782-Japanese_spaniel", (60, 60, 60))):
        (root / "Images" / wnid).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (40, 50, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "Images" / wnid / f"{wnid.split('-')[0]}_{i}.jpg")
            files.append(f"{wnid}/{wnid.split('-')[0]}_{i}.jpg")
    (root / "lists").mkdir()
    for name, chosen in (("train_list.mat", [f for f in files if not f.endswith("_0.jpg")]),
                         ("test_list.mat", [f for f in files if f.endswith("_0.jpg")])):
        cells = np.empty((len(chosen), 1), dtype=object)
        for i, f in enumerate(chosen):
            cells[i, 0] = np.array([f])
        savemat(root / "lists" / name, {"file_list": cells})
    return root / "Images"


def test_stanford_dogs_with_transfer_resnet18_trains_at_224_or_at_size(tmp_path, monkeypatch):
    import netgaze.lab.train as lab_train

    images = stanford_dogs(tmp_path)
    monkeypatch.chdir(tmp_path)
    common = ["train", "classify", "--data", str(images), "--model", "transfer-resnet18", "--allow-random-init",
              "--epochs", "1", "--batch-size", "8", "--quiet"]
    assert main([*common, "--size", "48", "--out", "dogs48"]) == 0
    run = load_run(tmp_path / "dogs48")
    test = run.dataset("test")
    assert run.config["data_options"] == {"size": 48} and test.size == (48, 48) and len(test) == 2
    assert run.classes == ["Chihuahua", "Japanese spaniel"] and "test_list.mat" in test.split_source
    assert len(run.dataset("train")) == 6 and run.dataset("train")[0][0].shape == (3, 48, 48)

    # without --size the transfer model gets 224-px pictures (stopped before training: 224 px is slow here)
    seen = {}

    def datasets(data, augment, data_options):
        seen.update(data_options)
        train = load_dataset(data, "train", **data_options)
        seen["picture"] = tuple(train[0][0].shape)
        raise KeyboardInterrupt

    monkeypatch.setattr(lab_train, "classifier_datasets", datasets)
    assert main([*common, "--out", "dogs224"]) == 130
    assert seen == {"size": 224, "picture": (3, 224, 224)}
