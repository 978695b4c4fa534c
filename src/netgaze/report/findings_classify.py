"""The report's findings about classifiers: shortcuts, where models look, layers, epochs, units, faithfulness.

Each function reads the studies' manifests (or the runs' histories) and returns findings; a
verdict ("looks at the object more", "grows with depth") is chosen by comparing the numbers in
the same sentence, never written in advance; a study that did not run gives no finding.
"""
from __future__ import annotations

from typing import Callable

from netgaze.report.finding_text import NOISE, Finding, figure_ref, fmt, is_number, manifests_of, pct, table_ref, trend
from netgaze.report.runinfo import RunInfo

SHORTCUT_GAP = 0.15  # train minus test accuracy above which a model is said to have learned the background
SANITY = 0.5  # rank correlation after randomizing the weights above which a method fails the sanity check
BASELINES = ("centre", "center", "uniform", "random")  # method-table rows that are reference maps, not methods


def shortcut_gap(runs: list[RunInfo]) -> list[Finding]:
    """Train vs test accuracy of classifiers trained on the spurious-background shapes."""
    rows, learned, generalised, untrained, refs = [], [], [], [], []
    rate = None  # measured by the dataset and kept in run.json ("data_facts"); older runs lack it
    for run in runs:
        options = run.config.get("data_options") or {}
        if run.task != "classify" or not options.get("spurious"):
            continue
        rate = (run.config.get("data_facts") or {}).get("background_follows_class", rate)
        train, test = run.last("train_acc"), run.last("test_acc")
        chance = 1 / len(run.config["classes"]) if run.config.get("classes") else None
        if is_number(train) and is_number(test):
            rows.append(f"{run.name} {fmt(train)} on train, {fmt(test)} on test")
            if chance is not None and train < chance + 0.1:
                untrained.append(run.name)
            else:
                (learned if train - test > SHORTCUT_GAP else generalised).append(run.name)
            refs.append(figure_ref(run, file="curves"))
    if not rows:
        return []
    verdict = []
    if learned:
        verdict.append(f"{', '.join(learned)} {'lose' if len(learned) > 1 else 'loses'} more than "
                       f"{SHORTCUT_GAP:.2f} of accuracy on test pictures, so {'they' if len(learned) > 1 else 'it'} "
                       f"learned the background rather than the shape")
    if generalised:
        verdict.append(f"{', '.join(generalised)} {'keep' if len(generalised) > 1 else 'keeps'} the gap under "
                       f"{SHORTCUT_GAP:.2f}, so {'they' if len(generalised) > 1 else 'it'} mostly learned the shape")
    if untrained:
        verdict.append(f"{', '.join(untrained)} {'are' if len(untrained) > 1 else 'is'} still within 0.1 of chance "
                       f"on the training pictures, so {'they have' if len(untrained) > 1 else 'it has'} not learned "
                       f"either yet")
    return [{"title": "A shortcut through the background",
             "text": ("In the training pictures the background colour names the class "
                      + (f"{pct(rate)} of the time; " if is_number(rate) else "most of the time; ")
                      + "in the test pictures it is independent of the class. Final accuracies: " + "; ".join(rows) + ". "
                      + "; ".join(verdict) + "."), "refs": refs}]


def where_models_look(runs: list[RunInfo]) -> list[Finding]:
    """Grad-CAM energy inside the object per model, and what augmentation changes."""
    found = []
    for run, manifest in manifests_of(runs, "models"):
        per_model = manifest.get("numbers", {}).get("per_model", {})
        energy = {name: n.get("gradcam_energy_in_mask") for name, n in per_model.items()
                  if is_number(n.get("gradcam_energy_in_mask"))}
        if len(energy) < 2:
            continue
        area = next((n.get("mask_area") for n in per_model.values() if n.get("mask_area") is not None), None)
        listing = ", ".join(f"{name} {fmt(v)}" for name, v in energy.items())
        low, high = min(energy, key=energy.get), max(energy, key=energy.get)
        text = (f"Share of the Grad-CAM energy that falls inside the object's ground-truth mask, over "
                f"{manifest.get('eval_images', '?')} test pictures: {listing}"
                + (f"; a map that ignores the object scores the object's area, {fmt(area)}" if is_number(area) else "")
                + f". {high} looks at the object most, {low} least")
        if is_number(area):
            below = [name for name, v in energy.items() if v <= area + NOISE]
            if below:
                text += (f"; {', '.join(below)} {'do' if len(below) > 1 else 'does'} no better than a map that "
                         f"ignores the object")
        ref = [figure_ref(run, manifest)]
        found.append({"title": "Models differ in where they look", "text": text + ".", "refs": ref})
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
                             f"{fmt(energy[name])} against {fmt(energy[best_plain])} for the best model trained "
                             f"without it ({best_plain}): a change of {delta:+.2f}, so augmentation {verdict}."),
                    "refs": ref})
    return found


def layers_finding(runs: list[RunInfo]) -> list[Finding]:
    """Grad-CAM energy inside the object and coverage from the first stage to the last."""
    found = []
    for run, manifest in manifests_of(runs, "layers"):
        per_layer = manifest.get("numbers", {}).get("per_layer", {})
        names = list(per_layer)
        if len(names) < 2:
            continue
        first, last = per_layer[names[0]], per_layer[names[-1]]
        parts = []
        energy = [per_layer[n].get("energy_in_mask") for n in names]
        if all(is_number(e) for e in energy):
            listing = ", ".join(f"{n} {fmt(e)}" for n, e in zip(names, energy))
            change = trend(energy)
            parts.append(f"the share of the Grad-CAM energy inside the object is {listing}: it {change} from the first "
                         f"stage to the last ({fmt(energy[0])} to {fmt(energy[-1])})")
        if is_number(first.get("coverage")) and is_number(last.get("coverage")):
            wider = last["coverage"] > first["coverage"] + NOISE
            narrower = last["coverage"] < first["coverage"] - NOISE
            parts.append(f"the share of the picture where the map is above half its maximum goes from "
                         f"{fmt(first['coverage'])} to {fmt(last['coverage'])} "
                         f"({'wider' if wider else 'narrower' if narrower else 'about the same'} at the last stage)")
        if parts:
            found.append({"title": f"Grad-CAM across the layers of {run.name}",
                          "text": (f"On {len(manifest.get('images', []) or []) or '?'} test pictures of {run.name} "
                                   f"({run.model}), " + "; ".join(parts) + "."),
                          "refs": [figure_ref(run, manifest), table_ref(run, "layers")]})
    return found


def epochs_finding(runs: list[RunInfo]) -> list[Finding]:
    """Attention during training: the energy inside the masks, or without masks the map's coverage."""
    found = []
    for run, manifest in manifests_of(runs, "epochs"):
        rows = [r for r in manifest.get("numbers", {}).get("per_epoch", []) if is_number(r.get("gradcam_energy_in_mask"))]
        if len(rows) < 2:
            found.extend(_epochs_coverage_finding(run, manifest))
            continue
        first, last = rows[0], rows[-1]
        peak = max(rows, key=lambda r: r["gradcam_energy_in_mask"])
        energy = [r["gradcam_energy_in_mask"] for r in rows]
        text = (f"During the training of {run.name}, the Grad-CAM energy inside the object {trend(energy)} from "
                f"{fmt(first['gradcam_energy_in_mask'])} at epoch {first['epoch']} to "
                f"{fmt(last['gradcam_energy_in_mask'])} at epoch {last['epoch']} (highest {fmt(peak['gradcam_energy_in_mask'])}"
                f" at epoch {peak['epoch']}), while the accuracy on the {manifest.get('eval_images', '?')} explained "
                f"test pictures goes from {fmt(first.get('accuracy'))} to {fmt(last.get('accuracy'))}.")
        curve = next((f for f in manifest.get("figures", []) if "curve" in str(f.get("file", ""))), None)
        found.append({"title": "Attention during training", "text": text,
                      "refs": [figure_ref(run, manifest, curve.get("file") if curve else None)]})
    return found


def _epochs_coverage_finding(run: RunInfo, manifest: dict) -> list[Finding]:
    """Data without masks: only what was measured, the share of each map above half its maximum."""
    rows = [r for r in manifest.get("numbers", {}).get("per_epoch", []) if is_number(r.get("gradcam_coverage"))]
    if len(rows) < 2:
        return []
    first, last = rows[0], rows[-1]
    spread = [r["gradcam_coverage"] for r in rows]
    text = (f"During the training of {run.name}, the Grad-CAM coverage (the share of the map above half its maximum; "
            f"the data has no masks, so where the maps lie is not measured) {trend(spread)} from "
            f"{fmt(first['gradcam_coverage'])} at epoch {first['epoch']} to {fmt(last['gradcam_coverage'])} at epoch "
            f"{last['epoch']}, while the accuracy on the {manifest.get('eval_images', '?')} explained test pictures "
            f"goes from {fmt(first.get('accuracy'))} to {fmt(last.get('accuracy'))}.")
    curve = next((f for f in manifest.get("figures", []) if "curve" in str(f.get("file", ""))), None)
    return [{"title": "Attention during training", "text": text,
             "refs": [figure_ref(run, manifest, curve.get("file") if curve else None)]}]


def background_clustering(runs: list[RunInfo]) -> list[Finding]:
    """kNN accuracy of class and background colour in each model's feature space."""
    found = []
    for run, manifest in manifests_of(runs, "embed"):
        knn = manifest.get("numbers", {}).get("knn", {})
        if not isinstance(knn, dict) or "class" not in knn:
            continue
        main = [key for key in ("class", "background") if key in knn]
        parts = [f"{key} {fmt(knn[key])}" + (f" (chance {fmt(knn[f'{key} (chance)'])})" if f"{key} (chance)" in knn else "")
                 for key in main]
        text = (f"kNN accuracy (k={manifest.get('numbers', {}).get('k', 5)}) of test pictures in the feature space of "
                f"layer {manifest.get('layer', '?')} of {run.name} ({run.model}): " + ", ".join(parts) + ".")
        if is_number(knn.get("background")) and is_number(knn.get("class")):
            text += (" The features sort pictures by background colour more than by class." if knn["background"] > knn["class"]
                     else " The features sort pictures by class more than by background colour.")
        found.append({"title": f"What {run.name}'s features cluster by", "text": text,
                      "refs": [figure_ref(run, manifest)]})
    return found


def sparsity_finding(runs: list[RunInfo]) -> list[Finding]:
    found = []
    for run, manifest in manifests_of(runs, "activations"):
        per_layer = manifest.get("numbers", {}).get("per_layer", {})
        shares = {n: v.get("blank_share") for n, v in per_layer.items() if is_number(v.get("blank_share"))}
        if len(shares) < 2:
            continue
        values = list(shares.values())
        strictly = all(b > a for a, b in zip(values, values[1:]))
        verdict = ("grows with every layer" if strictly else
                   "grows from the first layer to the last, but not at every layer" if values[-1] > values[0] else
                   "does not grow with depth here")
        listing = ", ".join(f"{n} {pct(v)}" for n, v in shares.items())
        found.append({"title": "Sparsity with depth",
                      "text": (f"Share of blank channels (zero everywhere after the ReLU) for one test picture in "
                               f"{run.name}: {listing}. Sparsity {verdict}."),
                      "refs": [figure_ref(run, manifest, (manifest.get("figures") or [{}])[-1].get("file")),
                               table_ref(run, "activations")]})
    return found


def class_units_finding(runs: list[RunInfo]) -> list[Finding]:
    found = []
    for run, manifest in manifests_of(runs, "featureviz"):
        numbers = manifest.get("numbers", {})
        if not is_number(numbers.get("recognised")) or not is_number(numbers.get("classes")):
            continue
        k, n = int(numbers["recognised"]), int(numbers["classes"])
        confidence = numbers.get("confidence") or []
        text = (f"{run.model} ({run.name}, test accuracy {fmt(run.last('test_acc'))}) reads {k} of its {n} class "
                f"visualisations as the class they were made for"
                + (f", with a mean softmax confidence of {fmt(sum(confidence) / len(confidence))}" if confidence else "")
                + (": the pictures carry what the model takes to be each class." if k == n else
                   f"; {n - k} {'look' if n - k > 1 else 'looks'} like another class to it."))
        found.append({"title": "Class visualisations the classifier recognises", "text": text,
                      "refs": [figure_ref(run, manifest)]})
    return found


def receptive_fields_finding(runs: list[RunInfo]) -> list[Finding]:
    found = []
    for run, manifest in manifests_of(runs, "layer_channels"):
        per_layer = manifest.get("numbers", {}).get("per_layer", {})
        fields = {n: v.get("receptive_field") for n, v in per_layer.items() if is_number(v.get("receptive_field"))}
        if len(fields) < 2:
            continue
        values = list(fields.values())
        grows = all(b >= a for a, b in zip(values, values[1:])) and values[-1] > values[0]
        listing = ", ".join(f"{n} {v} px" for n, v in fields.items())
        found.append({"title": "From edges to parts",
                      "text": (f"The receptive field of a centre unit of each conv layer of {run.name}: {listing}"
                               + (f" (the picture is {manifest['numbers'].get('size')} px)" if manifest["numbers"].get("size") else "")
                               + (". It grows with depth, so the first layer's pictures can only hold an edge or a dot "
                                  "and the last layer's a part of a digit or the whole of one." if grows else
                                  ". It does not grow with depth here.")),
                      "refs": [figure_ref(run, manifest)]})
    return found


def faithfulness_finding(runs: list[RunInfo]) -> list[Finding]:
    found = []
    for run, manifest in manifests_of(runs, "faithfulness"):
        rows = manifest.get("numbers", {}).get("rows", {})
        if not isinstance(rows, dict) or len(rows) < 2:
            continue
        baselines = {m: r for m, r in rows.items() if m in BASELINES}
        rows = {m: r for m, r in rows.items() if m not in BASELINES}
        parts = []
        for key, title, better in (("pointing", "pointing game", max), ("energy_pointing", "energy pointing game", max),
                                   ("deletion_auc", "deletion AUC", min), ("insertion_auc", "insertion AUC", max)):
            values = {m: r.get(key) for m, r in rows.items() if is_number(r.get(key))}
            if len(values) >= 2:
                best = better(values, key=values.get)
                ties = [m for m, v in values.items() if m != best and fmt(v) == fmt(values[best])]
                base = ", ".join(f"the {m} baseline {fmt(r.get(key))}" for m, r in baselines.items()
                                 if is_number(r.get(key)))
                parts.append(f"{title}: {best}" + (f" (tied with {', '.join(ties)})" if ties else "")
                             + f" {fmt(values[best])} (" + ", ".join(
                                 f"{m} {fmt(v)}" for m, v in values.items() if m != best and m not in ties)
                             + (f"; {base}" if base else "") + ")")
        spearman = {m: r.get("randomization_spearman") for m, r in rows.items() if is_number(r.get("randomization_spearman"))}
        text = f"Best method per measure on {run.name} ({run.model}): " + "; ".join(parts) + "." if parts else ""
        if spearman:
            fail = [m for m, v in spearman.items() if v > SANITY]
            text += (f" After randomizing every weight, the maps' rank correlation with the trained model's is "
                     + ", ".join(f"{m} {fmt(v)}" for m, v in spearman.items()) + "; "
                     + (f"{', '.join(fail)} {'stay' if len(fail) > 1 else 'stays'} above {SANITY}, so "
                        f"{'they depend' if len(fail) > 1 else 'it depends'} little on what the model learned "
                        f"(the sanity check fails)." if fail else
                        f"every method falls to {SANITY} or below, so all depend on the learned weights."))
        if text:
            found.append({"title": "Which explanation to trust", "text": text.strip(),
                          "refs": [table_ref(run, "faithfulness")]})
    return found


CLASSIFICATION: list[Callable[[list[RunInfo]], list[Finding]]] = [
    shortcut_gap, where_models_look, layers_finding, epochs_finding, background_clustering, sparsity_finding,
    class_units_finding, receptive_fields_finding, faithfulness_finding,
]
