"""Warnings name the user's own file (stacklevel), and the command line prints them as one line."""
from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from netgaze.cli import main
from netgaze.lab.datasets.folders import CorruptImageWarning, image_folder


def _folder(root, broken: bool = True):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    if broken:
        (root / "a" / "broken.png").write_bytes(b"not a picture")
    return root


def test_warnings_point_at_the_callers_file(tmp_path):
    from netgaze.embed import project

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image_folder(_folder(tmp_path / "data"), "all", size=8)
        project(np.random.default_rng(0).normal(size=(10, 3)), "tsne", 2, perplexity=30.0, random_state=0)
    found = {w.category: w for w in caught}
    assert found[CorruptImageWarning].filename == __file__
    assert "broken.png" in str(found[CorruptImageWarning].message)
    too_large = [w for w in caught if "perplexity" in str(w.message)]
    assert too_large and too_large[0].filename == __file__


def test_the_command_line_prints_a_warning_as_one_line(tmp_path, capsys):
    code = main(["train", "classify", "--data", str(_folder(tmp_path / "data")), "--epochs", "1", "--quiet",
                 "--model-option", "channels=[4,4,4,4]", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("netgaze train classify: warning: ")
    assert "broken.png" in lines[0] and "Traceback" not in err
