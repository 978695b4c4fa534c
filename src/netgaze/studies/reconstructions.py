"""The reconstruction family side by side: a denoising VAE's noisy input and output, prior samples of several models.

``denoising(run)`` corrupts test pictures the way a denoising VAE was trained to undo
(its own ``noise`` and ``erase``, a fixed seed), reconstructs them and measures the pixel
error before and after. ``prior_samples([vae, vaegan])`` decodes the same draws from
N(0, I) with each model, one row per model. Both write PNGs and a manifest into the
(first) run's ``artifacts/`` like every latent study; an optional ``classifier`` (for
digits, any classifier of the same pictures) says which class each picture looks like.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from netgaze import viz
from netgaze.lab.models.vae_loss import corrupt
from netgaze.studies.latent_common import VAERun, tile_scale, tiles
from netgaze.studies.across_layers import StudyResult


@torch.no_grad()
def judge(classifier: nn.Module, pictures: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """A classifier's predicted class [N] and its softmax confidence [N] for pictures [N, C, H, W]."""
    was_training = classifier.training
    classifier.eval()
    try:
        probs = torch.cat([classifier(pictures[i:i + batch]).softmax(1) for i in range(0, len(pictures), batch)])
    finally:
        classifier.train(was_training)
    confidence, predicted = probs.max(1)
    return predicted, confidence


def denoising(run: Any, *, dataset: Any = None, n: int = 10, noise: float | None = None,
              erase: float | None = None, seed: int = 0) -> StudyResult:
    """Corrupt test pictures, reconstruct them; rows: clean, corrupted, reconstruction.

    Args:
        run: a VAE run (usually a denoising VAE, ``model="dvae"``).
        dataset: test pictures (default: the run's test split).
        n: pictures in the figure; the numbers use every test picture.
        noise, erase: corruption (default: the model's own training corruption).
        seed: seed of the corruption.

    Returns:
        ``maps["clean"]``, ``maps["noisy"]``, ``maps["reconstruction"]`` [N, C, H, W] over all test
        pictures; the manifest's numbers hold the mean squared pixel error of the corrupted
        input and of the reconstruction against the clean picture.
    """
    vr = VAERun(run, dataset)
    noise = float(vr.model.noise if noise is None else noise)
    erase = float(vr.model.erase if erase is None else erase)
    if noise <= 0 and erase <= 0:
        raise ValueError("denoising needs a corruption: noise > 0 or erase > 0 (the run's model has neither)")
    generator = torch.Generator().manual_seed(seed)
    noisy = corrupt(vr.images, noise, erase, generator=generator)
    rebuilt = torch.cat([vr.reconstruct(noisy[i:i + 256], vr.labels[i:i + 256]) for i in range(0, len(noisy), 256)])
    error_noisy = (noisy - vr.images).pow(2).flatten(1).mean(1)
    error_rebuilt = (rebuilt - vr.images).pow(2).flatten(1).mean(1)
    clean_rebuilt = torch.cat([vr.reconstruct(vr.images[i:i + 256], vr.labels[i:i + 256])
                               for i in range(0, len(noisy), 256)])
    error_clean = (clean_rebuilt - vr.images).pow(2).flatten(1).mean(1)
    k = min(n, len(vr.images))
    rows = torch.cat([vr.images[:k], noisy[:k], rebuilt[:k]])
    picture = viz.grid(tiles(rows), ncols=k, scale=tile_scale(vr.images),
                       row_labels=["clean", "corrupted", "rebuilt"])
    caption = (f"top: test pictures; middle: corrupted (Gaussian noise sd {noise:g}, a rectangle erased with "
               f"probability {erase:g}); bottom: the reconstruction of the corrupted picture. Mean squared pixel "
               f"error against the clean picture over {len(vr.images)} test pictures: {float(error_noisy.mean()):.4f} "
               f"corrupted, {float(error_rebuilt.mean()):.4f} rebuilt")
    numbers = {"n": len(vr.images), "noise": noise, "erase": erase, "seed": seed,
               "mse_corrupted": float(error_noisy.mean()), "mse_rebuilt": float(error_rebuilt.mean()),
               "mse_rebuilt_from_clean": float(error_clean.mean()),
               "share_improved": float((error_rebuilt < error_noisy).float().mean())}
    table = {"title": f"Mean squared pixel error against the clean picture ({len(vr.images)} test pictures)",
             "columns": ["picture", "MSE"],
             "rows": [["corrupted input", numbers["mse_corrupted"]], ["rebuilt from the corrupted input",
                                                                      numbers["mse_rebuilt"]],
                      ["rebuilt from the clean input", numbers["mse_rebuilt_from_clean"]]]}
    return vr.save("denoising", "Denoising VAE: corrupted input and reconstruction", [("denoising", picture, caption)],
                   numbers, {"clean": vr.images, "noisy": noisy, "reconstruction": rebuilt}, "vae(corrupt(x))",
                   tables=[table])


def prior_samples(runs: Sequence[Any], *, names: Sequence[str] | None = None, n: int = 12, seed: int = 0,
                  classifier: nn.Module | None = None, judge_n: int = 256) -> StudyResult:
    """Decode the same draws z ~ N(0, I) with each model, one row per model.

    Models with the same latent size decode the very same codes. A conditional VAE
    decodes draw ``i`` with label ``i mod K`` (and its row says so).

    Args:
        runs: VAE runs (VAE, VAE-GAN, conditional or denoising); the files go to the first.
        names: row labels (default: the run folders' names).
        n: samples per model in the figure.
        seed: seed of the draws.
        classifier: a classifier of the same pictures; when given, ``judge_n`` samples per
            model are classified and the numbers say how many classes appear and how
            confident it is (a poor man's Inception Score).
        judge_n: samples per model for the classifier's numbers.

    Returns:
        ``maps[name]`` [n, C, H, W] per model.
    """
    if not runs:
        raise ValueError("prior_samples needs at least one run")
    opened = [VAERun(r, dataset=None) for r in runs]
    names = list(names) if names is not None else [vr.run.path.name for vr in opened]
    if len(names) != len(opened):
        raise ValueError(f"{len(names)} names for {len(opened)} runs")
    rows, maps, numbers = [], {}, {"n": n, "seed": seed, "per_model": {}}
    for name, vr in zip(names, opened):
        count = max(n, judge_n if classifier is not None else 0)
        z = torch.randn(count, vr.model.latent, generator=torch.Generator().manual_seed(seed))
        labels = torch.arange(count) % vr.model.num_classes if vr.model.conditional else None
        pictures = vr.decode(z, labels)
        maps[name] = pictures[:n]
        rows.append(pictures[:n])
        entry: dict[str, Any] = {"model": vr.run.config.get("model"), "latent": vr.model.latent,
                                 "test_pixel_mse": _last(vr.run, "test_pixel_mse")}
        if classifier is not None:
            predicted, confidence = judge(classifier, pictures[:judge_n])
            counts = torch.bincount(predicted, minlength=len(vr.classes)).tolist()
            entry.update({"judged": int(len(predicted)), "mean_confidence": float(confidence.mean()),
                          "classes_seen": int(sum(c > 0 for c in counts)),
                          "classes_with_2pct": int(sum(c >= 0.02 * len(predicted) for c in counts)),
                          "predicted_counts": counts})
            if labels is not None:
                entry["judged_as_label"] = float((predicted == labels[:judge_n]).float().mean())
        numbers["per_model"][name] = entry
    scale = tile_scale(opened[0].images)
    picture = viz.grid(tiles(torch.cat(rows)), ncols=n, row_labels=names, scale=scale)
    caption = (f"each row decodes the same {n} draws z ~ N(0, I) (seed {seed}) with one model"
               + ("; a conditional model decodes draw i with label i mod its number of classes"
                  if any(vr.model.conditional for vr in opened) else ""))
    columns = ["model", "test pixel MSE"] + (["classes (≥ 2%)", "mean confidence"] if classifier is not None else [])
    rows = [[name, e["test_pixel_mse"]] + ([e["classes_with_2pct"], e["mean_confidence"]] if classifier is not None else [])
            for name, e in numbers["per_model"].items()]
    title = "Samples per model" + (f", judged by a classifier on {judge_n} samples each" if classifier is not None else "")
    return opened[0].save("prior_samples", "Samples from the prior", [("prior_samples", picture, caption)],
                          numbers, maps, "decode(z), z ~ N(0, I)", tables=[{"title": title, "columns": columns,
                                                                            "rows": rows}])


def _last(run: Any, key: str) -> Any:
    for row in reversed(list(getattr(run, "history", []) or [])):
        if row.get(key) is not None:
            return row[key]
    return None


__all__ = ["denoising", "prior_samples", "judge"]
