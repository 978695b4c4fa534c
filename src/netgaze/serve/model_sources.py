"""Sources for models that are not runs: ``torchvision:NAME`` and ``timm:NAME`` classifiers and
torchvision's segmenters (random weights unless a weights file is given), with an optional
folder of pictures to explain."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from netgaze.serve.errors import ApiError
from netgaze.serve.sources import Source, unique_id


RANDOM_WEIGHTS_SEED = 0


def model_source(spec: str, weights: str | None, images: str | None, size: int = 224,
                 taken: Sequence[str] = ()) -> Source:
    """A source for ``torchvision:NAME`` or ``timm:NAME``. Without ``weights`` the weights are
    random but drawn from a fixed seed, so the explorer's worker processes (which build the
    model again) and every restart explain the same model; the global RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        return _model_source(spec, weights, images, size, taken)


def _model_source(spec: str, weights: str | None, images: str | None, size: int, taken: Sequence[str]) -> Source:
    from netgaze.studies.files import imagenet_classes, load_torchvision, load_weights_file

    if spec.startswith("torchvision:") and spec.split(":", 1)[1] in _segmenter_names():
        model, classes = _torchvision_segmenter(spec.split(":", 1)[1], weights)
        folder = Path(images) if images else None
        if folder is not None and not folder.is_dir():
            raise ApiError(f"no such picture folder: {images}")
        description = spec + (f" with {Path(weights).name}" if weights else " (random weights)")
        return Source(id=unique_id(spec.replace(":", "-"), taken), kind="model", task="segment", classes=classes,
                      size=(size, size), channels=3, epochs=[], history=[], model=model.eval(),
                      description=description, output="out", pictures_folder=folder)
    if spec.startswith("torchvision:"):
        loaded = load_torchvision(spec.split(":", 1)[1], weights, size)
        model, classes = loaded.model, loaded.classes
    elif spec.startswith("timm:"):
        from netgaze.lab.models import build_model
        model = build_model(spec)
        if weights is not None:
            state = load_weights_file(weights)
            inner = model.net if not any(k.startswith("net.") for k in state) else model
            try:
                inner.load_state_dict(state)
            except RuntimeError as err:
                raise ApiError(f"{weights} does not fit {spec}: {str(err).splitlines()[0][:200]}") from None
        last = [m for m in model.modules() if isinstance(m, nn.Linear)]
        classes = imagenet_classes(last[-1].out_features if last else 0)
    else:
        raise ApiError(f"--model takes torchvision:NAME or timm:NAME, got {spec!r}")
    model.eval()
    folder = Path(images) if images else None
    if folder is not None and not folder.is_dir():
        raise ApiError(f"no such picture folder: {images}")
    description = f"{spec}" + (f" with {Path(weights).name}" if weights else " (random weights)")
    return Source(id=unique_id(spec.replace(":", "-"), taken), kind="model", task="classify", classes=classes,
                  size=(size, size), channels=3, epochs=[], history=[], model=model, description=description,
                  pictures_folder=folder)


def _segmenter_names() -> list[str]:
    import torchvision.models

    return list(torchvision.models.list_models(module=torchvision.models.segmentation))


def _torchvision_segmenter(name: str, weights: str | None) -> tuple[nn.Module, list[str]]:
    """A torchvision segmentation model (dict output, ``"out"`` explained) behind ImageNet
    normalisation, with the 21 VOC classes its published weights use."""
    import torchvision.models
    from netgaze.lab.models.classifiers import Normalized
    from netgaze.lab.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize
    from netgaze.studies.files import load_weights_file

    net = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=21, aux_loss=False)
    model = Normalized(Normalize(IMAGENET_MEAN, IMAGENET_STD, out_channels=3), net)
    if weights is not None:
        state = {k: v for k, v in load_weights_file(weights).items() if not k.startswith("aux_classifier.")}
        inner = model.net if not any(k.startswith("net.") for k in state) else model
        try:
            inner.load_state_dict(state)
        except RuntimeError as err:
            raise ApiError(f"{weights} does not fit torchvision {name}: {str(err).splitlines()[0][:200]}") from None
    try:
        from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights
        classes = list(DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.meta["categories"])
    except Exception:  # noqa: BLE001 - an older torchvision without metadata
        classes = [str(i) for i in range(21)]
    return model, classes
