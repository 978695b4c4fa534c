"""The Units page: each channel of a layer by activation maximization and its top pictures.

``top_pictures`` is a deliberately small, swappable pass: the pictures of a dataset whose
spatially averaged activation of each channel is highest. (A dataset-wide
``ng.top_examples`` may replace it; keep this signature.)
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from netgaze.analyses.top_examples import as_map
from netgaze.core.layers import resolve_layer
from netgaze.core.recorder import Recorder
from netgaze.errors import UserError
from netgaze.serve.compute import WorkerState
from netgaze.serve.api_error import ApiError
from netgaze.serve.uploads import png_base64
from netgaze.serve.source import Source

MAX_CHANNELS = 16
MAX_STEPS = 256
MAX_SCANNED = 1000


def top_pictures(model: torch.nn.Module, dataset, layer: str, channels: Sequence[int], k: int = 6,
                 limit: int = MAX_SCANNED, batch_size: int = 128, output=None) -> dict[int, list[tuple[int, float]]]:
    """For each channel, the ``k`` dataset indices with the highest mean activation, with the values."""
    n = min(len(dataset), limit)
    scores = []
    with Recorder(model, [layer], grads=False, output=output) as rec:
        for start in range(0, n, batch_size):
            x = torch.stack([dataset[i][0] for i in range(start, min(n, start + batch_size))])
            rec.forward(x)
            act = as_map(rec.activations[layer].detach().float(), x.shape[-2:], layer, model)   # tokens too
            scores.append(act.mean(dim=(2, 3))[:, list(channels)])
    table = torch.cat(scores)                                # [N, len(channels)]
    top = table.topk(min(k, n), dim=0)
    return {c: [(int(i), round(float(v), 5)) for v, i in zip(top.values[:, j], top.indices[:, j])]
            for j, c in enumerate(channels)}


def units(state: WorkerState, source: Source, layer: Any, channels: Any, steps: int, k: int,
          epoch: int | None, split: str = "test") -> dict[str, Any]:
    """Activation maximization image and top pictures of each requested channel."""
    from netgaze.featureviz import visualize

    if source.conditional:     # activation maximization would have to pick a label to condition on
        raise ApiError(f"{source.id} is a conditional VAE: ranking its units would need a label to condition "
                       "the optimised picture on, so it is not offered (Explain, Area, Epochs and Embedding are)")
    name = source.resolve_layer(layer)
    model = state.model(source, epoch)
    real = resolve_layer(model, name)[0]        # a wrapped model's own name (net.layer4 for "layer4")
    width = _channel_count(model, source, real)
    if channels is None:
        channels = list(range(min(8, width)))
    if (not isinstance(channels, list) or not 1 <= len(channels) <= MAX_CHANNELS
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in channels)):
        raise ApiError(f"channels is a list of 1..{MAX_CHANNELS} integers in 0..{width - 1}")
    channels = [c for c in channels if c < width]     # the page asks for 8 from "first": the layer may end sooner
    if not channels:
        raise ApiError(f"layer {name!r} has {width} channels (0..{width - 1})")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise ApiError(f"steps is an integer in 1..{MAX_STEPS}")
    images = visualize(model, name, channels=channels, steps=steps, size=source.size, random_state=0,
                       output=source.output)
    try:
        tops = top_pictures(model, source.dataset(split), real, channels, k, output=source.output)
    except ApiError:
        if source.run is None and source.pictures_folder is None:
            tops = {c: [] for c in channels}
        else:
            raise
    rgb = (images.clamp(0, 1).expand(-1, 3, -1, -1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return {"layer": name, "width": width, "channels": [{"channel": c, "image": png_base64(rgb[j]),
                                         "top": [{"index": i, "value": v} for i, v in tops[c]]}
                                        for j, c in enumerate(channels)]}


def _channel_count(model: torch.nn.Module, source: Source, layer: str) -> int:
    x = torch.zeros(1, source.channels, *source.size)
    with Recorder(model, [layer], grads=False, output=source.output) as rec:
        rec.forward(x)
        act = rec.activations[layer]
    try:
        return int(as_map(act, source.size, layer, model).shape[1])   # a ViT's token stage has channels too
    except UserError as err:
        raise ApiError(f"layer {layer!r} outputs shape {tuple(act.shape)}; pick a conv layer or stage ({err})") \
            from None
