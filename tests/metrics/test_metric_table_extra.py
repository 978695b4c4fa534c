"""method_table's issue-25 columns equal the metric functions called directly."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

import netgaze as ng
from netgaze.errors import UserError


def test_new_columns_equal_the_functions_and_costly_ones_use_the_first_images():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    masks = torch.zeros(4, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    table = ng.metrics.method_table(model, x, masks, methods=["saliency"], randomization_images=0, costly_images=2,
                                    metrics=["road", "concentration", "localisation", "confidence", "emprt"])
    row, maps = table.rows["saliency"], ng.metrics.explain("saliency", model, x, None)
    target = ng.Class(model(x).argmax(1).tolist())
    assert row["sparseness"] == pytest.approx(float(ng.metrics.sparseness(maps).mean()), rel=1e-6)
    assert row["relevance_mass"] == pytest.approx(float(ng.metrics.relevance_mass_accuracy(maps, masks).mean()),
                                                  rel=1e-6)
    assert row["average_drop"] == pytest.approx(ng.metrics.average_drop(model, x, maps, target), rel=1e-6)
    first = ng.Class(target.c[:2])
    morf = ng.metrics.road(model, x[:2], maps[:2], first, percentages=(20, 50, 80))
    assert row["road_morf"] == pytest.approx(morf.mean_score, rel=1e-6)
    assert row["emprt"] == pytest.approx(float(ng.metrics.efficient_mprt(model, x[:2], "saliency", None, first)
                                               .rise.mean()), rel=1e-6)
    assert "irof" not in row and math.isnan(table.rows["centre"].get("emprt", math.nan))
    assert "sparseness" in table.to_markdown().split("\n")[0]
    with pytest.raises(UserError, match="unknown metric family"):
        ng.metrics.method_table(model, x, masks, methods=["saliency"], metrics=["roads"])
