"""Findings of the concepts study, as sentences built from ``concepts.json``'s numbers.

Per run: each class's top channels with their mean share and how often they are among a
picture's top channels; on a marker run, the channel whose reference pictures carry the marker
(named the marker's concept when at least 3/4 of its relevance references' crops cover it).
"""
from __future__ import annotations

from typing import Any

from netgaze.report.finding_text import figure_ref
from netgaze.report.runinfo import RunInfo

SHOWN = 3  # channels named per class


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _class_text(name: str, entry: dict[str, Any], per_picture: Any) -> str | None:
    rows = [r for r in entry.get("channels", []) if isinstance(r, dict) and _number(r.get("mean_share")) is not None]
    if not rows:
        return None
    parts = [f"{r.get('channel', '?')} ({_number(r['mean_share']):.0%}, among the top {per_picture} in "
             f"{_number(r.get('top_rate')) or 0:.0%})" for r in rows[:SHOWN]]
    listing = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{name} ({entry.get('pictures', '?')} pictures): channel{'s' if len(parts) > 1 else ''} {listing}."


def _marker_text(manifest: dict[str, Any]) -> str:
    marker = manifest.get("marker")
    if not isinstance(marker, dict):
        return ""
    classes = manifest.get("atlas", {}).get("classes", {}) or {}
    text = ""
    for cls in marker.get("marker_classes", []):
        found = (marker.get("classes") or {}).get(str(cls))
        if not isinstance(found, dict):
            continue
        name = (classes.get(str(cls)) or {}).get("name", str(cls))
        concept = found.get("concept")
        row = (found.get("channels") or {}).get(str(concept)) or {}
        covered, carry, of = row.get("covered"), row.get("carry"), row.get("of")
        if not all(isinstance(v, int) for v in (covered, carry, of)) or not of:
            continue
        if covered * 4 >= 3 * of:
            text += (f" The marker's concept for {name} is channel {concept}, its concept number "
                     f"{found.get('rank', '?')} by mean share: {carry} of its {of} reference pictures by relevance "
                     f"carry the marker and {covered} of their crops cover it, a likely shortcut.")
        else:
            text += (f" No top concept of {name} is centred on the marker: at most {covered} of {of} reference "
                     f"crops cover it (channel {concept}).")
        base = _number(marker.get("base_rate"))
        if base is not None:
            text += f" {base:.0%} of all the analysed pictures carry the marker."
    return text


def concept_atlas(runs: list[RunInfo]) -> list[dict[str, Any]]:
    found = []
    for run in runs:
        for manifest in run.manifests:
            if manifest.get("study") != "concepts" or manifest.get("skipped"):
                continue
            atlas = manifest.get("atlas") if isinstance(manifest.get("atlas"), dict) else {}
            per_picture = atlas.get("per_picture", "?")
            lines = [t for cls, entry in (atlas.get("classes") or {}).items() if isinstance(entry, dict)
                     for t in [_class_text(str(entry.get("name", cls)), entry, per_picture)] if t]
            if not lines:
                continue
            text = (f"In {run.name} ({run.model}), the channels of {manifest.get('layer', '?')} each class relies on "
                    f"most (mean share of the class's relevance, and how often among a picture's top "
                    f"{per_picture}): " + " ".join(lines) + _marker_text(manifest))
            found.append({"title": f"Concepts of {run.name}", "text": text, "refs": [figure_ref(run, manifest)]})
    return found
