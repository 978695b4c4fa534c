"""One batched explanation pass for a group of requests (runs in a worker process or thread).

Every request of a group shares the model, epoch, method, layers and kind of target, so
the group is one call of the library method on the stacked pictures; each request then gets
its own slice. Samples are independent in eval mode, so a request's map equals the library
call on its picture alone. The model's output (prediction, reconstruction, segmentation) is
taken from the same forward pass (through the method's ``output`` selector), not from a
second forward.

The lab's models (runs) are kept in channels-last memory format in the workers: oneDNN's
convolutions run 1.4x (one picture) to 2.3x (16 pictures) faster on the CPU that way for
these small networks, with maps equal to the library call on the run's model to 1e-7.
torchvision and timm models stay as they come: at 224 px channels-last gained nothing
(resnet18 45 vs 44 ms), and through a ResNet-50 the other summation order moves maps by up
to 1e-4 of their maximum.
"""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from netgaze import viz
from netgaze.core.layers import display_name
from netgaze.methods import CAM_METHODS, LAYER_METHODS, METHODS
from netgaze.core.recorder import select_output
from netgaze.serve.api_error import ApiError
from netgaze.serve.cache import MemoryLRU
from netgaze.serve.uploads import png_base64
from netgaze.serve.source import Source
from netgaze.core.targets import PREDICTED, Area, Class, TopClass

# Methods whose first forward pass is the clean picture (so the output selector sees the real output).
SAME_FORWARD = {"gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "guided_backprop",
                "guided_gradcam", "saliency"}
TOP_PREDICTIONS = 5
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190],
                    [0, 128, 128], [170, 110, 40], [128, 0, 0], [170, 255, 195], [128, 128, 0],
                    [0, 0, 128], [128, 128, 128], [255, 255, 255], [255, 215, 180], [220, 190, 255]], np.uint8)


@dataclass
class ExplainJob:
    """One explanation request, checked and resolved (see ``requests.parse_explain``).

    Attributes:
        target: ``("class", c)``, ``("top", k)`` or ``("box", (y0, x0, y1, x1), channel)``.
        layers: resolved layer names (None for methods without a layer).
        many: the client gave a list of layers (the answer is a dict per layer).
        include: parts of the answer: ``"map"`` (raw values as nested lists), ``"map_f32"`` (the
            same values packed, see ``packed_map``), ``"overlay"`` (PNG).
    """

    source: Source
    epoch: int | None
    method: str
    layers: tuple[str, ...] | None
    many: bool
    x: torch.Tensor
    target: tuple
    include: frozenset = frozenset({"map", "overlay"})
    label: int | None = None

    def key(self) -> tuple:
        kind = self.target[0]
        detail = self.target[1] if kind == "top" else (self.target[2] if kind == "box" else None)
        return (self.source.id, self.epoch, self.method, self.layers, self.many, kind, detail)


class WorkerState:
    """A worker thread's own model copies (``models``) and the shared checkpoint cache (``weights``)."""

    def __init__(self, weights: MemoryLRU, model_bytes: int):
        self.weights = weights
        self.models = MemoryLRU(model_bytes, "models")

    def model(self, source: Source, epoch: int | None) -> nn.Module:
        """The run's model at ``epoch``; a 422 naming the checkpoint when its weights hold NaN or infinity
        (every page: a diverged run is one clear error, never predictions or pictures computed from NaN)."""
        def make() -> nn.Module:
            model = source.new_model(epoch, self.weights)
            bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
            if bad:
                more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
                raise ApiError(f"{source.weights_name(epoch)} holds NaN or infinite weights ({bad[0]}{more}): nothing "
                               "meaningful can be computed from them (a diverged training?)", status=422)
            return model.to(memory_format=torch.channels_last) if source.kind == "run" else model
        return self.models.get_or_make((source.id, epoch), make)


def batch_target(jobs: Sequence[ExplainJob]):
    """The library target for a group: ``Class`` per sample, ``TopClass(k)`` or ``Area`` (a mask per sample)."""
    kind = jobs[0].target[0]
    if kind == "class":
        return Class([int(j.target[1]) for j in jobs])
    if kind == "top":
        return TopClass(int(jobs[0].target[1]))
    boxes = [j.target[1] for j in jobs]
    if len(set(boxes)) == 1:
        return Area(box=boxes[0], channel=jobs[0].target[2])
    h, w = jobs[0].x.shape[-2:]
    mask = torch.zeros(len(jobs), h, w)
    for i, (y0, x0, y1, x1) in enumerate(boxes):
        mask[i, y0:y1, x0:x1] = 1.0
    return Area(mask=mask, channel=jobs[0].target[2])


# Methods whose library call takes one layer (a list is refused there): the explorer calls them per layer.
ONE_LAYER_METHODS = ("scorecam", "guided_gradcam")


def run_method(model: nn.Module, x: torch.Tensor, method: str, layers: tuple[str, ...] | None, many: bool, target,
               output: Any = None):
    """``(maps, model output)`` of one library call; the output comes from the same forward pass."""
    function = METHODS[method]
    seen: list[Any] = []

    def select(raw: Any) -> torch.Tensor:      # the method's output selector, noting the first raw output
        if not seen:
            seen.append(_detach(raw))
        return select_output(raw, output)
    selector = select if method in SAME_FORWARD else output
    if method in LAYER_METHODS and many and method in ONE_LAYER_METHODS:   # the page may ask for several
        maps = {name: function(model, x, name, target=target, output=selector) for name in layers}
    elif method in LAYER_METHODS:
        maps = function(model, x, list(layers) if many else layers[0], target=target, output=selector)
        if isinstance(maps, dict):     # keyed by the model's own names (net.layer4): back to the names shown
            shown = {display_name(model, name): m for name, m in maps.items()}
            maps = {name: shown[name] for name in layers}
    else:
        maps = function(model, x, target=target, output=selector)
    if seen:
        return maps, seen[0]
    with torch.no_grad():
        return maps, _detach(model(x))


def _detach(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, (tuple, list)):
        return type(out)(_detach(o) for o in out)
    if isinstance(out, dict):
        return {k: _detach(v) for k, v in out.items()}
    return out


def dense_output(output: Any) -> torch.Tensor:
    """The tensor a prediction is read from: a tuple's first element, a dict's ``"out"`` or ``"logits"``."""
    if isinstance(output, (tuple, list)):
        return output[0]
    if isinstance(output, dict):
        key = "out" if "out" in output else "logits" if "logits" in output else None
        return output[key] if key is not None else next(iter(output.values()))
    return output


def explain_batch(state: WorkerState, jobs: Sequence[ExplainJob]) -> list[dict[str, Any]]:
    """Explain a group of jobs with equal keys in one pass; one answer dict per job."""
    start = time.perf_counter()
    first = jobs[0]
    model = first.source.bind(state.model(first.source, first.epoch), [j.label for j in jobs])
    x = torch.stack([j.x for j in jobs])
    maps, output = run_method(model, x, first.method, first.layers, first.many, batch_target(jobs),
                              first.source.output)
    output = dense_output(output).float()
    if not bool(torch.isfinite(output).all()):     # a diverged checkpoint: a clear 422, never "tench (nan%)"
        raise ApiError(f"the model's output is NaN or infinite with {first.source.weights_name(first.epoch)}: its "
                       "weights are damaged or overflow (a diverged training?); nothing meaningful can be explained",
                       status=422)
    compute_ms = (time.perf_counter() - start) * 1000
    shown = batch_overlays(x, maps, first) if "overlay" in first.include or any("overlay" in j.include for j in jobs) \
        else None
    predicted = predictions(first.source, output)
    answers = [answer(job, i, maps, output, shown, predicted[i]) for i, job in enumerate(jobs)]
    for a in answers:
        a["compute_ms"] = round(compute_ms, 3)
        a["batch"] = len(jobs)
    return answers


def batch_overlays(x: torch.Tensor, maps, job: ExplainJob) -> dict[Any, np.ndarray]:
    """uint8 pictures of every map of the batch, made in one vectorised call per layer (one
    colour table, one normalisation pass): [B, H, W, 3], or [B, k, H, W, 3] for top-k CAMs."""
    per_layer = maps if isinstance(maps, dict) else {None: maps}
    out = {}
    for name, m in per_layer.items():
        m = m.detach().float().cpu()
        if job.method not in CAM_METHODS and m.dim() == 4:     # per-pixel attributions (FullGrad is a [B, H, W] map)
            out[name] = viz.attribution_image(m)
        elif m.dim() == 3:
            out[name] = viz.overlay(x, m)
        else:
            out[name] = np.stack([viz.overlay(x, m[:, k]) for k in range(m.shape[1])], 1)
    return out


def answer(job: ExplainJob, i: int, maps, output: torch.Tensor, shown: dict[Any, np.ndarray] | None = None,
           predicted: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-ready answer of sample ``i`` of a batch (``predicted``: its entry of ``predictions``)."""
    source = job.source
    result: dict[str, Any] = {"run": source.id, "epoch": job.epoch, "method": job.method,
                              "layers": list(job.layers) if job.layers else None}
    result["prediction"] = predicted if predicted is not None else predictions(source, output[i:i + 1])[0]
    result["target"] = target_facts(job, output[i])
    result["label"] = None if job.label is None else {"class": job.label, "name": class_name(source, job.label)}
    per_layer = maps if isinstance(maps, dict) else {None: maps}
    x = job.x[None]
    if "map" in job.include:
        values = {name: np.ascontiguousarray(m[i].detach().float().cpu().numpy())   # see answer_json
                  for name, m in per_layer.items()}
        result["map"] = values if job.many else next(iter(values.values()))
    if "map_f32" in job.include:
        packed = {name: packed_map(m[i]) for name, m in per_layer.items()}
        result["map_f32"] = packed if job.many else next(iter(packed.values()))
    if "overlay" in job.include:
        if shown is None:
            shown = batch_overlays(x, {n: m[i:i + 1] for n, m in per_layer.items()}, job)
            index = 0
        else:
            index = i
        pictures = {name: (png_base64(image[index]) if image.ndim == 4 else [png_base64(t) for t in image[index]])
                    for name, image in shown.items()}
        result["overlay"] = pictures if job.many else next(iter(pictures.values()))
    if job.target[0] == "box":
        shares = {name: box_share(m[i], job.target[1]) for name, m in per_layer.items()}
        result["inside"] = shares if job.many else next(iter(shares.values()))
    return result


def answer_json(answer: dict[str, Any]) -> bytes:
    """An answer as the client gets it: compact UTF-8 JSON by orjson, maps written from their
    float32 arrays in the shortest digits that read back to the same float32 (a 224 px map:
    1.6 ms and 0.5 MB, against 26 ms and 1 MB for the standard library's JSON of the float64
    list). A NaN or infinity, which JSON lacks, is written as null."""
    import orjson

    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def with_server_time(data: bytes, start: float) -> bytes:
    """An answer's JSON object with ``"ms"`` added last: the time since ``start``
    (``time.perf_counter()`` at the request's arrival) until its bytes were ready."""
    return data[:-1] + b',"ms":%.3f}' % ((time.perf_counter() - start) * 1000)


def packed_map(m: torch.Tensor) -> dict[str, Any]:
    """A map as ``{"shape": [...], "data": base64 of little-endian float32, row-major}``: the same
    values as ``"map"`` in a tenth of the bytes and encoding time (the explorer draws from it)."""
    values = m.detach().float().cpu().contiguous().numpy().astype("<f4", copy=False)
    return {"shape": list(values.shape), "data": base64.b64encode(values.tobytes()).decode("ascii")}


def box_share(m: torch.Tensor, box: tuple[int, int, int, int]) -> float:
    """Share of a map's (absolute) mass inside the box; 0 for an all-zero map."""
    mass = m.detach().abs().float()
    if mass.dim() == 3:
        mass = mass.sum(0)
    y0, x0, y1, x1 = box
    total = float(mass.sum())
    return float(mass[y0:y1, x0:x1].sum()) / total if total > 0 else 0.0


def predictions(source: Source, out: torch.Tensor) -> list[dict[str, Any]]:
    """Per sample of a batch of outputs: the top classes with probabilities (classifiers, in one
    vectorised pass) or the output as a PNG (dense outputs)."""
    if source.task == "classify" or out.dim() == 2:
        probs = out.flatten(1).softmax(1)
        top = probs.topk(min(TOP_PREDICTIONS, probs.shape[1]), 1)
        return [{"top": [{"class": c, "name": class_name(source, c), "p": round(p, 6)} for p, c in zip(ps, cs)]}
                for ps, cs in zip(top.values.tolist(), top.indices.tolist())]
    return [dense_prediction(source, o) for o in out]


def dense_prediction(source: Source, out: torch.Tensor) -> dict[str, Any]:
    """A segmentation (class colours, classes present) or a reconstruction of one sample, as PNG."""
    if source.task == "segment":
        labels = out.argmax(0).cpu().numpy()
        present = sorted(int(c) for c in np.unique(labels))
        return {"output": png_base64(PALETTE[labels % len(PALETTE)]),
                "present": [{"class": c, "name": class_name(source, c)} for c in present],
                "palette": PALETTE[:max(len(source.classes), 1)].tolist()}
    picture = out.clamp(0, 1)
    rgb = (picture.expand(3, -1, -1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return {"output": png_base64(rgb)}


def target_facts(job: ExplainJob, out: torch.Tensor) -> dict[str, Any]:
    kind = job.target[0]
    if kind == "class":
        c = int(job.target[1])
        return {"class": c, "name": class_name(job.source, c)}
    if kind == "top":
        k = int(job.target[1])
        classes = out.flatten().topk(k).indices.tolist()
        return {"top": k, "classes": [{"class": c, "name": class_name(job.source, c)} for c in classes]}
    facts = {"box": list(job.target[1]), "channel": job.target[2]}
    if job.target[2] == PREDICTED:        # which class that was, for this picture
        c = int(Area(box=job.target[1], channel=PREDICTED).predicted_channels(out[None])[0])
        facts.update({"class": c, "name": class_name(job.source, c)})
    return facts


def class_name(source: Source, c: int) -> str:
    return source.classes[c] if 0 <= c < len(source.classes) else str(c)
