"""Method x metric table: numbers land in the right cells, JSON and Markdown agree."""
import json
import math

import pytest

import torch
import torch.nn as nn

from netgaze.metrics import method_table, pointing_game
from netgaze.metrics.pointing import centre_baseline


def test_table_for_two_methods(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3))
    x = torch.rand(4, 3, 10, 10)
    masks = torch.zeros(4, 10, 10, dtype=torch.bool)
    masks[:, 3:7, 3:7] = True
    table = method_table(model, x, masks, methods=["gradcam", "saliency"], layer="0", steps=5,
                         randomization_images=2)
    assert list(table.rows) == ["gradcam", "saliency", "centre"]
    assert table.rows["centre"]["pointing"] == pointing_game(centre_baseline(4, (10, 10)), masks) == 1.0
    assert math.isnan(table.rows["centre"]["randomization_spearman"])
    for row in table.rows.values():
        assert 0 <= row["energy_pointing"] <= 1 and 0 <= row["deletion_auc"] <= 1
    json_path, md_path = table.save(tmp_path, "t")
    data = json.loads(json_path.read_text())
    assert data["rows"]["gradcam"]["pointing"] == table.rows["gradcam"]["pointing"]
    assert data["rows"]["centre"]["randomization_spearman"] is None
    md = md_path.read_text()
    assert md.startswith("| method |") and "| saliency |" in md and md.count("\n") == 5


def test_every_cell_equals_a_direct_call():
    """Each cell of the table is the metric of the method's map, computed here call by call."""
    from netgaze import gradcam, saliency
    from netgaze.metrics import deletion_curve, energy_pointing_game, insertion_curve, model_randomization
    from netgaze.metrics.maps import as_map
    from netgaze.core.targets import Class

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    x = torch.rand(6, 3, 12, 12)
    masks = torch.zeros(6, 12, 12, dtype=torch.bool)
    masks[:3, 2:6, 2:6] = True
    masks[3:, 6:11, 5:12] = True
    table = method_table(model, x, masks, methods=["gradcam", "saliency"], layer="2", steps=6,
                         randomization_images=3, random_state=4)
    with torch.no_grad():
        top = Class(model(x).argmax(1).tolist())
    maps = {"gradcam": gradcam(model, x, "2", target=top), "saliency": as_map(saliency(model, x, target=top))}
    for name, m in maps.items():
        row = table.rows[name]
        assert row["pointing"] == pointing_game(m, masks)
        assert row["energy_pointing"] == pytest.approx(energy_pointing_game(m, masks), abs=1e-7)
        curve = dict(steps=6, baseline="blur", random_state=4)
        assert row["deletion_auc"] == pytest.approx(deletion_curve(model, x, m, top, **curve).mean_auc, abs=1e-7)
        assert row["insertion_auc"] == pytest.approx(insertion_curve(model, x, m, top, **curve).mean_auc, abs=1e-7)
        check = model_randomization(model, x[:3], name, "2", Class(top.c[:3]), random_state=4)
        assert row["randomization_spearman"] == pytest.approx(float(check.spearman[-1]), abs=1e-7)
    # the two methods' cells differ, so a table that swapped rows or columns would fail above
    assert table.rows["gradcam"]["energy_pointing"] != table.rows["saliency"]["energy_pointing"]
    assert table.rows["gradcam"]["deletion_auc"] != table.rows["gradcam"]["insertion_auc"]
