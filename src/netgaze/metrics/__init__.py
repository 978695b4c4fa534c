"""Faithfulness metrics: which explanation to trust.

- ``pointing_game`` / ``energy_pointing_game`` against ground-truth masks or boxes, and
  ``centre_baseline`` maps to compare with;
- ``deletion_curve`` / ``insertion_curve`` (RISE), batched across steps and images;
- ``model_randomization`` (Adebayo et al. 2018), cascading, on a copy of the model;
- ``method_table``: every method x every metric, as JSON and Markdown.

Segmentation metrics live in ``netgaze.metrics.segmentation`` (not imported here).
"""
from netgaze.metrics.deletion import (Curve, blur, deletion_curve, insertion_curve, make_baseline,
                                      perturbation_curve)
from netgaze.metrics.maps import as_map, explain, resolve_method
from netgaze.metrics.pointing import (as_masks, boxes_to_masks, centre_baseline, energy_inside,
                                      energy_pointing_game, pointing_game, pointing_hits)
from netgaze.metrics.randomization import (RandomizationResult, model_randomization, parametrized_layers,
                                           spearman, ssim)
from netgaze.metrics.table import MetricTable, method_table

__all__ = [
    "pointing_game", "pointing_hits", "energy_pointing_game", "energy_inside", "centre_baseline",
    "boxes_to_masks", "as_masks",
    "deletion_curve", "insertion_curve", "perturbation_curve", "Curve", "make_baseline", "blur",
    "model_randomization", "RandomizationResult", "parametrized_layers", "spearman", "ssim",
    "method_table", "MetricTable", "as_map", "explain", "resolve_method",
]
