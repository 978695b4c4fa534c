"""Findings of the dataset-wide analyses, as sentences built from their manifests' numbers.

``strategy_shortcuts``: a strategy cluster whose maps lie outside the object is named as a likely
shortcut (with the marker check when the data has one). ``dissection_depth``: how the number
of detector units changes from the first to the last dissected layer.
"""
from __future__ import annotations

from typing import Any

from netgaze.report.finding_text import figure_ref
from netgaze.report.runinfo import RunInfo


def _manifests(runs: list[RunInfo], study: str) -> list[tuple[RunInfo, dict[str, Any]]]:
    return [(run, m) for run in runs for m in run.manifests if m.get("study") == study and not m.get("skipped")]


def strategy_shortcuts(runs: list[RunInfo]) -> list[dict[str, str]]:
    found = []
    for run, manifest in _manifests(runs, "strategies"):
        for entry in (manifest.get("classes") or {}).values():
            if not isinstance(entry, dict):
                continue
            flagged = [s for s in entry.get("summaries", []) if isinstance(s, dict) and s.get("shortcut")]
            total = len(entry.get("indices", []))
            text = (f"In {run.name} ({run.model}), the {manifest.get('method', '?')} maps of layer "
                    f"{manifest.get('layer', '?')} for the {total} {(manifest.get('split') or '') + ' ' if manifest.get('split') else ''}"
                    f"pictures of class "
                    f"{entry.get('name', '?')} fall into {entry.get('n_clusters', '?')} strategies (eigengap).")
            measured = any(isinstance(s, dict) and s.get("energy_in_object") is not None
                           for s in entry.get("summaries", []))
            if not flagged and measured:
                text += " None of them has maps that lie outside the object."
            elif not flagged:
                text += " The data has no masks, so no strategy is checked for a shortcut."
            for s in flagged:
                text += (f" Strategy {s['cluster']} ({s['size']} pictures) is a likely shortcut: "
                         f"{s.get('shortcut_reason', 'its maps lie outside the object')}.")
                if isinstance(s.get("marker_share"), (int, float)):
                    text += f" {s['marker_share']:.0%} of its pictures carry the marker"
                    if isinstance(entry.get("marker_f1"), (int, float)) and entry.get("marker_cluster") == s["cluster"]:
                        text += f" (F1 {entry['marker_f1']:.2f} against \"has the marker\", which the analysis was not told)"
                    text += "."
            found.append({"title": f"Strategies of class {entry.get('name', '?')}", "text": text,
                          "refs": [figure_ref(run, manifest)]})
    return found


def dissection_depth(runs: list[RunInfo]) -> list[dict[str, str]]:
    found = []
    for run, manifest in _manifests(runs, "dissection"):
        layers = [l for l in manifest.get("layers", []) if isinstance(l, dict)]
        if len(layers) < 2:
            continue
        listing = ", ".join(f"{l['name']} {l['detectors']}/{l['units']}" for l in layers)
        first, last = layers[0], layers[-1]
        generic = {"any object", "background", "marker"}
        specific = lambda l: sum(v for k, v in (l.get("per_concept") or {}).items() if k not in generic)  # noqa: E731
        trend = ("more" if specific(last) > specific(first) else "fewer" if specific(last) < specific(first)
                 else "as many")
        found.append({"title": f"Units and concepts in {run.name}", "text": (
            f"Detector units per layer of {run.model} (IoU > {manifest.get('settings', {}).get('iou_threshold', 0.04)} "
            f"with a concept mask): {listing}. The last layer has {trend} units that detect one class's object "
            f"({specific(last)}) than the first ({specific(first)})."), "refs": [figure_ref(run, manifest)]})
    return found
