"""Models named on the command line: ``torchvision:NAME`` (classifier, segmenter or detector)
or ``timm:NAME``, with an optional weights file and class names.

Class names come from ``--labels FILE`` (one per line), else from the weights when they
are known (torchvision's weight enums carry their categories offline: picked by the
weights file's name, by an explicit enum member, or by the number of classes; timm's
ImageNet names for a 1,000-class head), else they are plain indices. Without a weights
file the model is random: ``random_weights`` is set and no class name is given, because
a name would be meaningless.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
import torch.nn as nn

from netgaze.errors import state_dict_mismatch
from netgaze.lab.models.normalize import IMAGENET_MEAN, IMAGENET_STD
from netgaze.zoo.huggingface import is_hf_spec, load_hf_folder
from netgaze.zoo.loaded import LoadedModel, ModelInputError
from netgaze.zoo.weights import load_weights_file

DEFAULT_CLASSES = {"classify": 1000, "segment": 21, "detect": 91}


def load_named_model(spec: str, weights: str | Path | None = None, *, labels: str | Path | None = None,
                     weights_enum: str | None = None, size: int = 224) -> LoadedModel:
    """Build ``torchvision:NAME``, ``timm:NAME`` or ``hf:FOLDER``, load ``weights`` and find its class names.

    The number of classes is read from the weights (a fine-tuned 10-class head loads
    as is); segmenters get ImageNet normalisation in front (``net.`` before their layer
    names), detectors normalise inside. ``hf:FOLDER`` is a ``save_pretrained`` folder with
    its own weights and class names (``netgaze.zoo.huggingface``).
    """
    if is_hf_spec(spec):
        if weights is not None or weights_enum:
            raise ModelInputError("--weights and --weights-enum go with torchvision:/timm:; an hf:FOLDER has its own "
                                  "model.safetensors")
        loaded = load_hf_folder(spec, size=size)
        if labels is not None:
            loaded.classes = read_labels(labels, len(loaded.classes))
        return loaded
    family, _, name = spec.partition(":")
    if family not in ("torchvision", "timm") or not name:
        raise ModelInputError(f"--model takes torchvision:NAME or timm:NAME (e.g. torchvision:resnet18, "
                                f"timm:resnet18), or hf:FOLDER (a save_pretrained folder), got {spec!r}")
    if weights_enum and family != "torchvision":
        raise ModelInputError("--weights-enum names a torchvision weights enum member; timm models have none")
    task = torchvision_task(name) if family == "torchvision" else "classify"
    state = load_weights_file(weights) if weights is not None else None
    build = (lambda n, aux=False: _torchvision(name, task, n, aux)) if family == "torchvision" \
        else (lambda n, aux=False: _timm(name, n))
    model = build(DEFAULT_CLASSES[task])
    if state is not None:
        n = _classes_in(_inner(model, state).state_dict(), state, DEFAULT_CLASSES[task])
        if n < 1:
            raise ModelInputError(f"{weights} has a head of {n} classes: there is no class score to explain")
        aux = task == "segment" and any(k.startswith(("aux_classifier.", "net.aux_classifier.")) for k in state)
        if n != DEFAULT_CLASSES[task] or aux:
            model = build(n, aux)
        _load(model, state, weights, spec)
    model.eval()
    n = num_outputs(model, task)
    if n < 1:
        raise ModelInputError(f"{weights or spec} has a head of {n} classes: there is no class score to explain")
    names = class_names(family, name, n, weights, labels, weights_enum)
    return LoadedModel(model, names, size, 3, spec, task=task, random_weights=state is None,
                       weights=str(weights) if weights is not None else "")


def torchvision_task(name: str) -> str:
    import torchvision.models as M

    for task, module in (("classify", M), ("segment", M.segmentation), ("detect", M.detection)):
        if name in M.list_models(module=module):
            return task
    import difflib
    known = M.list_models(module=M) + M.list_models(module=M.segmentation) + M.list_models(module=M.detection)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelInputError(f"torchvision has no classification, segmentation or detection model {name!r}{hint}")


def _torchvision(name: str, task: str, num_classes: int, aux: bool) -> nn.Module:
    import torchvision.models as M

    from netgaze.lab.models import build_model
    from netgaze.lab.models.classifiers import Normalized
    from netgaze.lab.models.normalize import Normalize

    if task == "classify":
        return build_model(f"torchvision:{name}", num_classes=num_classes, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    options = {"aux_loss": True} if aux else {}
    net = M.get_model(name, weights=None, weights_backbone=None, num_classes=num_classes, **options)
    return Normalized(Normalize(IMAGENET_MEAN, IMAGENET_STD), net) if task == "segment" else net


def _timm(name: str, num_classes: int) -> nn.Module:
    from netgaze.lab.models import build_model

    try:
        import timm
        cfg = timm.get_pretrained_cfg(name)
    except Exception:  # no timm (build_model says so) or a name without a config
        cfg = None
    mean = tuple(cfg.mean) if cfg is not None and len(cfg.mean) == 3 else IMAGENET_MEAN
    std = tuple(cfg.std) if cfg is not None and len(cfg.std) == 3 else IMAGENET_STD
    return build_model(f"timm:{name}", num_classes=num_classes, mean=mean, std=std)


def _inner(model: nn.Module, state: dict) -> nn.Module:
    """The module a state dict fits: a wrapped model's ``net`` unless the keys say ``net.``."""
    wrapped = hasattr(model, "net") and hasattr(model, "normalize")
    return model.net if wrapped and not any(k.startswith("net.") for k in state) else model


def _classes_in(expected: dict, state: dict, default: int) -> int:
    """Classes of a state dict: heads whose first dimension is ``k * default`` in the model hold ``k * n``."""
    votes = Counter()
    for key, tensor in state.items():
        want = expected.get(key)
        if want is None or want.dim() == 0 or tensor.dim() == 0 or want.shape == tensor.shape:
            continue
        if want.shape[0] % default == 0 and tensor.shape[0] % (want.shape[0] // default) == 0:
            votes[tensor.shape[0] // (want.shape[0] // default)] += 1
    return votes.most_common(1)[0][0] if votes else default


def _load(model: nn.Module, state: dict, weights, spec: str) -> None:
    target = _inner(model, state)
    check_values(target.state_dict(), state, weights)
    try:
        target.load_state_dict(state)
    except RuntimeError as err:
        raise ModelInputError(f"{weights} does not fit {spec}: {state_dict_mismatch(err)}") from None


def check_values(expected: dict, state: dict, weights) -> None:
    """Refuse weights that would load silently and explain nonsense: a floating-point parameter
    given as integers or booleans (``load_state_dict`` would cast them), or NaN / infinite values."""
    for key, tensor in state.items():
        want = expected.get(key)
        if want is not None and want.is_floating_point() and not tensor.is_floating_point():
            raise ModelInputError(f"{weights}: {key} is {str(tensor.dtype).removeprefix('torch.')}, but the model's "
                                  f"parameter is floating point (a quantized or foreign file?)")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ModelInputError(f"{weights}: {key} holds {bad} NaN or infinite value(s) of {tensor.numel()}; "
                                  "these weights cannot give meaningful explanations")


def num_outputs(model: nn.Module, task: str) -> int:
    """Classes the model scores: its last linear layer, a segmenter's last conv, a detector's num_classes."""
    if task == "detect":
        return _detector_classes(model)
    kinds = (nn.Conv2d,) if task == "segment" else (nn.Linear,)
    last = [m for name, m in model.named_modules() if isinstance(m, kinds) and "aux_classifier" not in name]
    if task == "segment":
        return last[-1].out_channels if last else 0
    if last:
        return last[-1].out_features
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]  # squeezenet: a conv head
    return convs[-1].out_channels if convs else 0


def _detector_classes(model: nn.Module) -> int:
    heads = getattr(model, "roi_heads", None)
    if heads is not None:
        return heads.box_predictor.cls_score.out_features
    head = getattr(model, "head", None)
    classifier = getattr(head, "classification_head", None)
    return int(getattr(classifier, "num_classes", getattr(classifier, "num_columns", 0)))


def class_names(family: str, name: str, n: int, weights, labels, weights_enum: str | None) -> list[str]:
    """``--labels``, else the names the weights carry, else indices (always indices for random weights)."""
    if labels is not None:
        return read_labels(labels, n)
    if weights is None:
        return [str(i) for i in range(n)]
    if family == "torchvision":
        categories = torchvision_categories(name, Path(weights).name, n, weights_enum)
        if categories is not None:
            return categories
    elif n == 1000:
        try:
            from timm.data import ImageNetInfo
            info = ImageNetInfo()
            return [info.index_to_description(i).split(",")[0] for i in range(n)]
        except Exception:  # an older timm without the bundled class files
            pass
    return [str(i) for i in range(n)]


MAX_LABEL = 200   # characters of one class name (names are matched and drawn; a page of text is a mistake)


def read_labels(path: str | Path, n: int) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ModelInputError(f"no such labels file: {path}")
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (UnicodeDecodeError, OSError) as err:
        raise ModelInputError(f"cannot read {path} as UTF-8 text, one class name a line ({type(err).__name__})") from None
    while names and not names[-1]:
        names.pop()
    if len(names) != n:
        raise ModelInputError(f"{path} has {len(names)} names but the model scores {n} classes (one name a line)")
    long = [i + 1 for i, name in enumerate(names) if len(name) > MAX_LABEL]
    if long:
        raise ModelInputError(f"{path}: line {long[0]} is a class name of {len(names[long[0] - 1]):,} characters; "
                              f"the limit is {MAX_LABEL}")
    blank = [i + 1 for i, name in enumerate(names) if not name]
    if blank:
        raise ModelInputError(f"{path}: line {blank[0]} is blank; every class needs a name")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:  # --target NAME would silently take the first
            raise ModelInputError(f"{path}: {name!r} names two classes (lines {seen[name] + 1} and {i + 1})")
        seen[name] = i
    return names


def torchvision_categories(name: str, filename: str, n: int, member: str | None) -> list[str] | None:
    """Categories of torchvision's weights for ``name``: the named member, the file's own, or by count."""
    import torchvision.models as M

    try:
        members = list(M.get_model_weights(name))
    except (ValueError, KeyError):
        members = []
    if member:
        wanted = member.split(".")[-1]
        found = [w for w in members if w.name == wanted]
        if not found:
            raise ModelInputError(f"--weights-enum {member!r}: {name} has {', '.join(w.name for w in members) or 'none'}")
        categories = found[0].meta.get("categories")
        if categories is None or len(categories) != n:
            raise ModelInputError(f"--weights-enum {member}: its {len(categories or [])} categories do not fit "
                                    f"the weights' {n} classes")
        return list(categories)
    by_file = [w for w in members if w.url.rsplit("/", 1)[-1] == filename]
    fitting = [w for w in by_file or members if len(w.meta.get("categories") or []) == n]
    if fitting and all(w.meta["categories"] == fitting[0].meta["categories"] for w in fitting):
        return list(fitting[0].meta["categories"])
    return None


def imagenet_classes(n: int) -> list[str]:
    if n != 1000:
        return [str(i) for i in range(n)]
    try:
        from torchvision.models import ResNet18_Weights
        return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    except Exception:  # an older torchvision without metadata
        return [str(i) for i in range(n)]


def torchvision_segmenter(name: str, weights: str | None) -> tuple[nn.Module, list[str]]:
    """A torchvision segmentation model as the explorer serves it: dict output (``"out"`` explained)
    behind ImageNet normalisation, auxiliary head dropped, with the 21 VOC class names its
    published weights use (also for random weights, so the pages can name the classes)."""
    import torchvision.models
    from netgaze.lab.models.classifiers import Normalized
    from netgaze.lab.models.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalize

    net = torchvision.models.get_model(name, weights=None, weights_backbone=None, num_classes=21, aux_loss=False)
    model = Normalized(Normalize(IMAGENET_MEAN, IMAGENET_STD, out_channels=3), net)
    if weights is not None:
        state = {k: v for k, v in load_weights_file(weights).items() if not k.startswith("aux_classifier.")}
        inner = model.net if not any(k.startswith("net.") for k in state) else model
        try:
            inner.load_state_dict(state)
        except RuntimeError as err:
            raise ModelInputError(f"{weights} does not fit torchvision {name}: {str(err).splitlines()[0][:200]}") from None
    try:
        from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights
        classes = list(DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1.meta["categories"])
    except Exception:  # noqa: BLE001 - an older torchvision without metadata
        classes = [str(i) for i in range(21)]
    return model, classes


__all__ = ["load_named_model", "torchvision_segmenter", "imagenet_classes", "class_names", "read_labels", "torchvision_categories", "num_outputs"]
