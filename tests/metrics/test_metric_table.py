"""Method x metric table: numbers land in the right cells, JSON and Markdown agree."""
import json
import math

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
