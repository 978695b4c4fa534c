"""The lab's datasets: embedded (digits, shapes), MNIST IDX files, image folders; augmentation presets.

Every dataset yields ``(image float32 [C, H, W] in [0, 1], int label)`` and has ``.classes``,
``.channels``, ``.size`` (H, W), ``.name``, ``.split``, ``.labels`` and per-channel ``.mean`` /
``.std`` for the model's first ``Normalize`` layer.
"""
from netgaze.lab.datasets.augment import AUGMENT_PRESETS, Transformed, augmentation
from netgaze.lab.datasets.base import DatasetError, TensorImageDataset, channel_stats
from netgaze.lab.datasets.digits import Digits, digits
from netgaze.lab.datasets.folders import (CorruptImageWarning, ImageFolderDataset, image_folder,
                                          readable_class_name)
from netgaze.lab.datasets.load import load_dataset
from netgaze.lab.datasets.mnist_idx import MNIST, mnist, read_idx
from netgaze.lab.datasets.shapes import Shapes, shapes
from netgaze.lab.datasets.shapes_geometry import SHAPE_NAMES
from netgaze.lab.datasets.split_lists import read_split_list

__all__ = [
    "digits", "shapes", "mnist", "image_folder", "load_dataset", "augmentation", "Transformed",
    "read_idx", "read_split_list", "readable_class_name", "channel_stats",
    "Digits", "Shapes", "MNIST", "ImageFolderDataset", "TensorImageDataset",
    "DatasetError", "CorruptImageWarning", "AUGMENT_PRESETS", "SHAPE_NAMES",
]
