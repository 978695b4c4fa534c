"""Feature visualization: activation maximization (S5), filter images (S6), activation maps (S4)."""
from netgaze.featureviz.activations import ActivationMaps, activation_maps
from netgaze.featureviz.filters import filter_grid, filters
from netgaze.featureviz.objectives import (Context, Objective, as_objective, blur, channel, class_logit,
                                           direction, diversity, l1, neuron, total_variation)
from netgaze.featureviz.param import FourierImage, PixelImage, make_image
from netgaze.featureviz.render import IMAGENET_MEAN, IMAGENET_STD, objective_scores, render, save_grid, visualize
from netgaze.featureviz.transforms import (center_crop, compose, jitter, pad, random_rotate, random_scale,
                                           standard_transforms)

__all__ = [
    "visualize", "render", "objective_scores", "save_grid", "IMAGENET_MEAN", "IMAGENET_STD",
    "Objective", "Context", "as_objective", "channel", "neuron", "class_logit", "direction", "diversity",
    "total_variation", "l1", "blur",
    "PixelImage", "FourierImage", "make_image",
    "pad", "jitter", "random_scale", "random_rotate", "center_crop", "compose", "standard_transforms",
    "filters", "filter_grid", "activation_maps", "ActivationMaps",
]
