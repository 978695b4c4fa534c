"""``hf:FOLDER``: a Hugging Face transformers model saved with ``save_pretrained``.

The folder holds ``config.json`` and ``model.safetensors`` (and, when saved beside the model,
the image processor's ``preprocessor_config.json``). It is read offline and without running
code: the model class is the config's first ``architectures`` entry, which must be a class of
the transformers package itself (a config that needs remote code is refused), and the weights
are read from safetensors only (a pickled ``pytorch_model.bin`` is refused).

Class names come from the config's ``id2label`` (``load_named_model`` puts ``--labels FILE``
in their place when given).
Pictures reach the model in [0, 1] through a ``Normalize`` layer in front (its layers are
``net.NAME``): the processor's ``image_mean`` / ``image_std`` when the folder has a processor
config that normalises, else none (mean 0, std 1). A ``...ForSemanticSegmentation`` model
(Segformer) is a segmenter whose logits are explained at their own resolution.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch.nn as nn

from netgaze.zoo.loaded import LoadedModel, ModelInputError

PREFIX = "hf:"


def is_hf_spec(spec: str | None) -> bool:
    return isinstance(spec, str) and spec.startswith(PREFIX)


def load_hf_folder(spec: str, *, size: int = 224) -> LoadedModel:
    """Build the model of ``hf:FOLDER`` with its weights and class names (see the module)."""
    folder = Path(spec[len(PREFIX):] if is_hf_spec(spec) else spec)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelInputError(f"--model hf:FOLDER takes a folder written by save_pretrained (config.json and "
                              f"model.safetensors); {folder} has no config.json")
    if not (folder / "model.safetensors").is_file():
        found = "pytorch_model.bin (pickle, not read)" if (folder / "pytorch_model.bin").is_file() else "no weights"
        raise ModelInputError(f"{folder} has {found}: save the model with save_pretrained(..., "
                              "safe_serialization=True) to get model.safetensors")
    try:
        import transformers
    except ImportError:
        raise ModelInputError("--model hf:FOLDER needs the transformers package: "
                              "pip install 'netgaze[transformers]'") from None
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - one line for the user
        raise ModelInputError(f"{folder}/config.json is not a transformers config: {str(err).splitlines()[0][:200]}") \
            from None
    cls = _model_class(transformers, config, folder)
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()   # one local file: no "Loading weights" bar on stderr
    try:
        net = cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=True, trust_remote_code=False)
    except Exception as err:  # noqa: BLE001 - one line for the user
        raise ModelInputError(f"cannot load {folder} as {cls.__name__}: {str(err).splitlines()[0][:200]}") from None
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    task = "segment" if "SemanticSegmentation" in cls.__name__ else "classify"
    n = int(getattr(config, "num_labels", 0) or 0)
    names = id2label_names(getattr(config, "id2label", None), n)
    channels = int(getattr(config, "num_channels", 3) or 3)
    model = _normalized(net.eval(), folder, channels)
    return LoadedModel(model.eval(), names, _size(config, size), channels, f"hf:{folder}", task=task,
                       weights=str(Path(folder) / "model.safetensors"))


def id2label_names(id2label, n: int) -> list[str]:
    """Class names in index order from a config's ``id2label`` (keys may be strings); indices where none."""
    table = {int(k): str(v) for k, v in (id2label or {}).items() if str(k).lstrip("-").isdigit()}
    return [table.get(i, str(i)) for i in range(n)]


def _model_class(transformers, config, folder: Path) -> type:
    names = list(getattr(config, "architectures", None) or [])
    for name in names:
        cls = getattr(transformers, name, None) if isinstance(name, str) and name.isidentifier() else None
        if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
            return cls
    if names:
        raise ModelInputError(f"{folder}: transformers has no model class {names[0]!r} (remote code is not run)")
    try:   # no architectures recorded: an image classifier of the config's type
        return transformers.AutoModelForImageClassification._model_mapping[type(config)]
    except KeyError:
        raise ModelInputError(f"{folder}: config.json names no architecture, and {type(config).__name__} "
                              "has no image-classification model") from None


def _size(config, default: int) -> int:
    size = getattr(config, "image_size", None)
    if isinstance(size, (list, tuple)) and size:
        size = size[0]
    return int(size) if isinstance(size, int) and size > 0 else default


def _normalized(net: nn.Module, folder: Path, channels: int) -> nn.Module:
    from netgaze.lab.models.classifiers import Normalized
    from netgaze.lab.models.normalize import Normalize

    mean, std = [0.0] * channels, [1.0] * channels
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        try:
            settings = json.loads(processor.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelInputError(f"cannot read {processor}: {err}") from None
        given_mean, given_std = settings.get("image_mean"), settings.get("image_std")
        if settings.get("do_normalize", True) and isinstance(given_mean, list) and isinstance(given_std, list) \
                and len(given_mean) == len(given_std) == channels:
            mean, std = [float(v) for v in given_mean], [float(v) for v in given_std]
    return Normalized(Normalize(mean, std), net)


__all__ = ["load_hf_folder", "is_hf_spec", "id2label_names"]
