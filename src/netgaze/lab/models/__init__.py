"""Models of the training lab, built by name through one registry.

``build_model("simple-cnn", num_classes=5, in_channels=3)``; ``model_names()`` lists
the names. Every module of this package is imported here, so a builder registers itself
just by living in a file of ``netgaze/lab/models/`` with ``@register_model("name")``
(the VAE and FCN builders do).
"""
from __future__ import annotations

import importlib
import pkgutil

from netgaze.lab.models.normalize import Normalize
from netgaze.lab.models.registry import (ModelError, build_forms, build_from_spec, build_model, builder_parameters,
                                         model_names, register_model)
from netgaze.lab.models.trust import UntrustedCodeError, trusting_code

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["build_model", "build_from_spec", "build_forms", "model_names", "register_model", "builder_parameters",
           "ModelError", "UntrustedCodeError", "trusting_code", "Normalize"]
