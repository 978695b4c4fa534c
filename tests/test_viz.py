import numpy as np
import pytest
import torch
from PIL import Image

import netgaze as ng


def test_normalize_per_map_and_constant_maps():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 8.0]], [[3.0, 3.0], [3.0, 3.0]]])
    out = ng.viz.normalize(maps)
    assert torch.allclose(out[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.equal(out[1], torch.zeros(2, 2))


def test_colormap_ends_and_uint8():
    rgb = ng.viz.colormap(torch.tensor([[[0.0, 1.0]]]), "gray")
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 1, 2, 3)
    assert rgb[0, 0, 0].tolist() == [0, 0, 0] and rgb[0, 0, 1].tolist() == [255, 255, 255]


def test_overlay_blends_by_alpha():
    images = torch.zeros(1, 1, 1, 2)
    maps = torch.tensor([[[0.0, 1.0]]])
    out = ng.viz.overlay(images, maps, alpha=0.5, cmap="gray")
    assert out[0, 0, 0].tolist() == [0, 0, 0]
    assert out[0, 0, 1].tolist() == [128, 128, 128]  # 0.5 * 255 rounded
    with pytest.raises(ValueError, match="size"):
        ng.viz.overlay(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 3))


def test_signed_attributions_centre_on_grey():
    a = torch.tensor([[[[-2.0, 0.0, 2.0]]]])
    img = ng.viz.attribution_image(a)
    assert img[0, 0, :, 0].tolist() == [0, 128, 255]


def test_grid_places_tiles_and_labels(tmp_path):
    tiles = [np.full((4, 5, 3), v, np.uint8) for v in (10, 20, 30)]
    canvas = ng.viz.grid(tiles, ncols=2, pad=1, background=0)
    assert canvas.shape == (1 + 2 * 5, 1 + 2 * 6, 3)
    assert canvas[1, 1, 0] == 10 and canvas[1, 7, 0] == 20 and canvas[6, 1, 0] == 30
    assert canvas[6, 7, 0] == 0  # empty slot stays background
    labelled = ng.viz.grid(tiles, ncols=3, col_labels=["a", "b", "c"], row_labels=["row"])
    assert labelled.shape[0] > 6 and labelled.shape[1] > 3 * 6
    path = ng.viz.save_png(labelled, tmp_path / "sub" / "g.png")
    assert np.array_equal(np.asarray(Image.open(path)), labelled)
    assert not [p for p in path.parent.iterdir() if p.name != "g.png"]
    assert (path.stat().st_mode & 0o044) == 0o044  # readable by others, like any file
