"""Random-logit test (Sixt et al. 2020): the map for the explained class against the map for
a random other class; a class-sensitive method gives dissimilar maps (lower = better)."""
from __future__ import annotations

from typing import Callable, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from netgaze.errors import ArgumentError
from netgaze.core.layers import LayerRef
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import Class, TargetLike
from netgaze.methods.templates import check_image_batch, fixed_target
from netgaze.metrics.maps import MethodLike, explain
from netgaze.metrics.randomization import spearman, ssim
from netgaze.metrics.scoring import target_classes

Similarity = Union[str, Callable[[torch.Tensor, torch.Tensor], np.ndarray]]
SIMILARITIES = {"ssim": ssim, "spearman": spearman}


def random_logit(model: nn.Module, x: torch.Tensor, method: MethodLike, layer: LayerRef | None = -1,
                 target: TargetLike = None, *, similarity: Similarity = "ssim", other: Sequence[int] | None = None,
                 random_state: int = 0, output: OutputSelector = None) -> np.ndarray:
    """Similarity [N] between the maps of the explained class and of another class.

    The other class is drawn uniformly among the K - 1 classes that are not the explained
    one (Quantus' ``RandomLogit`` draw, from a torch generator seeded by ``random_state``
    instead of ``np.random.seed(42)``), or given as ``other``. Conventions: netgaze's
    ``"ssim"`` is the 2-D SSIM of min-max normalised maps (``netgaze.metrics.ssim``);
    Quantus' default is scikit-image's SSIM of the flattened maps after dividing each
    batch by its maximum, so pass ``similarity_func`` to Quantus, or a callable here, to compare.

    Args:
        target: a class per image (``Class``) or None for each image's top class.
        similarity: ``"ssim"``, ``"spearman"`` or a callable ``(maps_a, maps_b) -> [N]``.
        other: the other class of each image.
    """
    check_image_batch(x)
    n = x.shape[0]
    target = fixed_target(model, x, target, output)
    classes = target_classes(target, n)
    if classes is None:
        raise ArgumentError("random_logit compares classes: give target as class indices (or None for the top class)")
    with Recorder(model, [], output=output, grads=False) as rec:
        k = rec.forward(x[:1]).shape[1]
    if k < 2:
        raise ArgumentError(f"random_logit needs at least 2 classes, the model has {k}")
    if other is None:
        draw = torch.randint(0, k - 1, (n,), generator=torch.Generator().manual_seed(random_state))
        other_t = draw + (draw >= classes).long()
    else:
        other_t = torch.as_tensor(list(other), dtype=torch.long)
        if other_t.shape != (n,) or bool((other_t == classes).any()) or bool(((other_t < 0) | (other_t >= k)).any()):
            raise ArgumentError(f"other must hold {n} classes in 0..{k - 1}, each unlike the explained class")
    if isinstance(similarity, str):
        if similarity not in SIMILARITIES:
            raise ArgumentError(f"unknown similarity {similarity!r}; valid: {', '.join(SIMILARITIES)} or a callable")
        similarity = SIMILARITIES[similarity]
    maps = explain(method, model, x, layer, Class(classes.tolist()), output)
    maps_other = explain(method, model, x, layer, Class(other_t.tolist()), output)
    return np.asarray(similarity(maps, maps_other), dtype=np.float64)
