"""Explain a whole dataset: batched, streaming, sharded across processes, resumable.

``explain_dataset(model, data, "gradcam", layer)`` walks the dataset in index order and
writes one safetensors file per ``shard_size`` images (``shard-00000.safetensors``:
``maps`` [n, H, W], ``indices`` [n], ``predictions`` [n], ``targets`` [n], ``labels``
[n]) and, when every shard exists, ``index.json``. Each shard is written to a temporary
file and renamed, so a shard file on disk is always complete: a rerun skips the shards
that exist and computes the rest.

Speed: the predictions come from the explanation's own forward pass (for the methods whose
first look at the target is the clean batch, ``OWN_FORWARD_METHODS``), so a batch costs one
forward pass, and finished shards are written on a background thread while the next shard is
explained (``benchmarks/bench_explain_dataset.py``).

Under ``torchrun --nproc_per_node=N`` process ``r`` takes shards ``r, r + N, r + 2N, ...``
(gloo on the CPU, nccl on CUDA, joined from the ``WORLD_SIZE``/``RANK`` environment);
rank 0 writes the index after a barrier. Shards are cut by index, and batches inside a
shard start at the shard's first image, so the union of the processes' shards equals a
one-process run exactly.

Reading back is lazy: ``open_explanations(out)`` memory-maps every shard
(``netgaze._util.tensor_files``) and hands out rows or one shard at a time, letting go of each
shard's pages after it, so a pass over a million maps holds one shard in memory
(``load_explanations`` concatenates everything, for small runs). Datasets that read many rows
at once (``read_rows``: the lab's tensor datasets and a run's kept data, memory-mapped) are read
one slice per batch instead of picture by picture.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Subset

from netgaze.errors import ArgumentError, UserError
from netgaze._util.atomic import TMP_MARK, atomic_write_bytes
from netgaze.core.layers import LayerRef, resolve_layer
from netgaze.core.layouts import LayoutArg, ReshapeArg
from netgaze.metrics.maps import MethodLike, explain, resolve_method
from netgaze.core.recorder import OutputSelector, Recorder
from netgaze.core.targets import Class, Target, as_target

DatasetTarget = Union[None, int, str, Target]
INDEX = "index.json"


class ExplainDatasetError(UserError):
    """The output folder holds shards of a different explanation, or the index is incomplete."""


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.safetensors"


def explain_dataset(model: nn.Module, data: Dataset | DataLoader, method: MethodLike, layer: LayerRef | None = -1,
                    target: DatasetTarget = None, out: str | os.PathLike = "explanations", *,
                    shard_size: int = 256, batch_size: int = 32, num_workers: int = 0,
                    device: str | torch.device | None = None, progress: bool = True,
                    output: OutputSelector = None, layout: LayoutArg = None,
                    reshape: ReshapeArg = None) -> Path:
    """Explain every image of ``data`` with ``method`` and write the maps as shards.

    Args:
        model: the model; explained as found (never modified), on ``device``.
        data: a map-style dataset of images or ``(image, label, ...)`` tuples, or a
            DataLoader (its dataset and ``collate_fn`` are used; its sampler is not,
            because shards are cut by index).
        method: a name of ``netgaze.methods.METHODS`` or a callable; per-channel
            attributions are reduced to one map per image (``netgaze.metrics.as_map``).
        layer: the layer of the methods that take one (ignored by the others).
        target: None (each image's top class), ``"label"`` (the dataset's label), a
            class index, or a target valid for any batch (e.g. ``ng.Area(box=...)``).
        out: the output folder (created).
        shard_size: images per shard file.
        batch_size: images per forward/backward pass.
        num_workers: DataLoader worker processes.
        device: where to compute; default the model's device. Under torchrun on GPUs, put
            the model on ``cuda:LOCAL_RANK`` in each process.
        progress: show a tqdm bar (rank 0 only).
        output: selects the explained tensor of a tuple/dict output.
        layout: how the layer's output is read as [B, C, h, w] when detection
            cannot tell (see ``netgaze.core.layouts``).
        reshape: a callable that reads the layer's output as [B, C, h, w], when detection
            cannot tell (see ``netgaze.core.layouts``).

    Returns:
        The path of ``index.json``.
    """
    if shard_size < 1 or batch_size < 1:
        raise ArgumentError("shard_size and batch_size must be >= 1")
    dataset, collate = (data.dataset, data.collate_fn) if isinstance(data, DataLoader) else (data, None)
    total = len(dataset)
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    name, _, takes_layer = resolve_method(method)
    layer_name = resolve_layer(model, layer, _first_shape(dataset))[0] if takes_layer and layer is not None else None
    if isinstance(target, str) and target != "label":
        raise ArgumentError(f"target {target!r}: use None, 'label', a class index or a netgaze target")
    if isinstance(target, (list, tuple)):
        raise ArgumentError("a dataset-wide target cannot be a per-sample list; use 'label' or one class")
    config = {"method": name, "layer": layer_name, "target": repr(target), "output": repr(output),
              "shard_size": shard_size, "num_images": total}
    if layout is not None:
        config["layout"] = layout
    if reshape is not None:
        config["reshape"] = getattr(reshape, "__qualname__", type(reshape).__name__)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    shards = (total + shard_size - 1) // shard_size
    rank, world, _ = _join_process_group(device)  # a group made here stays for the next analysis
    mine = [s for s in range(shards) if s % world == rank]
    todo = [s for s in mine if not _shard_done(folder, s, config)]
    for s in todo:
        for stale in folder.glob(f".{shard_name(s)}{TMP_MARK}*"):
            stale.unlink(missing_ok=True)
    bar = _progress(sum(min(shard_size, total - s * shard_size) for s in todo),
                    enabled=progress and rank == 0, desc=f"{name} maps")
    with _ShardWriter() as writer:
        for s in todo:
            indices = range(s * shard_size, min(total, (s + 1) * shard_size))
            parts = [_explain_batch(model, batch, method, layer_name, target, output, device, (layout, reshape))
                     for batch in _counted(_shard_batches(dataset, indices, batch_size, num_workers, collate), bar)]
            tensors = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            tensors["indices"] = torch.arange(indices.start, indices.stop, dtype=torch.int64)
            writer.submit(folder / shard_name(s), tensors, config)
    bar.close()
    if world > 1:
        dist.barrier()
    if rank == 0:
        _write_index(folder, config, shards)
    return folder / INDEX


def _shard_batches(dataset: Dataset, indices: range, batch_size: int, num_workers: int, collate) -> Iterator[Any]:
    """The batches of one shard: slices of a dataset that reads rows in bulk, else a DataLoader's."""
    from netgaze.analyses.indexed import row_reader

    reader = row_reader(dataset) if collate is None and num_workers == 0 else None
    if reader is None:
        yield from DataLoader(Subset(dataset, indices), batch_size=batch_size, shuffle=False,
                              num_workers=num_workers, **({"collate_fn": collate} if collate else {}))
        return
    read, release = reader
    for start in range(indices.start, indices.stop, batch_size):
        rows = range(start, min(indices.stop, start + batch_size))
        yield list(read(rows))
        release(rows)


def _first_shape(dataset: Dataset) -> tuple[int, ...] | None:
    """The first picture's shape, for the stages of integer layers (None if unknown)."""
    if len(dataset) == 0:
        return None
    item = dataset[0]
    x = item[0] if isinstance(item, (list, tuple)) else item
    return tuple(x.shape) if isinstance(x, torch.Tensor) and x.dim() == 3 else None


def _join_process_group(device: torch.device) -> tuple[int, int, bool]:
    """(rank, world size, created): joins the torchrun group from the environment if needed."""
    from netgaze.analyses.indexed import join_process_group

    return join_process_group(device)


# Methods whose FIRST look at the target is on the clean batch's output (a call or ``resolve``):
# their own forward pass gives the predictions. SmoothGrad and Integrated Gradients first see
# noisy or interpolated inputs, and an unknown callable may too: those get a separate pass.
OWN_FORWARD_METHODS = frozenset({"gradcam", "gradcam_pp", "hirescam", "layercam", "xgradcam", "scorecam",
                                 "guided_gradcam", "saliency", "guided_backprop"})


class _Watched(Target):
    """A target that keeps the first output it is shown (the method's clean forward pass)."""

    def __init__(self, inner: Target):
        self.inner = inner
        self.output: torch.Tensor | None = None

    def _see(self, output: torch.Tensor) -> None:
        if self.output is None:
            self.output = output.detach()

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        self._see(output)
        return self.inner(output)

    def resolve(self, output: torch.Tensor) -> Target:
        self._see(output)
        return self.inner.resolve(output)

    def sample(self, i: int) -> Target:
        return self.inner.sample(i)

    def repeat(self, n: int) -> Target:
        return self.inner.repeat(n)

    def __repr__(self) -> str:
        return repr(self.inner)


def _predictions(out: torch.Tensor, n: int) -> torch.Tensor:
    return out.argmax(1).cpu() if out.dim() == 2 else torch.full((n,), -1, dtype=torch.int64)


def _explain_batch(model: nn.Module, batch: Any, method: MethodLike, layer: str | None, target: DatasetTarget,
                   output: OutputSelector, device: torch.device, reading: tuple = (None, None)
                   ) -> dict[str, torch.Tensor]:
    """Maps, predictions, explained classes and labels of one batch.

    For the methods of ``OWN_FORWARD_METHODS`` the predictions come from the explanation's own
    forward pass (watched through the target), so a batch costs one forward pass, not two.
    ``reading``: the ``(layout, reshape)`` overrides of the layer's output.
    """
    x, labels = (batch[0], batch[1] if len(batch) > 1 else None) if isinstance(batch, (list, tuple)) else (batch, None)
    x = x.to(device)
    n = x.shape[0]
    label_tensor = torch.as_tensor(labels).reshape(-1).long().cpu() if labels is not None else \
        torch.full((n,), -1, dtype=torch.int64)
    if target == "label" and labels is None:
        raise ArgumentError("target='label' needs a dataset of (image, label) pairs")
    name = method if isinstance(method, str) else None
    if name in OWN_FORWARD_METHODS:
        inner = Class(label_tensor.tolist()) if target == "label" else as_target(target)
        watched = _Watched(inner)
        maps = explain(method, model, x, layer, watched, output, layout=reading[0], reshape=reading[1])
        if watched.output is None:
            raise RuntimeError(f"{name} never evaluated its target")  # pragma: no cover - a method contract
        predictions = _predictions(watched.output, n)
    else:
        with Recorder(model, [], output=output, grads=False) as rec:
            out = rec.forward(x)
        predictions = _predictions(out, n)
        if target is None:
            inner = Class(predictions.tolist()) if out.dim() == 2 else as_target(None)
        else:
            inner = Class(label_tensor.tolist()) if target == "label" else as_target(target)
        maps = explain(method, model, x, layer, inner, output, layout=reading[0], reshape=reading[1])
    if target is None:
        explained = predictions
    elif target == "label":
        explained = label_tensor
    else:
        chosen = as_target(target)
        explained = torch.full((n,), chosen.c if isinstance(chosen, Class) and isinstance(chosen.c, int) else -1,
                               dtype=torch.int64)
    return {"maps": maps.float().cpu().contiguous(), "predictions": predictions.long(), "targets": explained.long(),
            "labels": label_tensor}


def _shard_done(folder: Path, shard: int, config: dict) -> bool:
    path = folder / shard_name(shard)
    if not path.exists():
        return False
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    found = json.loads(meta.get("config", "{}"))
    if found != config:
        raise ExplainDatasetError(f"{path} was written with other settings ({found}); this call uses {config}. "
                                  "Use another output folder or delete the old shards")
    return True


class _ShardWriter:
    """Writes shards on one background thread, so the next shard's explanations start at once.

    At most one shard waits while another is being written (memory stays bounded); leaving
    the ``with`` block waits for every write and re-raises the first error.
    """

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netgaze-shards")
        self._pending: list = []

    def submit(self, path: Path, tensors: dict[str, torch.Tensor], config: dict) -> None:
        while len(self._pending) >= 2:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(_write_shard, path, tensors, config))

    def __enter__(self) -> "_ShardWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            for future in self._pending:
                if exc_type is None:
                    future.result()
                else:
                    future.exception()  # wait, but let the error already raised win
        finally:
            self._pool.shutdown(wait=True)


def _write_shard(path: Path, tensors: dict[str, torch.Tensor], config: dict) -> None:
    from safetensors.torch import save

    data = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"config": json.dumps(config)})
    atomic_write_bytes(path, data)


def _write_index(folder: Path, config: dict, shards: int) -> None:
    from safetensors import safe_open

    entries = []
    for s in range(shards):
        path = folder / shard_name(s)
        if not path.exists():
            raise ExplainDatasetError(f"shard {path} is missing after every process finished")
        with safe_open(str(path), framework="pt") as f:
            indices = f.get_slice("indices")
            count = indices.get_shape()[0]
            map_shape = f.get_slice("maps").get_shape()[1:]
        entries.append({"file": path.name, "start": s * config["shard_size"], "count": count})
    index = {**config, "map_shape": list(map_shape) if shards else None, "shards": entries}
    atomic_write_bytes(folder / INDEX, (json.dumps(index, indent=2) + "\n").encode("utf-8"))


class Explanations:
    """A finished ``explain_dataset`` folder, memory-mapped: rows are read when asked for.

    ``len(ex)`` maps; ``ex.index`` the index (settings, ``map_shape``, shards);
    ``ex.read("maps", start, stop)`` rows ``start:stop`` of one key across shards (a copy);
    ``ex.shards(keys)`` one shard at a time as ``{key: tensor}`` (views of the mapped file, whose
    pages are let go when the next shard comes), the way to stream through a million maps.
    """

    def __init__(self, out: str | os.PathLike):
        from netgaze._util.tensor_files import MappedTensors

        self.folder = Path(out)
        index_path = self.folder / INDEX
        if not index_path.exists():
            raise ExplainDatasetError(f"{index_path} is missing: the run is not finished (rerun explain_dataset to "
                                      "complete it)")
        self.index = json.loads(index_path.read_text())
        self._files = [MappedTensors(self.folder / entry["file"]) for entry in self.index["shards"]]
        self._starts = [int(entry["start"]) for entry in self.index["shards"]]
        self._counts = [int(entry["count"]) for entry in self.index["shards"]]

    def __len__(self) -> int:
        return sum(self._counts)

    def shards(self, keys: Sequence[str] = ("maps", "indices", "predictions", "targets", "labels")
               ) -> Iterator[dict[str, torch.Tensor]]:
        """Each shard's tensors in index order; a shard's pages are let go once the next one is asked for."""
        from netgaze._util.tensor_files import drop_pages

        for mapped in self._files:
            tensors = {k: mapped.tensor(k) for k in keys}
            yield tensors
            for tensor in tensors.values():
                drop_pages(tensor)

    def read(self, key: str, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Rows ``start:stop`` (dataset order) of ``key``, copied out of the shards that hold them."""
        from netgaze._util.tensor_files import drop_pages

        stop = len(self) if stop is None else min(stop, len(self))
        parts = []
        for mapped, first, count in zip(self._files, self._starts, self._counts):
            lo, hi = max(start, first), min(stop, first + count)
            if lo < hi:
                tensor = mapped.tensor(key)
                parts.append(tensor[lo - first:hi - first].clone())
                drop_pages(tensor, lo - first, hi - first)
        if not parts:
            shape = self._files[0].shape(key)[1:] if self._files else ()
            return torch.empty((0, *shape), dtype=self._files[0].tensor(key).dtype if self._files else torch.float32)
        return torch.cat(parts)


def open_explanations(out: str | os.PathLike) -> Explanations:
    """A finished ``explain_dataset`` folder, memory-mapped (``Explanations``): nothing is read yet."""
    return Explanations(out)


def load_explanations(out: str | os.PathLike, keys: Sequence[str] = ("maps", "indices", "predictions", "targets",
                                                                    "labels")) -> dict[str, torch.Tensor]:
    """Every shard of a finished ``explain_dataset`` run, concatenated in index order (in memory:
    for big runs, stream with ``open_explanations``)."""
    found = open_explanations(out)
    return {k: found.read(k) for k in keys}


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="img")


def _counted(loader: DataLoader, bar):
    for batch in loader:
        yield batch
        first = batch[0] if isinstance(batch, (list, tuple)) else batch
        bar.update(len(first))
