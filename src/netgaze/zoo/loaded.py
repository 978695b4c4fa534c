"""A model ready to explain pictures, and the error for a model or file that cannot be one."""
from __future__ import annotations

from dataclasses import dataclass

import torch
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
    weights: str = ""           # where the weights came from (a file, a run's checkpoint), for error messages

    def weights_name(self) -> str:
        return self.weights or f"the weights of {self.name}"

    def check_finite_weights(self) -> None:
        """``NonFiniteError`` naming the weights when a parameter or buffer holds NaN or infinity."""
        bad = [n for n, t in self.model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
            raise NonFiniteError(f"{self.weights_name()} holds NaN or infinite weights ({bad[0]}{more}): "
                                 "nothing meaningful can be computed from them (a diverged training?)")

    def check_finite_output(self, output: torch.Tensor, what: str = "outputs") -> None:
        """``NonFiniteError`` naming the weights when the model's ``output`` (scores, a map) is not finite."""
        if isinstance(output, torch.Tensor) and output.is_floating_point() and not bool(torch.isfinite(output).all()):
            raise NonFiniteError(f"the model gives NaN or infinite {what} with {self.weights_name()}: its weights "
                                 "overflow or are damaged; nothing meaningful can be explained")


class NonFiniteError(ModelInputError):
    """Weights, or a model output, that are NaN or infinite: refused, never shown as ``nan%``."""
