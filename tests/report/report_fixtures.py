"""Run folders written by hand for the report tests (no training): config, history, manifests, PNGs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from netgaze import viz

EVIL = "<script>alert(1)</script>"


def _png(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    images = torch.rand(2, 3, 16, 16)
    return viz.save_png(viz.grid(list(viz.overlay(images, torch.rand(2, 16, 16))), ncols=2, scale=4), path)


def write_classify_run(root: Path, name: str = "cnn") -> Path:
    run = root / name
    (run / "artifacts").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    for epoch in (1, 2, 3):
        (run / "checkpoints" / f"epoch-{epoch:04d}.safetensors").write_bytes(b"")
    (run / "run.json").write_text(json.dumps({"task": "classify", "data": "shapes", "model": "simple-cnn",
                                              "augment": "none", "classes": ["circle", EVIL]}))
    (run / "history.jsonl").write_text("\n".join(json.dumps(
        {"epoch": e, "train_acc": 0.5 + 0.1 * e, "test_acc": 0.4 + 0.1 * e, "train_loss": 1.0 / e, "test_loss": 1.2 / e})
        for e in (1, 2, 3)) + "\n")
    _png(run / "artifacts" / "models.png", 0)
    manifest = {
        "study": "models", "title": "Grad-CAM for different models", "run": name, "model": "simple-cnn",
        "dataset": "shapes", "epoch": 3, "method": "gradcam + guided_backprop", "eval_images": 64,
        "models": {"plain": {"augment": "none"}, "robust": {"augment": "robust"}},
        "figures": [{"file": "models.png", "caption": f"Models on class {EVIL} <img src=x onerror=alert(2)>"}],
        "numbers": {"per_model": {"plain": {"gradcam_energy_in_mask": 0.25, "mask_area": 0.1},
                                  "robust": {"gradcam_energy_in_mask": 0.75, "mask_area": 0.1}}},
        "tables": [{"title": "Where each model looks", "columns": ["model", "energy"],
                    "rows": [["plain", 0.25], [EVIL, 0.75]]}],
    }
    (run / "artifacts" / "models.json").write_text(json.dumps(manifest))
    embed = {"study": "embed", "run": name, "model": "simple-cnn", "layer": "features.conv4", "figures": [],
             "numbers": {"k": 5, "knn": {"class": 0.41, "background": 0.93}}}
    (run / "artifacts" / "embed.json").write_text(json.dumps(embed))
    skipped = {"study": "featureviz", "skipped": "netgaze.featureviz has not landed"}
    (run / "artifacts" / "featureviz.json").write_text(json.dumps(skipped))
    _png(run / "artifacts" / "extra" / "loose.png", 1)
    return run


def write_reconstruct_run(root: Path, name: str = "vae") -> Path:
    run = root / name
    (run / "artifacts").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task": "reconstruct", "data": "digits", "model": "vae-linear"}))
    (run / "history.jsonl").write_text("\n".join(json.dumps({"epoch": e, "train_loss": 150 / e, "test_loss": 160 / e})
                                                 for e in (1, 2)) + "\n{broken line\n")
    _png(run / "artifacts" / "traversal.png", 2)
    (run / "artifacts" / "latent.json").write_text(json.dumps(
        {"study": "latent", "model": "vae-linear", "dataset": "digits", "epoch": 2,
         "figures": [{"file": "traversal.png"}], "tables": []}))
    return run
