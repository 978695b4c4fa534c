"""Global-average-pooled features of one layer over a whole dataset.

``features(model, data, layer)`` streams the dataset through the model in batches and
keeps, per batch, only the pooled vectors [B, D] (plus labels, predictions and small
thumbnails when asked for): one batch of activations is alive at a time, so a dataset
of any size fits as long as its [N, D] feature matrix does.

The layer is recorded with ``netgaze.core.recorder.Recorder(model, [layer], grads=False)``
(the only place that hooks a model). Special layer names:

* ``"logits"`` / ``"output"``: the model's (selected) output itself, no hook at all.
  With ``output=`` this is also how a VAE's posterior means are taken
  (``layer="output", output="mu"`` or a callable), see ``Recorder``.
* ``"prelogits"``: the leaf module defined just before the model's last ``nn.Linear``
  (``avgpool`` in a ResNet, the last dropout of a VGG classifier). In eval mode this is
  the input of the final linear layer for models whose last steps are modules; a model
  that applies a functional op (``F.relu``) between them gets that op's input instead,
  so name the layer explicitly there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset

from netgaze.errors import ArgumentError
from netgaze.core import layouts
from netgaze.core.layer_entries import split_entry
from netgaze.core.layers import LayerError, LayerRef, resolve_layer
from netgaze.core.recorder import OutputSelector, Recorder

OUTPUT_LAYERS = ("logits", "output")
PRELOGIT_LAYER = "prelogits"


@dataclass
class Features:
    """Pooled features of a dataset and what is known about each sample.

    Attributes:
        features: float32 [N, D], row i belongs to dataset item ``indices[i]``.
        labels: int64 [N] or None when the batches carry no labels.
        predictions: int64 [N] (argmax of the model output) or None.
        indices: int64 [N] positions in the dataset that was passed in.
        paths: file paths of the images when the dataset knows them, else None.
        classes: class names when the dataset has ``.classes``, else None.
        layer: the resolved layer name ("output" for the model output).
        thumbnails: uint8 [N, t, t, 3] (t = min(thumbnail_size, image side)) when
            ``thumbnail_size`` was given, else None.
    """

    features: np.ndarray
    labels: np.ndarray | None
    predictions: np.ndarray | None
    indices: np.ndarray
    paths: list[str] | None = None
    classes: list[str] | None = None
    layer: str = ""
    thumbnails: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.features)

    def label_names(self, values: np.ndarray | None = None) -> list[str] | None:
        """Class names for ``values`` (default: the labels); ints as text without classes."""
        values = self.labels if values is None else values
        if values is None:
            return None
        if self.classes is None:
            return [str(int(v)) for v in values]
        return [self.classes[int(v)] if 0 <= int(v) < len(self.classes) else str(int(v)) for v in values]


def features(model: nn.Module, data: Dataset | DataLoader, layer: LayerRef = PRELOGIT_LAYER, *,
             output: OutputSelector = None, batch_size: int = 64, num_workers: int = 0,
             limit: int | None = None, predict: bool = True, thumbnail_size: int = 0,
             device: str | torch.device | None = None, progress: bool = True) -> Features:
    """Global-average-pooled output of ``layer`` for every sample of ``data``.

    Args:
        model: any module; run in eval mode and left as found (see ``Recorder``). A module
            with ``takes_labels = True`` (a conditional VAE or its mean encoder) is called as
            ``model(x, y)`` with each batch's labels.
        data: a Dataset of ``(image, label, ...)`` tuples or bare images, or a DataLoader
            over one. A DataLoader must not shuffle (rows are matched to dataset items).
        layer: a layer reference (dotted name, module, negative int = conv layer from
            the end), ``"logits"``/``"output"`` or ``"prelogits"`` (the default).
        output: which part of a tuple/dict model output is the output (``Recorder``).
        batch_size: used when ``data`` is a Dataset.
        num_workers: DataLoader workers when ``data`` is a Dataset.
        limit: keep only the first ``limit`` samples.
        predict: record ``argmax`` of the model output as predictions; set False for
            models that are not classifiers (VAE encoders).
        thumbnail_size: also keep uint8 thumbnails of this side (for sprites and the
            HTML view), never larger than the images; 0 keeps none.
        device: where the model runs; default: the device of its first parameter.
        progress: show a tqdm progress bar.

    Returns:
        A ``Features`` record with one column per channel. Activations are averaged over
        their positions, read in the layer's layout for the batch's picture size (see
        ``netgaze.core.layouts`` and ``pool``): maps [B, C, H, W] over H and W,
        channels-last maps [B, H, W, C] (Swin) over H and W, tokens [B, N, C]
        (ViT, HF models) over the N tokens (prefix tokens included), giving [B, C],
        never over channels; other [B, C, L] over L; [B, D] are kept as they are.
    """
    loader = _as_loader(data, batch_size, num_workers)
    dataset = loader.dataset
    total = len(dataset) if limit is None else min(limit, len(dataset))
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    name, hooked = _resolve(model, layer)
    hooked_module = model.get_submodule(split_entry(hooked)[0]) if hooked else None   # "stage[0]": the stage's
    rows: np.ndarray | None = None
    labels = np.full(total, -1, np.int64)
    has_labels = False
    preds = np.full(total, -1, np.int64) if predict else None
    thumbs: np.ndarray | None = None
    filled = 0
    bar = _progress(total, f"features {name}", progress)
    with Recorder(model, [hooked] if hooked else [], output=output, grads=False) as rec:
        for batch in loader:
            if filled >= total:
                break
            x, y = _split_batch(batch)
            take = min(len(x), total - filled)
            x = x[:take].to(device, non_blocking=True)
            out = rec.forward((x, _labels_for(model, y, take, device)) if getattr(model, "takes_labels", False) else x)
            act = rec.activations[hooked] if hooked else out
            pooled = pool(act, size=x.shape[-2:], module=hooked_module).float().cpu().numpy()
            if rows is None:
                rows = np.empty((total, pooled.shape[1]), np.float32)
            rows[filled:filled + take] = pooled
            if y is not None:
                labels[filled:filled + take] = y[:take].reshape(-1).cpu().numpy()
                has_labels = True
            if preds is not None:
                if out.dim() != 2:
                    raise ArgumentError(f"predictions need a [B, classes] model output, got {tuple(out.shape)}; "
                                        "pass predict=False (or output=) for this model")
                preds[filled:filled + take] = out.argmax(1).cpu().numpy()
            if thumbnail_size:
                if thumbs is None:   # never enlarge: 8-px images keep 8-px thumbnails
                    side = min(thumbnail_size, max(x.shape[-2:]))
                    thumbs = np.zeros((total, side, side, 3), np.uint8)
                thumbs[filled:filled + take] = thumbnails(x, thumbs.shape[1])
            filled += take
            bar.update(take)
            del x, out, act
    bar.close()
    if rows is None:
        raise ArgumentError("the dataset is empty")
    return Features(features=rows[:filled], labels=labels[:filled] if has_labels else None,
                    predictions=preds[:filled] if preds is not None else None,
                    indices=np.arange(filled, dtype=np.int64), paths=_paths(dataset, filled),
                    classes=_classes(dataset), layer=name,
                    thumbnails=thumbs[:filled] if thumbs is not None else None)


def pool(activation: torch.Tensor, size: Sequence[int] | None = None, module: nn.Module | None = None
         ) -> torch.Tensor:
    """Global average pool over positions -> [B, C]; [B, D] is returned unchanged.

    Args:
        activation: one layer's output.
        size: the input pictures' (H, W). With it, a [B, N, C] output whose N tokens fit a
            patch grid of the picture (with up to 8 prefix tokens) is pooled over the
            tokens, and a [B, h, w, C] output that reads only as channels last (or whose
            ``module`` writes channels last, a layer norm) over h and w. Without it, every
            output is read channels first ([B, C, *spatial]).
        module: the layer that wrote ``activation``; settles a 4-d shape that reads both ways.
    """
    if activation.dim() < 2:
        raise ArgumentError(f"cannot pool an activation of shape {tuple(activation.shape)}: need [B, C, ...]")
    if activation.dim() == 2:
        return activation
    kind = _layout(tuple(activation.shape), size, module) if size is not None else "nchw"
    if kind == "tokens":
        return activation.mean(1)
    if kind == "nhwc":
        return activation.mean((1, 2))
    return activation.flatten(2).mean(2)


def _layout(shape: tuple[int, ...], size: Sequence[int], module: nn.Module | None) -> str:
    """"tokens", "nhwc" or "nchw" for one layer output (``netgaze.core.layouts`` reads it)."""
    found = layouts.candidates(shape, (int(size[0]), int(size[1])))
    kinds = {c.kind for c in found}
    if len(shape) == 3:
        return "tokens" if "tokens" in kinds else "nchw"
    if kinds == {"nhwc"}:
        return "nhwc"
    if kinds == {"nchw", "nhwc"}:
        exact = {c.kind for c in found if c.grid[0] * int(size[1]) == c.grid[1] * int(size[0])}
        if len(exact) == 1:
            return exact.pop()
        return "nhwc" if layouts.channels_hint(module) == "last" else "nchw"
    return "nchw"


def thumbnails(images: torch.Tensor, size: int) -> np.ndarray:
    """Images [B, 1|3, H, W] in [0, 1] -> uint8 [B, size, size, 3] (area resampling)."""
    small = F.interpolate(images.detach().float(), size=(size, size), mode="area") \
        if images.shape[-2:] != (size, size) else images.detach().float()
    rgb = small.clamp(0, 1).expand(-1, 3, -1, -1) if small.shape[1] == 1 else small[:, :3].clamp(0, 1)
    return (rgb * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def prelogit_layer(model: nn.Module) -> str:
    """Name of the leaf module defined just before the model's last ``nn.Linear``."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    last = max((i for i, (_, m) in enumerate(leaves) if isinstance(m, nn.Linear)), default=None)
    if last is None:
        raise LayerError("layer='prelogits' needs a model with an nn.Linear head; name a layer instead")
    if last == 0:
        raise LayerError("the model's last nn.Linear is its first module; there is no pre-logit layer")
    return leaves[last - 1][0]


def _resolve(model: nn.Module, layer: LayerRef) -> tuple[str, str | None]:
    """(display name, hooked layer name or None for the model output)."""
    if isinstance(layer, str) and layer in OUTPUT_LAYERS:
        return "output", None
    if isinstance(layer, str) and layer == PRELOGIT_LAYER:
        layer = prelogit_layer(model)
    name, _ = resolve_layer(model, layer)
    return name, name


def _as_loader(data: Dataset | DataLoader, batch_size: int, num_workers: int) -> DataLoader:
    if isinstance(data, DataLoader):
        if isinstance(data.sampler, RandomSampler):
            raise ArgumentError("the DataLoader shuffles; rows could not be matched to images. "
                                "Pass the dataset or a DataLoader with shuffle=False")
        return data
    if batch_size < 1:
        raise ArgumentError(f"batch_size must be >= 1, got {batch_size}")
    return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)


def _labels_for(model: nn.Module, y: torch.Tensor | None, take: int, device: Any) -> torch.Tensor:
    """The batch's labels for a model that takes them (a conditional VAE: ``model(x, y)``)."""
    if y is None:
        raise ArgumentError(f"{type(model).__name__} needs each picture's label beside it (a conditional VAE), "
                            "and the dataset gives none")
    return y[:take].reshape(-1).to(device)


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        y = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        if y is not None and (y.is_floating_point() or y.dim() > 1 and y[0].numel() != 1):
            y = None  # not class labels (a mask, a target image)
        return batch[0], y
    raise ArgumentError(f"a batch must be a tensor or an (images, labels, ...) tuple, got {type(batch).__name__}")


def _classes(dataset: Any) -> list[str] | None:
    while isinstance(dataset, Subset) and not hasattr(dataset, "classes"):
        dataset = dataset.dataset
    classes = getattr(dataset, "classes", None)
    return [str(c) for c in classes] if classes is not None else None


def _paths(dataset: Any, n: int) -> list[str] | None:
    index: Sequence[int] = range(n)
    while isinstance(dataset, Subset):
        index = [int(dataset.indices[i]) for i in index]
        dataset = dataset.dataset
    paths = getattr(dataset, "paths", None)
    if paths is None and hasattr(dataset, "samples"):  # torchvision ImageFolder layout
        paths = [s[0] for s in dataset.samples]
    if paths is None:
        return None
    return [str(paths[i]) for i in index]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, show: bool) -> Union["_NoBar", Any]:
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="img", leave=False)


__all__ = ["Features", "features", "pool", "thumbnails", "prelogit_layer"]
