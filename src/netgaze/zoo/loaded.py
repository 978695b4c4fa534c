"""A model ready to explain pictures, and the error for a model or file that cannot be one."""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from netgaze.errors import UserError


class ModelInputError(UserError):
    """A missing or unreadable file, an unknown model name, or weights that do not fit the model."""


@dataclass
class LoadedModel:
    """A model ready to explain pictures: its class names and the picture size it takes.

    ``task`` is ``"classify"``, ``"segment"`` (a dense class map) or ``"detect"`` (boxes);
    ``random_weights`` is True for a named model loaded without a weights file.
    """

    model: nn.Module
    classes: list[str]
    size: int
    channels: int
    name: str
    task: str = "classify"
    random_weights: bool = False
