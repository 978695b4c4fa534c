"""The report's findings: sentences with numbers, composed from the studies' manifests.

Three findings of the seed report are checked when their numbers exist:
models differ in where they look (Grad-CAM energy inside the object per model),
augmentation moves attention onto the object, and a small model's features cluster
by background colour (kNN accuracy of background colour vs class in feature space).
"""
from __future__ import annotations

from typing import Any

from netgaze.report.runinfo import RunInfo


NOISE = 0.02  # changes of the mean energy share smaller than this are called no change


def _fmt(value: Any) -> str:
    return "n/a" if not isinstance(value, (int, float)) else f"{value:.2f}"


def manifests_of(runs: list[RunInfo], study: str) -> list[tuple[RunInfo, dict[str, Any]]]:
    return [(run, m) for run in runs for m in run.manifests if m.get("study") == study and not m.get("skipped")]


def where_models_look(runs: list[RunInfo]) -> list[dict[str, str]]:
    """Findings 1 and 2 from the models study (energy of Grad-CAM inside the object)."""
    found = []
    for _, manifest in manifests_of(runs, "models"):
        per_model = manifest.get("numbers", {}).get("per_model", {})
        energy = {name: n.get("gradcam_energy_in_mask") for name, n in per_model.items()
                  if isinstance(n.get("gradcam_energy_in_mask"), (int, float))}
        if len(energy) < 2:
            continue
        area = next((n.get("mask_area") for n in per_model.values() if n.get("mask_area") is not None), None)
        listing = ", ".join(f"{name} {_fmt(v)}" for name, v in energy.items())
        low, high = min(energy, key=energy.get), max(energy, key=energy.get)
        found.append({
            "title": "Models differ in where they look",
            "text": (f"Share of the Grad-CAM energy that falls inside the object's ground-truth mask, "
                     f"over {manifest.get('eval_images', '?')} test pictures: {listing}"
                     + (f" (the object covers {_fmt(area)} of a picture, which a uniform map would score)" if area else "")
                     + f". {high} looks at the object most, {low} least."),
        })
        facts = manifest.get("models", {})
        robust = [n for n in energy if str(facts.get(n, {}).get("augment", "none")) not in ("none", "None", "")]
        plain = [n for n in energy if n not in robust]
        if robust and plain:
            best_plain = max(plain, key=energy.get)
            for name in robust:
                delta = energy[name] - energy[best_plain]
                verdict = ("moves attention onto the object" if delta > NOISE else
                           "moves attention AWAY from the object here" if delta < -NOISE else
                           f"does not measurably change where the model looks here (|change| < {NOISE})")
                found.append({
                    "title": "Augmentation and attention",
                    "text": (f"With {facts[name].get('augment')} augmentation ({name}), the energy inside the object is "
                             f"{_fmt(energy[name])} against {_fmt(energy[best_plain])} for the best model trained "
                             f"without it ({best_plain}): a change of {delta:+.2f}, so augmentation {verdict}."),
                })
    return found


def background_clustering(runs: list[RunInfo]) -> list[dict[str, str]]:
    """Finding 3 from the embedding manifests' kNN accuracies."""
    found = []
    for run, manifest in manifests_of(runs, "embed"):
        knn = manifest.get("numbers", {}).get("knn", {})
        if not isinstance(knn, dict) or "class" not in knn:
            continue
        main = [key for key in ("class", "background") if key in knn]
        parts = [f"{key} {_fmt(knn[key])}" + (f" (chance {_fmt(knn[f'{key} (chance)'])})" if f"{key} (chance)" in knn else "")
                 for key in main] or [f"{attr} {_fmt(value)}" for attr, value in knn.items()]
        text = (f"kNN accuracy (k={manifest.get('numbers', {}).get('k', 5)}) of test pictures in the feature space of "
                f"layer {manifest.get('layer', '?')} of {run.name} ({run.model}): " + ", ".join(parts) + ".")
        if isinstance(knn.get("background"), (int, float)) and isinstance(knn.get("class"), (int, float)):
            text += (" The features sort pictures by background colour more than by class." if knn["background"] > knn["class"]
                     else " The features sort pictures by class more than by background colour.")
        found.append({"title": f"What {run.name}'s features cluster by", "text": text})
    return found


def shortcut_gap(runs: list[RunInfo]) -> list[dict[str, str]]:
    """Train vs test accuracy of classifiers trained on the spurious-background shapes."""
    rows = []
    for run in runs:
        options = run.config.get("data_options") or {}
        if run.task != "classify" or not options.get("spurious"):
            continue
        train, test = run.last("train_acc"), run.last("test_acc")
        if isinstance(train, (int, float)) and isinstance(test, (int, float)):
            rows.append(f"{run.name} ({run.model}, augmentation {run.augment}) {_fmt(train)} on train, {_fmt(test)} on test")
    if not rows:
        return []
    return [{"title": "A shortcut through the background",
             "text": ("In the training pictures the background colour names the class 90% of the time; in the test "
                      "pictures it is independent of the class. Final accuracies: " + "; ".join(rows) + ". A wide gap "
                      "means the model learned the background rather than the shape.")}]


def findings(runs: list[RunInfo]) -> list[dict[str, str]]:
    """Every finding the manifests support, in the seed report's order."""
    from netgaze.report.findings_dataset import dissection_depth, strategy_shortcuts

    return (shortcut_gap(runs) + where_models_look(runs) + background_clustering(runs) + strategy_shortcuts(runs)
            + dissection_depth(runs))
