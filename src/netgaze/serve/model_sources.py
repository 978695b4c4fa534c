"""Sources for models that are not runs: ``torchvision:NAME`` and ``timm:NAME`` classifiers and
torchvision's segmenters (random weights unless a weights file is given), with an optional
folder of pictures to explain."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from netgaze.serve.api_error import ApiError
from netgaze.serve.source import Source, unique_id


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
    from netgaze.zoo import load_named_model, torchvision_segmenter

    if spec.startswith("torchvision:") and spec.split(":", 1)[1] in _segmenter_names():
        model, classes = torchvision_segmenter(spec.split(":", 1)[1], weights)
        folder = Path(images) if images else None
        if folder is not None and not folder.is_dir():
            raise ApiError(f"no such picture folder: {images}")
        description = spec + (f" with {Path(weights).name}" if weights else " (random weights)")
        return Source(id=unique_id(spec.replace(":", "-"), taken), kind="model", task="segment", classes=classes,
                      size=(size, size), channels=3, epochs=[], history=[], model=model.eval(),
                      description=description, output="out", pictures_folder=folder, weights=weights or "")
    if not spec.startswith(("torchvision:", "timm:", "hf:")):
        raise ApiError(f"--model takes torchvision:NAME or timm:NAME, or hf:FOLDER (a save_pretrained folder), got {spec!r}")
    loaded = load_named_model(spec, weights, size=size)
    model, classes = loaded.model, loaded.classes
    model.eval()
    if spec.startswith("hf:"):
        size = loaded.size
    folder = Path(images) if images else None
    if folder is not None and not folder.is_dir():
        raise ApiError(f"no such picture folder: {images}")
    description = f"{spec}" + (f" with {Path(weights).name}" if weights else
                               "" if spec.startswith("hf:") else " (random weights)")
    name = f"hf-{Path(spec[3:]).name}" if spec.startswith("hf:") else spec.replace(":", "-")
    task = loaded.task if spec.startswith("hf:") else "classify"
    return Source(id=unique_id(name, taken), kind="model", task=task, classes=classes,
                  size=(size, size), channels=3, epochs=[], history=[], model=model, description=description,
                  pictures_folder=folder, weights=loaded.weights)


def _segmenter_names() -> list[str]:
    import torchvision.models

    return list(torchvision.models.list_models(module=torchvision.models.segmentation))
