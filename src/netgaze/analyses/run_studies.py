"""The dataset-wide analyses on a run folder: artifacts in ``RUN/artifacts/<analysis>/`` for the report.

``strategies_study(run)``, ``dissection_study(run)``, ``top_examples_study(run)`` and
``concepts_study(run)`` load the run's model and one split of its dataset (with the run's own data
options, a marker included), run the analysis and save it with the run's facts (run, model, dataset, epoch) in the manifest.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from netgaze.core.layers import LayerRef


def _open(run, split: str):
    from netgaze.studies.common import open_run, run_facts

    run = open_run(run)
    if run.task != "classify":
        from netgaze.errors import UserError
        raise UserError(f"dataset-wide analyses need a classification run; {run.path} is a {run.task} run")
    return run, run.dataset(split), run_facts(run)


def _stamp(path: Path, facts: dict[str, Any], split: str) -> Path:
    """Add the run's facts to a saved manifest (atomically rewritten)."""
    from netgaze.studies.common import atomic_write_json

    manifest = json.loads(path.read_text())
    manifest.update({k: v for k, v in facts.items() if k not in manifest}, split=split)
    return atomic_write_json(path, manifest)


def strategies_study(run, split: str = "test", classes: Sequence[int | str] | None = None, method: str = "gradcam",
                     layer: LayerRef | None = None, n_clusters: int | None = None, out: str | Path | None = None,
                     maps: str | Path | None = None, progress: bool = True, **options: Any) -> Path:
    """SpRAy strategies of a run's classes on one split; returns the path of ``strategies.json``.

    ``maps`` keeps the explanation shards in that folder (a rerun resumes from them); None = a
    temporary folder.
    """
    from netgaze.analyses.strategies import strategies

    run, data, facts = _open(run, split)
    folder = Path(out) if out is not None else run.artifacts / "strategies"
    found = strategies(run.model, data, classes=classes, method=method, layer=layer, n_clusters=n_clusters,
                       out=maps, progress=progress, **options)
    return _stamp(found.save(folder), facts, split)


def dissection_study(run, split: str = "test", layers: Sequence[LayerRef] | None = None,
                     out: str | Path | None = None, progress: bool = True, **options: Any) -> Path:
    """Network dissection of a run's conv layers on one split; returns the path of ``dissection.json``."""
    from netgaze.analyses.dissect import dissect

    run, data, facts = _open(run, split)
    result = dissect(run.model, data, layers=layers, progress=progress, **options)
    return _stamp(result.save(Path(out) if out is not None else run.artifacts / "dissection"), facts, split)


def top_examples_study(run, layer: LayerRef = -1, channels: Sequence[int] | None = None, k: int = 9,
                       split: str = "test", featureviz_steps: int = 64, out: str | Path | None = None,
                       progress: bool = True, output: Any = None) -> Path:
    """Each channel's top pictures beside its activation-maximization picture; returns the manifest path.

    ``featureviz_steps=0`` leaves the activation-maximization column out.
    """
    from netgaze.analyses.top_examples import top_examples

    run, data, facts = _open(run, split)
    result = top_examples(run.model, data, layer, channels=channels, k=k, progress=progress, output=output)
    maximized = None
    if featureviz_steps > 0:
        from netgaze.featureviz import visualize

        maximized = visualize(run.model, result.layer, channels=result.channels, steps=featureviz_steps,
                              size=tuple(result.input_size), random_state=0).detach().cpu()
    folder = Path(out) if out is not None else run.artifacts / "top_examples"
    return _stamp(result.save(folder, maximized=maximized, facts=facts), facts, split)


def concepts_study(run, layer: LayerRef = -1, classes: Sequence[int | str] | None = None, k: int = 9,
                   per_picture: int | None = None, split: str = "test", featureviz_steps: int = 64, n_channels: int = 6,
                   out: str | Path | None = None, progress: bool = True, output: Any = None) -> Path:
    """Reference pictures per concept and the concept atlas per class; returns the path of ``concepts.json``.

    The figures show each class's ``n_channels`` top channels, beside their activation-maximization
    pictures (``featureviz_steps=0``: none) and their dissection labels when ``artifacts/dissection``
    dissected the same layer. On a marker run the manifest keeps ``marker_numbers``.
    """
    from netgaze.analyses.concept_references import concept_references, marker_numbers

    run, data, facts = _open(run, split)
    chosen = None if classes is None else [_class_index(c, data) for c in classes]
    result = concept_references(run.model, data, layer, classes=chosen, k=k, per_picture=per_picture,
                                progress=progress, output=output)
    shown = sorted({c for cls in result.classes for c in result.atlas.ranking(cls, n_channels)})
    maximized = {}
    if featureviz_steps > 0:
        from netgaze.featureviz import visualize

        pictures = visualize(run.model, result.layer, channels=shown, steps=featureviz_steps,
                             size=tuple(result.by_activation.input_size), random_state=0).detach().cpu()
        maximized = dict(zip(shown, pictures))
    folder = Path(out) if out is not None else run.artifacts / "concepts"
    path = result.save(folder, maximized=maximized, labels=dissection_labels(run.artifacts, result.layer),
                       marker=marker_numbers(result, data, n_channels), facts=facts, n_channels=n_channels)
    return _stamp(path, facts, split)


def dissection_labels(artifacts: Path, layer: str) -> dict[int, str]:
    """Channel -> its concept, for the units of ``layer`` that ``artifacts/dissection`` found to be detectors."""
    path = Path(artifacts) / "dissection" / "dissection.json"
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text())
        threshold = float(found.get("settings", {}).get("iou_threshold", 0.04))
        for entry in found.get("layers", []):
            if entry.get("name") == layer:
                return {u: found["concepts"][b] for u, b in enumerate(entry["best"])
                        if entry["iou"][u][b] > threshold}
    except (ValueError, KeyError, IndexError, TypeError):
        return {}
    return {}


def _class_index(cls: int | str, data) -> int:
    names = list(getattr(data, "classes", []) or [])
    if isinstance(cls, int) or str(cls).isdigit():
        return int(cls)
    if cls not in names:
        from netgaze.errors import UserError
        raise UserError(f"unknown class {cls!r}; classes: {', '.join(map(str, names))}")
    return names.index(cls)
