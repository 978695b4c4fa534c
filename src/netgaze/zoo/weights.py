"""Read a weights file without running code: safetensors, or ``torch.load(weights_only=True)``."""
from __future__ import annotations

from pathlib import Path

import torch

from netgaze.zoo.loaded import ModelInputError


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a ``torch.save`` file (read with weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise ModelInputError(f"no such weights file: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or foreign file: one line for the user
        reason = ("it holds objects other than tensors (netgaze reads weights with weights_only=True)"
                  if "Weights only load failed" in str(err) and "Unsupported global" in str(err)
                  else "not a PyTorch (.pth/.pt) or .safetensors weights file")
        raise ModelInputError(f"cannot read weights from {path}: {reason}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelInputError(f"{path} does not hold a state dict of tensors")
    return state
