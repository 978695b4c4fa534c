"""Findings of the reconstruction and segmentation chapters, composed from their numbers like
``netgaze.report.finding_text`` (the shared helpers)."""
from __future__ import annotations

from typing import Callable

from netgaze.report.finding_text import NOISE, Finding, fmt, is_number, pct, figure_ref, manifests_of
from netgaze.report.runinfo import RunInfo


def latent_directions_finding(runs: list[RunInfo]) -> list[Finding]:
    found = []
    for run, manifest in manifests_of(runs, "principal_traversal"):
        n = manifest.get("numbers", {})
        explained, change, unit = n.get("explained") or [], n.get("change_per_direction") or [], n.get("change_per_unit") or []
        if len(explained) < 2 or not change or not unit:
            continue
        k = int(n.get("directions", len(change)))
        even = 1 / len(explained)
        spread = ("far more than" if explained[0] > 2 * even else "more than" if explained[0] > even + NOISE
                  else "about as much as")
        text = (f"Over the {n.get('n')} test codes of {run.name} ({n.get('latent')} latent units, "
                f"{n.get('active_units')} active: code variance over 0.01), the first principal direction explains "
                f"{pct(explained[0])} of the variance, {spread} one unit's share if all were equal ({pct(even)}); "
                f"the first two explain {pct(explained[0] + explained[1])}, the first "
                f"{k} {pct(sum(explained[:k]))}. Moving ±{n.get('span_sd')} standard deviations along the first "
                f"direction changes a pixel by {fmt(change[0])} on average, along the most telling single unit by "
                f"{fmt(max(unit))}" + (" — a traversal along principal directions shows more than one along units."
                                        if change[0] > max(unit) + NOISE else "."))
        found.append({"title": "Directions that matter in the latent space", "text": text,
                      "refs": [figure_ref(run, manifest), figure_ref(run, manifest, "principal_grid.png")]})
    return found


def reconstruction_family_finding(runs: list[RunInfo]) -> list[Finding]:
    found = []
    for run, manifest in manifests_of(runs, "style_mixing"):
        n = manifest.get("numbers", {})
        if is_number(n.get("judged_as_label")):
            share = n["judged_as_label"]
            found.append({"title": "Style and class come apart in the conditional VAE",
                          "text": (f"Decoding each of {n.get('n')} test pictures' codes with every one of the "
                                   f"{n.get('classes')} labels, {run.name} draws pictures that the digits classifier "
                                   f"reads as the requested label {pct(share)} of the time: "
                                   + ("the label, not the code, decides the class, and the code keeps the style."
                                      if share >= 0.8 else "the code still carries part of the class.")),
                          "refs": [figure_ref(run, manifest)]})
    for run, manifest in manifests_of(runs, "denoising"):
        n = manifest.get("numbers", {})
        if is_number(n.get("mse_corrupted")) and is_number(n.get("mse_rebuilt")):
            better = n["mse_rebuilt"] < n["mse_corrupted"]
            found.append({"title": "The denoising VAE removes the corruption",
                          "text": (f"On {n.get('n')} corrupted test pictures, {run.name}'s reconstruction is "
                                   f"{'closer to' if better else 'further from'} the clean picture than its input: mean "
                                   f"squared pixel error {n['mse_corrupted']:.4f} corrupted, {n['mse_rebuilt']:.4f} "
                                   f"rebuilt ({pct(n.get('share_improved', 0))} of the pictures improve; "
                                   f"{n.get('mse_rebuilt_from_clean', float('nan')):.4f} when it rebuilds the clean "
                                   f"picture)."), "refs": [figure_ref(run, manifest)]})
    for run, manifest in manifests_of(runs, "prior_samples"):
        per_model = manifest.get("numbers", {}).get("per_model", {})
        judged = {m: v for m, v in per_model.items() if is_number(v.get("mean_confidence"))}
        if not judged:
            continue
        listing = "; ".join(f"{m}: {v.get('classes_with_2pct')} of 10 classes among {v.get('judged')} samples, mean "
                            f"confidence {fmt(v['mean_confidence'])}" for m, v in judged.items())
        best = max(judged, key=lambda m: judged[m]["mean_confidence"])
        runner_up = max((v["mean_confidence"] for m, v in judged.items() if m != best), default=None)
        verdict = ("" if runner_up is None else
                   f"{best}'s samples look most like digits to it." if judged[best]["mean_confidence"] > runner_up + NOISE
                   else "The models' samples look about equally like digits to it.")
        found.append({"title": "Samples from the prior",
                      "text": (f"The digits classifier on samples z ~ N(0, I) of each model: {listing}. " + verdict).strip(),
                      "refs": [figure_ref(run, manifest)]})
    return found


def area_finding(runs: list[RunInfo]) -> list[Finding]:
    found = []
    for run, manifest in manifests_of(runs, "area"):
        n = manifest.get("numbers", {})
        inside, area = n.get("guided_mass_inside_box"), n.get("box_area_share")
        if not (is_number(inside) and is_number(area)):
            continue
        near = n.get("guided_mass_inside_box_margin")
        text = (f"Area guided backprop of a box of {run.name}'s reconstruction puts {pct(inside)} of its mass inside "
                f"the box, which covers {pct(area)} of the picture"
                + (f", and {pct(near)} within {n.get('margin')} px of it" if is_number(near) else "")
                + (": the explanation gathers on the box more than a map spread evenly over the picture would."
                   if inside > area + NOISE else
                   ": no more than a map spread evenly over the picture, so the decoder draws on the whole picture "
                   "to rebuild the box."))
        found.append({"title": "Which input pixels a reconstructed area needs", "text": text,
                      "refs": [figure_ref(run, manifest)]})
    for run, manifest in manifests_of(runs, "area_segments"):
        n = manifest.get("numbers", {})
        inside, area = n.get("guided_mass_inside_box"), n.get("box_area_share")
        if not (is_number(inside) and is_number(area)):
            continue
        found.append({"title": "Where a segment's class comes from",
                      "text": (f"For the class channel of {run.name}'s output summed over the object, area guided "
                               f"backprop puts {pct(inside)} of its mass inside the object's box, which covers "
                               f"{pct(area)} of the picture on average over {n.get('n', '?')} test pictures: "
                               + ("the segment is explained mostly by the pixels of the object itself."
                                  if inside > 0.5 else
                                  "more than in a map spread evenly, but most of it lies outside the box."
                                  if inside > area + NOISE else
                                  "no more than in a map spread evenly over the picture.")),
                      "refs": [figure_ref(run, manifest)]})
    return found


DENSE: list[Callable[[list[RunInfo]], list[Finding]]] = [latent_directions_finding, reconstruction_family_finding,
                                                         area_finding]
