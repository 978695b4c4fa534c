"""A ``$`` in a run or class folder name is drawn as text, never read as mathematics.

Item 7 of issue 14: training curves, the embedding scatter, ``study epochs`` and the report
over the parent folder all drew user strings through matplotlib's mathtext and crashed on
an unbalanced ``$``.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.text import Text
from PIL import Image

from netgaze._util.plots import plain_text

NAMES = ["$x$", "$x^$"]  # valid mathtext, and mathtext that does not parse


@pytest.fixture(scope="module")
def dollar_run(tmp_path_factory):
    from netgaze.lab.train import train_classifier

    root = tmp_path_factory.mktemp("dollars")
    rng = np.random.default_rng(0)
    for c, name in enumerate(NAMES):
        folder = root / "data" / name
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = np.full((16, 16, 3), 40 + 160 * c, np.uint8) + rng.integers(0, 30, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train_classifier(data=str(root / "data"), epochs=2, batch_size=8, out=str(root / "runs" / "$x^$ run"),
                               model_options={"channels": [4, 4, 4, 4]}, progress=False)
    finally:
        torch.set_num_threads(before)
    return run


def test_plain_text_turns_mathtext_off_only_inside():
    @plain_text
    def inside():
        return Text(0, 0, "$x$").get_parse_math(), matplotlib.rcParams["text.usetex"]

    assert inside() == (False, False)
    assert matplotlib.rcParams["text.parse_math"] is True  # the user's settings are back
    assert Text(0, 0, "$x$").get_parse_math() is True


def test_training_curves_with_dollar_names(dollar_run):
    assert dollar_run.classes == NAMES
    curves = dollar_run.path / "curves.png"
    assert curves.is_file() and Image.open(curves).size[0] > 100


def test_embed_scatter_with_dollar_classes(tmp_path):
    from netgaze.embed.scatter import scatter_image

    points = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    image = scatter_image(points, [0, 1, 0, 1], classes=NAMES, title="$x^$ run")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.std() > 0


def test_study_epochs_and_report_over_the_parent(dollar_run, tmp_path):
    from netgaze.report import build_report
    from netgaze.studies import epochs_study

    result = epochs_study(dollar_run, n_images=2, n_eval=4, out=tmp_path / "epochs")
    assert [row["epoch"] for row in result.manifest["numbers"]["per_epoch"]] == [0, 1, 2]
    report = build_report([dollar_run.path.parent], tmp_path / "report.html")
    html = report.read_text()
    assert "$x^$ run" in html and "<img" in html
