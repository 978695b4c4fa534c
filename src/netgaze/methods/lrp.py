"""Layer-wise Relevance Propagation (Bach et al. 2015) through zennit's rules, composites and
canonizers (Anders et al. 2021), with netgaze's targets, checks and model contract."""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from netgaze.core.inputs import batch_size, check_inputs, is_multi
from netgaze.core.recorder import OutputSelector, select_output
from netgaze.core.targets import TargetLike, as_target
from netgaze.errors import ArgumentError, UserError
from netgaze.methods.templates import check_image_batch, target_scores

# one rule for every convolution and linear layer (activations pass, sums and average pools normalise)
RULES = ("epsilon", "gamma", "zplus", "alpha2_beta1", "flat", "zbox")
COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_alpha2_beta1", "epsilon_alpha2_beta1_flat",
              "epsilon_gamma_box")
CANONIZERS = ("auto", "none", "batchnorm", "resnet", "vgg")


def _zennit():
    try:
        import zennit  # noqa: F401
    except ImportError:
        raise UserError("ng.lrp uses zennit's LRP rules: pip install 'netgaze[lrp]' (or pip install zennit)") from None


def _canonizers(model: nn.Module, kind: str) -> list:
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    if kind == "auto":
        import torchvision

        kind = "resnet" if isinstance(model, torchvision.models.ResNet) else "batchnorm"
    return {"none": [], "batchnorm": [SequentialMergeBatchNorm()], "resnet": [ResNetCanonizer()],
            "vgg": [VGGCanonizer()]}[kind]


def _composite(rule: str, canonizers: list, low, high):
    from zennit import composites, rules
    from zennit.layer import Sum
    from zennit.types import Activation, AvgPool, Convolution

    if rule in COMPOSITES:
        if rule == "epsilon_gamma_box":
            return composites.EpsilonGammaBox(low=low, high=high, canonizers=canonizers)
        return composites.COMPOSITES[rule](canonizers=canonizers)
    layer_rule = {"epsilon": lambda: rules.Epsilon(), "gamma": lambda: rules.Gamma(gamma=0.25),
                  "zplus": lambda: rules.ZPlus(), "alpha2_beta1": lambda: rules.AlphaBeta(alpha=2, beta=1),
                  "flat": lambda: rules.Flat(), "zbox": lambda: rules.ZBox(low, high)}[rule]
    layer_map = [(Activation, rules.Pass()), (Sum, rules.Norm()), (AvgPool, rules.Norm()),
                 (Convolution, layer_rule()), (nn.Linear, layer_rule())]
    return composites.LayerMapComposite(layer_map, canonizers=canonizers)


@contextlib.contextmanager
def _as_found(model: nn.Module):
    """Eval mode and frozen parameters inside; every flag put back on exit."""
    training = [m for m in model.modules() if m.training]
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        model.eval()
        for p in trainable:
            p.requires_grad_(False)
        yield
    finally:
        for m in training:
            m.training = True
        for p in trainable:
            p.requires_grad_(True)


def lrp(model: nn.Module, x: torch.Tensor, target: TargetLike = None, *, rule: str = "epsilon_plus_flat",
        canonizers: str = "auto", low: float | torch.Tensor = 0.0, high: float | torch.Tensor = 1.0,
        output: OutputSelector = None) -> torch.Tensor:
    """LRP relevance at the input, [B, C, H, W] (or [B, K, C, H, W] for a K-score target).

    Args:
        rule: a zennit composite — ``epsilon_plus_flat`` (default: flat for the first layer, z+ for
            convolutions, epsilon for linear layers), ``epsilon_plus``, ``epsilon_alpha2_beta1``
            (``_flat``), ``epsilon_gamma_box`` (z-box in the first layer, gamma 0.25 for convolutions,
            epsilon for linear layers) — or one rule for every layer: ``epsilon``, ``gamma``,
            ``zplus``, ``alpha2_beta1``, ``flat``, ``zbox``.
        canonizers: ``auto`` (torchvision ResNets: zennit's ResNet canonizer; any other model:
            batch norms merged into the preceding convolution of a Sequential), ``resnet``,
            ``vgg``, ``batchnorm`` or ``none``.
        low, high: the input's value bounds for the z-box rule (a number or a tensor like x).

    The target's score seeds the relevance (1 on the explained logit, as zennit's one-hot
    ``attr_output``), so relevance sums to about the logit under epsilon rules. zennit's hooks
    and canonizers live only inside the call; the model is left exactly as found.
    """
    _zennit()
    check_inputs(x)
    if is_multi(x):
        raise ArgumentError("lrp explains one picture input [B, C, H, W], not a tuple of inputs")
    check_image_batch(x)
    if rule not in RULES + COMPOSITES:
        raise ArgumentError(f"unknown LRP rule {rule!r}; choose a composite ({', '.join(COMPOSITES)}) "
                            f"or one rule for every layer ({', '.join(RULES)})")
    if canonizers not in CANONIZERS:
        raise ArgumentError(f"unknown canonizers {canonizers!r}; choose one of {', '.join(CANONIZERS)}")
    target = as_target(target)
    low_t = torch.as_tensor(low, dtype=x.dtype).expand_as(x)
    high_t = torch.as_tensor(high, dtype=x.dtype).expand_as(x)
    composite = _composite(rule, _canonizers(model, canonizers), low_t, high_t)
    with _as_found(model), torch.inference_mode(False), torch.enable_grad():
        with composite.context(model) as modified:
            inputs = x.detach().clone().requires_grad_(True)
            out = select_output(modified(inputs), output)
            scores = target_scores(target, out, batch_size(x))
            columns = [scores] if scores.dim() == 1 else list(scores.unbind(1))
            relevance = [torch.autograd.grad(c.sum(), inputs, retain_graph=k < len(columns) - 1)[0]
                         for k, c in enumerate(columns)]
    return relevance[0] if scores.dim() == 1 else torch.stack(relevance, 1)
