"""`netgaze visualize`: unit lists, the three modes on a tiny model, one-line user errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from PIL import Image

import netgaze.cli.visualize as command
from netgaze.cli import main
from netgaze.cli.parsing import UserError
from netgaze.studies.explain_files import LoadedModel


def test_parse_units():
    assert command.parse_units("0-3,7, 10-11") == [0, 1, 2, 3, 7, 10, 11]
    for bad in ("a", "3-1", ","):
        with pytest.raises(UserError):
            command.parse_units(bad)


@pytest.fixture
def tiny(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    monkeypatch.setattr(command, "_load", lambda args: LoadedModel(model, ["a", "b", "c"], 16, 3, "tiny"))
    return model


def test_modes_write_files(tiny, tmp_path, capsys):
    out = tmp_path / "viz"
    assert main(["visualize", "--model", "torchvision:x", "--layer", "2", "--channels", "0-2",
                 "--steps", "2", "--tv", "0.1", "--out", str(out)]) == 0
    assert (out / "2-channel.png").is_file() and torch.load(out / "2-channel.pt").shape == (3, 3, 16, 16)
    assert main(["visualize", "--model", "torchvision:x", "--layer", "logits", "--steps", "1",
                 "--out", str(out)]) == 0
    assert torch.load(out / "logits-channel.pt").shape == (3, 3, 16, 16)
    assert main(["visualize", "--model", "torchvision:x", "--filters", "--out", str(out)]) == 0
    assert (out / "filters-first.png").is_file()
    picture = tmp_path / "p.png"
    Image.new("RGB", (20, 20), (200, 30, 90)).save(picture)
    assert main(["visualize", "--model", "torchvision:x", "--activations", str(picture), "--out", str(out)]) == 0
    assert (out / "sparsity.png").is_file() and (out / "activations-2.png").is_file()
    assert "blank share" in capsys.readouterr().out


def test_user_errors_are_one_line(tiny, tmp_path, capsys):
    assert main(["visualize", "--model", "torchvision:x", "--out", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "--layer is required")
    assert main(["visualize", "--model", "torchvision:x", "--layer", "2", "--channels", "9",
                 "--steps", "1", "--out", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "out of range")
    assert main(["visualize", "--model", "torchvision:x", "--layer", "nope", "--out", str(tmp_path)]) == 2
    _one_line(capsys.readouterr().err, "unknown layer")


def _one_line(err: str, message: str) -> None:
    """Exactly one line on stderr, the message in it, no traceback."""
    assert err.count("\n") == 1 and err.endswith("\n") and message in err, err
    assert "Traceback" not in err
