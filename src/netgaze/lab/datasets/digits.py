"""scikit-learn's 1,797 handwritten digits, upscaled to 28x28: an embedded MNIST stand-in."""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from netgaze.lab.datasets.base import DatasetError, TensorImageDataset, channel_stats

DIGITS_SIZE = 28
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@functools.lru_cache(maxsize=1)
def _digits_tensors() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    small = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # [N, 1, 8, 8]
    images = F.interpolate(small, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear",
                           align_corners=False, antialias=True).clamp_(0, 1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=DIGITS_TEST_FRACTION,
                                           stratify=bunch.target, random_state=DIGITS_SPLIT_SEED)
    return images, labels, np.sort(train_idx), np.sort(test_idx)


class Digits(TensorImageDataset):
    """The digits of ``sklearn.datasets.load_digits`` (8x8, values 0..16) as 28x28 pictures in [0, 1].

    Upscaled with bilinear interpolation once, at first use; the split is stratified, 80/20,
    with a fixed seed, so "train" (1,437 pictures) and "test" (360) are the same on every machine.
    ``mean``/``std`` come from the training split whichever split this is.
    """

    def __init__(self, split: str = "train"):
        images, labels, train_idx, test_idx = _digits_tensors()
        if split not in ("train", "test", "all"):
            raise DatasetError(f"digits: split must be 'train', 'test' or 'all', got {split!r}")
        index = {"train": train_idx, "test": test_idx, "all": np.arange(len(labels))}[split]
        mean, std = channel_stats(images[train_idx])
        self.indices = torch.from_numpy(index)
        super().__init__(images[index], labels[index], [str(d) for d in range(10)],
                         name="digits", split=split, mean=mean, std=std)


def digits(split: str = "train") -> Digits:
    """The embedded digits set: items ``(float32 [1, 28, 28] in [0, 1], label 0..9)``.

    Args:
        split: "train" (1,437 pictures), "test" (360) or "all" (1,797).
    """
    return Digits(split)
