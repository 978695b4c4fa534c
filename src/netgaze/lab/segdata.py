"""Segmentation datasets: items ``(image float32 [3, H, W] in [0, 1], mask int64 [H, W])``.

- ``shapes_segmentation``: the embedded ``shapes`` set with its exact masks; label 0 is
  the background and ``c + 1`` the shape of class c.
- ``voc_segmentation``: a VOC-style folder (``JPEGImages/NAME.jpg``,
  ``SegmentationClass/NAME.png`` as palette or grey PNGs of class indices,
  ``ImageSets/Segmentation/{train,val}.txt``); label 255 (VOC's object borders) is ignored
  by the loss and the metrics.
- ``load_segmentation(spec, split, **options)``: "shapes" or a folder PATH.

Every set has ``.classes`` (background first), ``.num_classes``, ``.size`` (H, W),
``.name``, ``.split`` and ``.ignore_index``.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from netgaze.lab.datasets.base import DatasetError
from netgaze.lab.datasets.shapes import Shapes
from netgaze.metrics.segmentation import IGNORE_INDEX
from netgaze._util.picture_files import read_picture

VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor"]
SPLIT_FILES = {"train": "train.txt", "val": "val.txt", "test": "val.txt", "trainval": "trainval.txt"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def voc_palette(n: int = 256) -> np.ndarray:
    """VOC's colour map: [n, 3] uint8, colour of label i (bit-interleaved; 255 is (224, 224, 192))."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for label in range(n):
        c, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[label] = (r, g, b)
    return palette


class ShapesSegmentation(Dataset):
    """The shapes set as segmentation: mask 0 = background, ``label + 1`` on the shape's pixels.

    Attributes:
        shapes: the underlying ``netgaze.lab.datasets.Shapes`` (boxes, labels, backgrounds).
        classes: ``["background", "circle", ...]``.
        masks: int64 [N, H, W], every item's mask (built once).
    """

    ignore_index = IGNORE_INDEX

    def __init__(self, split: str = "train", n: int | None = None, seed: int = 0, size: int = 64,
                 num_classes: int = 5, clutter: float = 0.5):
        self.shapes = Shapes(split, n=n, seed=seed, size=size, num_classes=num_classes, clutter=clutter)
        self.classes = ["background"] + list(self.shapes.classes)
        self.num_classes = len(self.classes)
        self.masks = self.shapes.masks.long() * (self.shapes.labels[:, None, None] + 1)
        self.size, self.name, self.split = self.shapes.size, "shapes", split
        self.labels, self.boxes = self.shapes.labels, self.shapes.boxes

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.shapes[index][0], self.masks[index]

    def box(self, index: int) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1), end-exclusive: the shape's bounding box."""
        return self.shapes.box(index)


class VOCSegmentation(Dataset):
    """A VOC-style folder, one split, every picture resized to ``size``.

    Images are resized bilinearly, masks with NEAREST (labels are never blended), so the
    255 border stays 255. Class names come from ``ROOT/classes.txt`` (one per line,
    background first) when present, VOC's 21 classes otherwise.

    Args:
        root: the folder holding ``JPEGImages``, ``SegmentationClass`` and ``ImageSets``.
        split: "train" (``train.txt``), "val" or "test" (both ``val.txt``), "trainval".
        size: (H, W) or one int for squares.
    """

    ignore_index = IGNORE_INDEX

    def __init__(self, root: str | Path, split: str = "train", size: int | tuple[int, int] = 256):
        self.root = Path(root)
        if split not in SPLIT_FILES:
            raise DatasetError(f"VOC split must be one of {', '.join(SPLIT_FILES)}, got {split!r}")
        for part in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            if not (self.root / part).is_dir():
                raise DatasetError(f"{self.root} is not a VOC-style folder: no {part}/ "
                                   "(expected JPEGImages/, SegmentationClass/, ImageSets/Segmentation/)")
        listing = self.root / "ImageSets" / "Segmentation" / SPLIT_FILES[split]
        if not listing.is_file():
            raise DatasetError(f"no split list {listing}")
        self.ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise DatasetError(f"{listing} lists no images")
        self.images = [self._image_path(i) for i in self.ids]
        self.mask_paths = [self.root / "SegmentationClass" / f"{i}.png" for i in self.ids]
        missing = [p for p in self.mask_paths if not p.is_file()]
        if missing:
            raise DatasetError(f"{len(missing)} mask(s) missing, e.g. {missing[0]}")
        names = self.root / "classes.txt"
        self.classes = ([s.strip() for s in names.read_text().splitlines() if s.strip()]
                        if names.is_file() else list(VOC_CLASSES))
        self.num_classes = len(self.classes)
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.name, self.split = self.root.name, split

    def _image_path(self, name: str) -> Path:
        for suffix in IMAGE_SUFFIXES:
            path = self.root / "JPEGImages" / f"{name}{suffix}"
            if path.is_file():
                return path
        raise DatasetError(f"no image for {name!r} in {self.root / 'JPEGImages'}")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.size
        pixels = read_picture(self.images[index], "RGB", (h, w), "stretch").astype(np.float32) / 255
        mask = read_mask(self.mask_paths[index], (h, w))
        bad = (mask >= self.num_classes) & (mask != IGNORE_INDEX)
        if bad.any():
            raise DatasetError(f"{self.mask_paths[index]}: label {int(mask[bad][0])} but only "
                               f"{self.num_classes} classes (add ROOT/classes.txt)")
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), torch.from_numpy(mask.astype(np.int64))


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Class indices [H, W] (uint8) of a palette, grey or VOC-coloured RGB PNG, resized with NEAREST."""
    with Image.open(path) as mask:
        if mask.mode in ("P", "L"):
            mask = mask.copy()
        elif mask.mode in ("RGB", "RGBA"):
            mask = Image.fromarray(_rgb_to_labels(np.asarray(mask.convert("RGB")), path), mode="L")
        else:
            raise DatasetError(f"{path}: a mask must be a palette, grey or RGB PNG, not mode {mask.mode}")
    if size is not None and mask.size != (size[1], size[0]):
        mask = mask.resize((size[1], size[0]), Image.NEAREST)
    return np.asarray(mask, dtype=np.uint8)


def _rgb_to_labels(rgb: np.ndarray, path) -> np.ndarray:
    palette = voc_palette().astype(np.int64)
    codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    lookup = {int(c): i for i, c in enumerate(codes) if i < 21 or i == IGNORE_INDEX}
    pixel_codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    unique, inverse = np.unique(pixel_codes, return_inverse=True)
    unknown = [u for u in unique if int(u) not in lookup]
    if unknown:
        u = int(unknown[0])
        raise DatasetError(f"{path}: colour {(u >> 16, (u >> 8) & 255, u & 255)} is not in VOC's colour map")
    return np.array([lookup[int(u)] for u in unique], dtype=np.uint8)[inverse].reshape(rgb.shape[:2])


def shapes_segmentation(split: str = "train", n: int | None = None, seed: int = 0, size: int = 64,
                        num_classes: int = 5, clutter: float = 0.5) -> ShapesSegmentation:
    """The embedded shapes set as segmentation (``num_classes`` shapes + background)."""
    return ShapesSegmentation(split, n=n, seed=seed, size=size, num_classes=num_classes, clutter=clutter)


def voc_segmentation(root: str | Path, split: str = "train", size: int | tuple[int, int] = 256) -> VOCSegmentation:
    """A VOC-style folder (see ``VOCSegmentation``)."""
    return VOCSegmentation(root, split, size)


def load_segmentation(spec: str, split: str = "train", **options: Any) -> Dataset:
    """A segmentation set by name: "shapes" or the path of a VOC-style folder.

    Args:
        spec: "shapes", "voc:PATH" or PATH.
        split: "train" or "test" (a VOC folder's "test" is its ``val.txt``).
        **options: the set's own parameters (shapes: n, seed, size, num_classes, clutter;
            VOC: size); an unknown one is an error naming the valid ones.
    """
    spec = str(spec).strip()
    if spec.lower() == "shapes":
        builder, fixed = shapes_segmentation, {"split": split}
    else:
        path = spec[4:] if spec.lower().startswith("voc:") else spec
        if not Path(path).is_dir():
            raise DatasetError(f"unknown segmentation data {spec!r}: use 'shapes' or a VOC-style folder PATH")
        builder, fixed = voc_segmentation, {"root": path, "split": split}
    allowed = [p for p in inspect.signature(builder).parameters if p not in fixed]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DatasetError(f"{spec}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(allowed)}")
    return builder(**fixed, **options)
