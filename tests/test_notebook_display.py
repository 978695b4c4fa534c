"""Notebooks (issue 23, part 5): pictures display themselves (``_repr_png_``) and study results
show their tables (``_repr_html_``, user text escaped)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import netgaze as ng
from netgaze.studies.across_layers import StudyResult


def _decoded(picture) -> np.ndarray:
    data = picture._repr_png_()
    assert isinstance(data, bytes) and data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_uint8_picture_round_trips():
    array = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    shown = ng.viz.show(array)
    np.testing.assert_array_equal(_decoded(shown), array)
    np.testing.assert_array_equal(np.asarray(shown), array)
    grey = ng.viz.show(array[..., 0])
    np.testing.assert_array_equal(_decoded(grey), np.repeat(array[..., :1], 3, -1))


def test_float_pictures_and_maps():
    x = torch.rand(1, 3, 6, 4, generator=torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(_decoded(ng.viz.show(x)), ng.viz.to_uint8(x)[0])
    maps = torch.rand(1, 6, 4)
    np.testing.assert_array_equal(_decoded(ng.viz.show(maps[0])), ng.viz.colormap(ng.viz.normalize(maps))[0])
    np.testing.assert_array_equal(_decoded(ng.viz.show(x, maps)), ng.viz.overlay(x, maps)[0])
    batch = ng.viz.show(torch.rand(3, 1, 6, 4), ncols=3)          # a labelled-free grid of three
    assert _decoded(batch).shape == ng.viz.grid(list(ng.viz.to_uint8(torch.rand(3, 1, 6, 4))), ncols=3).shape
    with pytest.raises(ng.ArgumentError if hasattr(ng, "ArgumentError") else ValueError):
        ng.viz.show(torch.rand(2, 2, 2, 2, 2))


def test_a_cam_shows_over_its_pictures():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.rand(2, 3, 8, 8)
    cams = ng.gradcam(model, x, "0")
    assert _decoded(ng.viz.show(x, cams)).shape[0] > 8


def test_study_table_as_escaped_html():
    manifest = {"title": "Grad-CAM <on> layers", "tables": [{
        "title": "run <b>x</b>", "columns": ["layer", "coverage"],
        "rows": [["features.<script>alert(1)</script>", 0.123456], ["features.3", None]]}]}
    html = StudyResult(manifest)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>" not in html
    assert "Grad-CAM &lt;on&gt; layers" in html and "<td>0.123</td>" in html and "<td>–</td>" in html
    assert html.count("<tr>") == 3
