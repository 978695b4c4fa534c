"""Faithfulness metrics: which explanation to trust.

- ``pointing_game`` / ``energy_pointing_game`` against ground-truth masks or boxes, and
  ``centre_baseline`` maps to compare with;
- ``deletion_curve`` / ``insertion_curve`` (RISE), batched across steps and images;
- ``model_randomization`` (Adebayo et al. 2018), cascading, on a copy of the model;
- ``road`` (MoRF / LeRF, noisy linear imputation), ``pixel_flipping``, ``irof``;
- ``relevance_mass_accuracy`` / ``relevance_rank_accuracy`` (ground-truth masks);
- ``sparseness`` (Gini) and ``complexity`` (entropy) of the maps;
- ``confidence_change`` / ``average_drop`` / ``average_increase`` (Grad-CAM++, as torchcam);
- ``infidelity``, ``max_sensitivity`` (as Captum), ``local_lipschitz`` (as Quantus);
- ``random_logit`` and ``efficient_mprt`` (randomization checks);
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
from netgaze.metrics.imputation import RoadCurve, noisy_linear_imputation, road
from netgaze.metrics.flipping import FlipCurve, irof, pixel_flipping
from netgaze.metrics.localisation import relevance_mass_accuracy, relevance_rank_accuracy
from netgaze.metrics.concentration import complexity, sparseness
from netgaze.metrics.confidence import ConfidenceResult, average_drop, average_increase, confidence_change
from netgaze.metrics.robustness import infidelity, local_lipschitz, max_sensitivity
from netgaze.metrics.class_sensitivity import random_logit
from netgaze.metrics.emprt import EmprtResult, efficient_mprt, histogram_entropy

__all__ = [
    "pointing_game", "pointing_hits", "energy_pointing_game", "energy_inside", "centre_baseline",
    "boxes_to_masks", "as_masks",
    "deletion_curve", "insertion_curve", "perturbation_curve", "Curve", "make_baseline", "blur",
    "model_randomization", "RandomizationResult", "parametrized_layers", "spearman", "ssim",
    "method_table", "MetricTable", "as_map", "explain", "resolve_method",
    "road", "RoadCurve", "noisy_linear_imputation", "pixel_flipping", "irof", "FlipCurve",
    "relevance_mass_accuracy", "relevance_rank_accuracy", "sparseness", "complexity",
    "confidence_change", "ConfidenceResult", "average_drop", "average_increase",
    "infidelity", "max_sensitivity", "local_lipschitz", "random_logit", "efficient_mprt", "EmprtResult",
    "histogram_entropy",
]
