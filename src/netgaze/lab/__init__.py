"""The training lab: datasets, models, training into run folders, and loading runs back.

- ``netgaze.lab.datasets``: embedded digits and shapes, MNIST files, image folders.
- ``netgaze.lab.models``: the model registry (``build_model``, ``model_names``).
- ``netgaze.lab.train``: ``train_classifier`` (and how other tasks reuse the loop).
- ``netgaze.lab.runs``: run folders (``RunFolder``, ``load_run``).
- ``netgaze.lab.run_writer`` / ``netgaze.lab.checkpoint_import``: run folders from the user's
  own training (``RunWriter``, ``import_checkpoints``).

Submodules are imported on first use, so ``import netgaze.lab`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"load_run": "netgaze.lab.runs", "Run": "netgaze.lab.runs", "RunFolder": "netgaze.lab.runs",
         "train_classifier": "netgaze.lab.train", "build_model": "netgaze.lab.models",
         "model_names": "netgaze.lab.models", "register_model": "netgaze.lab.models",
         "RunWriter": "netgaze.lab.run_writer", "import_checkpoints": "netgaze.lab.checkpoint_import"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'netgaze.lab' has no attribute {name!r}")
