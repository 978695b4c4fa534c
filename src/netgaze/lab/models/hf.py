"""``hf:CLASS``: a Hugging Face transformers model rebuilt offline from the config kept in the run.

``build_from_spec("hf:ViTForImageClassification", {"config": config.to_dict()})`` builds
``transformers.ViTForImageClassification(ViTConfig.from_dict(config))`` with random weights: no
download, no code outside the transformers package (the class must be one of its
``PreTrainedModel`` classes, so a run folder cannot name anything else here, and
``trust_remote_code`` is never used). The run's checkpoints then load into it.
``netgaze.integrations.transformers.RunCallback`` writes runs with this build; the config lives in
``run.json``'s ``model_args`` (a JSON object), so the run folder alone rebuilds the model.
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from netgaze.lab.models.model_error import ModelError
from netgaze.lab.models.registry import register_model


@register_model("hf:")
def hf_model(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """The transformers model class ``name`` built from ``config`` (a ``config.to_dict()``), randomly initialised."""
    try:
        import transformers
    except ImportError:
        raise ModelError(f"hf:{name} needs the transformers package, which is not installed: "
                         "pip install 'netgaze[transformers]'") from None
    cls = getattr(transformers, name, None) if name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        raise ModelError(f"hf:{name}: transformers has no model class {name!r} (give the class name, e.g. "
                         "hf:ViTForImageClassification, with build_args={'config': model.config.to_dict()})")
    if not isinstance(config, dict):
        raise ModelError(f"hf:{name} needs its config as build_args={{'config': model.config.to_dict()}}")
    try:
        built = cls.config_class.from_dict(dict(config))
    except Exception as err:  # noqa: BLE001 - one line for the user
        raise ModelError(f"hf:{name}: the config does not make a {cls.config_class.__name__} ({err})") from None
    return cls(built).eval()
