"""`netgaze study ... --output KEY`: a run whose model returns a dict without a ``logits`` entry
(issue 23: studies took no ``output=`` on the command line). Every study that explains or
predicts takes it; without it the error names the option."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

import netgaze as ng
from netgaze.cli import main

USER_CODE = Path(__file__).resolve().parents[1] / "lab" / "user_code"


@pytest.fixture(scope="module")
def dict_run(tmp_path_factory):
    import sys
    sys.path.insert(0, str(USER_CODE))
    try:
        from netgaze_test_usercnn import DictCNN
    finally:
        sys.path.remove(str(USER_CODE))
    run = tmp_path_factory.mktemp("dict-run") / "run"
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(12, 1, 8, 8, generator=g), torch.arange(12) % 3
    torch.manual_seed(0)
    model = DictCNN(width=4, classes=3)
    with ng.RunWriter(run, model=model, build="netgaze_test_usercnn:DictCNN", build_args={"width": 4, "classes": 3},
                      data={"test": TensorDataset(x, y)}, classes=["a", "b", "c"]) as writer:
        for epoch in (1, 2):
            writer.save(epoch, model, metrics={"val_acc": 0.5})
    return run


@pytest.fixture(autouse=True)
def user_code_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))


ARGS = {
    "layers": ["--images", "2"],
    "epochs": ["--images", "2", "--eval", "4"],
    "models": ["--images", "2", "--eval", "4"],
    "strategies": ["--clusters", "2"],
    "top-examples": ["--layer", "features.2", "--k", "2", "--steps", "0"],
}


@pytest.mark.parametrize("study", list(ARGS))
def test_every_study_takes_output(study, dict_run, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["study", study, str(dict_run), "--trust-code", "--quiet", "--output", "scores",
                   "--out", str(out), *ARGS[study]])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert any(out.rglob("*.json")), captured.out
    assert captured.err == ""        # --quiet: no progress bar (nor any warning) on stderr


def test_dissect_takes_output_too(dict_run, tmp_path, capsys):
    # the run's test split has no object masks: dissection stops there, past --output
    assert main(["study", "dissect", str(dict_run), "--trust-code", "--quiet", "--output", "scores",
                 "--layers", "features.2", "--out", str(tmp_path / "out")]) == 2
    assert "no object masks" in capsys.readouterr().err


def test_without_output_the_error_names_the_option(dict_run, tmp_path, capsys):
    status = main(["study", "layers", str(dict_run), "--trust-code", "--quiet", "--images", "2",
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "--output" in err and "'embedding', 'scores'" in err


@pytest.mark.parametrize("value, message", [("", "empty"), ("  ", "empty"), ("a\x1bb", "key")])
def test_bad_output_values_are_one_line(value, message, dict_run, capsys):
    assert main(["study", "layers", str(dict_run), "--output", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--output" in err and message in err


def test_a_wrong_key_names_the_valid_ones(dict_run, tmp_path, capsys):
    status = main(["study", "layers", str(dict_run), "--trust-code", "--quiet", "--images", "2", "--output", "logits",
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "valid: ['embedding', 'scores']" in err


def test_output_is_refused_where_it_does_not_apply(dict_run, capsys):
    assert main(["study", "latent", str(dict_run), "--output", "scores"]) == 2
    assert "--output does not apply" in capsys.readouterr().err


def test_the_manifest_is_written(dict_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["study", "layers", str(dict_run), "--trust-code", "--quiet", "--output", "scores",
                 "--images", "2", "--out", str(out)]) == 0
    manifest = json.loads(next(out.rglob("layers.json")).read_text())
    assert manifest.get("study") == "layers"
