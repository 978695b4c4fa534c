"""Scores of pictures whose features are kept or replaced by a baseline (feature ablation,
KernelSHAP, LIME), batched to a memory budget."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from netgaze.core.detection import DetectionMatchError
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import TargetLike
from netgaze.errors import ArgumentError
from netgaze.methods.templates import check_image_batch, fixed_target, target_scores

CPU_BUDGET = 1 << 30          # bytes of activations per forward pass on the CPU
MAX_ROWS = 4096


@contextmanager
def _largest_output(model: nn.Module, found: list[int]) -> Iterator[None]:
    """Notes in ``found`` the bytes of the largest tensor any leaf module returns; hooks removed on exit."""
    def note(module: nn.Module, inputs: tuple, out) -> None:
        if isinstance(out, torch.Tensor):
            found[0] = max(found[0], out.numel() * out.element_size())
    handles = []
    try:
        handles = [m.register_forward_hook(note) for m in model.modules() if not list(m.children())]
        yield
    finally:
        for handle in handles:
            handle.remove()


def clean_pass(model: nn.Module, x: torch.Tensor, target: TargetLike, output: OutputSelector, name: str):
    """``(fixed target, clean scores [B], bytes one picture's forward pass holds at most)``.

    The bytes are an estimate: three times the largest output of a leaf module (its input,
    its output and a skip connection alive at once) plus the picture itself.
    """
    if isinstance(x, tuple):
        raise ArgumentError(f"{name} takes one picture batch [B, C, H, W], not a tuple of inputs")
    check_image_batch(x)
    target = fixed_target(model, x, target, output)
    found = [0]
    with Recorder(model, [], output=output, grads=False) as plain, _largest_output(model, found):
        scores = target_scores(target, plain.forward(x), len(x))
    if scores.dim() != 1:
        raise ArgumentError(f"{name} explains one score per sample; use TopClass(1) or Class(...)")
    per_row = 3 * found[0] // len(x) + x[0].numel() * x.element_size()
    return target, scores, per_row


def rows_per_pass(x: torch.Tensor, per_row: int, batch_size: int | None) -> int:
    """``batch_size``, or the most pictures whose forward pass fits the memory budget: a quarter
    of the free memory of a CUDA device, 1 GiB on the CPU (at most 4096)."""
    if batch_size is not None:
        if batch_size < 1:
            raise ArgumentError(f"batch_size must be >= 1 or None, got {batch_size}")
        return batch_size
    budget = CPU_BUDGET
    if x.device.type == "cuda":
        budget = torch.cuda.mem_get_info(x.device)[0] // 4
    return int(max(1, min(MAX_ROWS, budget // per_row)))


def coalition_scores(model: nn.Module, x: torch.Tensor, target, ids: torch.Tensor, coalitions: torch.Tensor,
                     base: torch.Tensor, *, rows: int, output: OutputSelector, cosine: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scores [n, B] of ``x`` with the features a coalition [n, F] marks 0 set to ``base``.

    ``ids`` [1, C or 1, H, W]: feature id per element; ``rows``: pictures per forward pass.
    With ``cosine``, also each perturbed picture's cosine similarity to ``x`` [n, B] (LIME's
    kernel). A ``Detection`` target that finds no match scores 0.
    """
    count = len(x)
    per_call = max(1, rows // count)
    scores, similarity = [], []
    with Recorder(model, [], output=output, grads=False) as plain:
        for chunk in coalitions.split(per_call):
            keep = chunk.to(x.dtype)[:, ids[0]][:, None]                 # [k, 1, C or 1, H, W]
            perturbed = (x[None] * keep + base[None] * (1 - keep)).flatten(0, 1)
            try:
                got = target_scores(target.repeat(len(chunk)), plain.forward(perturbed), len(perturbed))
            except DetectionMatchError:
                got = torch.zeros(len(perturbed), dtype=x.dtype, device=x.device)
            scores.append(got.view(len(chunk), count))
            if cosine:
                similarity.append(F.cosine_similarity(perturbed.flatten(1).float(),
                                                      x.repeat(len(chunk), 1, 1, 1).flatten(1).float(),
                                                      dim=1).view(len(chunk), count))
    return torch.cat(scores), torch.cat(similarity) if cosine else None


def baseline_like(x: torch.Tensor, baseline: float | torch.Tensor) -> torch.Tensor:
    """A baseline (number, [C, H, W] or [B, C, H, W], broadcastable) as [B, C, H, W]."""
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    try:
        return base.expand_as(x) if base.dim() == 4 else base.expand(x.shape[1:])[None].expand_as(x)
    except RuntimeError as err:
        raise ArgumentError(f"baseline of shape {tuple(base.shape)} does not broadcast to the pictures "
                            f"{tuple(x.shape)}") from err
