"""Turn a device name into a ``torch.device`` that exists on this machine, or say why not."""
from __future__ import annotations

import torch

from netgaze.errors import DeviceError


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` after checking that this machine has it.

    Raises:
        DeviceError: an unknown name (``gpu``), CUDA without a usable GPU, a CUDA index past
            the last GPU, or MPS where Apple's Metal backend is missing.
    """
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:N or mps") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"device {str(device)!r}: this machine has no usable CUDA GPU; use --device cpu")
        if chosen.index is not None and chosen.index >= count:
            raise DeviceError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s), "
                              f"cuda:0 to cuda:{count - 1}")
    elif chosen.type == "mps" and not _mps_available():
        raise DeviceError(f"device {str(device)!r}: Apple MPS is not available here; use --device cpu")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {str(device)!r} is not supported; use cpu, cuda, cuda:N or mps")
    return chosen
