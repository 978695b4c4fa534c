"""Faithfulness quality bar on the embedded shapes set.

Trains (or reuses) a simple CNN on ``shapes`` and measures, on held-out pictures:
Grad-CAM on the last conv stage in the pointing game (masks and boxes) against the
centre baseline, the cascading randomization curve of Grad-CAM, and the method x metric
table for every method of ``netgaze.methods.METHODS``.

Run: ``.venv/bin/python benchmarks/quality_faithfulness.py [--epochs 10] [--images 256]``.
Prints the numbers and writes ``benchmarks/results/faithfulness.json`` and
``benchmarks/results/faithfulness.md``; the run folder is ``runs/quality-faithfulness``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import netgaze as ng
from netgaze.metrics import (centre_baseline, energy_pointing_game, method_table, model_randomization,
                             pointing_game)
from netgaze.metrics.table import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
LAYER = "features.relu4"  # the last conv stage (conv4 + ReLU), 8x8 on 64x64 pictures


def trained_model(epochs: int, out: Path):
    from netgaze.lab.train import train_classifier

    return train_classifier(data="shapes", model="simple-cnn", epochs=epochs, out=str(out), seed=0, device="cpu",
                            resume=out.exists(), data_options={"size": 64},
                            model_options={"channels": [16, 32, 64, 64]}, progress=False)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--images", type=int, default=256, help="held-out pictures scored by the pointing games")
    parser.add_argument("--table-images", type=int, default=64, help="pictures in the method x metric table")
    parser.add_argument("--randomization-images", type=int, default=32)
    parser.add_argument("--run", default=str(ROOT / "runs" / "quality-faithfulness"))
    args = parser.parse_args()
    torch.manual_seed(0)
    began = time.perf_counter()
    from netgaze.lab.data import shapes

    run = trained_model(args.epochs, Path(args.run))
    model = run.model.eval()
    test = shapes("test", size=64)
    images, labels = test.tensors()
    x = images[:args.images]
    masks, boxes = test.masks[:args.images], test.boxes[:args.images]
    with torch.no_grad():
        accuracy = float((torch.cat([model(c) for c in images.split(256)]).argmax(1) == labels).float().mean())

    cams = ng.gradcam(model, x, LAYER)
    centre = centre_baseline(len(x), x.shape[-2:])
    pointing = {
        "gradcam_mask": pointing_game(cams, masks),
        "gradcam_box": pointing_game(cams, boxes),
        "gradcam_mask_tolerance_4px": pointing_game(cams, masks, tolerance=4),
        "centre_mask": pointing_game(centre, masks),
        "centre_box": pointing_game(centre, boxes),
        "centre_mask_tolerance_4px": pointing_game(centre, masks, tolerance=4),
        "gradcam_energy_mask": energy_pointing_game(cams, masks),
        "gradcam_energy_box": energy_pointing_game(cams, boxes),
        "centre_energy_mask": energy_pointing_game(centre, masks),
        "mask_area_share": float(masks.float().mean()),
    }
    k = args.randomization_images
    rand = model_randomization(model, x[:k], "gradcam", LAYER, with_ssim=True)
    table = method_table(model, x[:args.table_images], masks[:args.table_images], layer=LAYER, steps=20,
                         baseline="blur", randomization_images=k)
    table.save(RESULTS, "faithfulness_table")
    result = {
        "data": "shapes test split, 64x64, 5 classes, clutter 0.5",
        "model": "simple-cnn 16-32-64-64 trained here (netgaze.lab.train.train_classifier, seed 0)",
        "epochs": len(run.history),
        "test_accuracy": accuracy,
        "images": len(x),
        "layer": LAYER,
        "pointing": pointing,
        "randomization_gradcam": {"layers": rand.layers, "spearman": rand.spearman.tolist(),
                                  "ssim": rand.ssim.tolist(), "images": k},
        "table": table.to_dict(),
        "bars": {
            "accuracy_ge_0.90": accuracy >= 0.90,
            "gradcam_pointing_ge_0.80": pointing["gradcam_mask"] >= 0.80,
            "gradcam_above_centre": pointing["gradcam_mask"] > pointing["centre_mask"] + 0.2,
            "randomization_falls": bool(rand.spearman[-1] < rand.spearman[0] - 0.2 and rand.spearman[-1] < 0.5),
        },
        "seconds": round(time.perf_counter() - began, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "faithfulness.json", json.dumps(result, indent=2) + "\n")
    markdown = render_markdown(result, table.to_markdown())
    atomic_write_text(RESULTS / "faithfulness.md", markdown)
    print(markdown)
    return result


def render_markdown(result: dict, table_md: str) -> str:
    p = result["pointing"]
    rows = "\n".join(f"| {i + 1} | {name} | {rho:.3f} | {s:.3f} |" for i, (name, rho, s) in enumerate(zip(
        result["randomization_gradcam"]["layers"], result["randomization_gradcam"]["spearman"],
        result["randomization_gradcam"]["ssim"])))
    return (f"## Faithfulness on shapes ({result['images']} test pictures)\n\n"
            f"Model: {result['model']}, {result['epochs']} epochs, test accuracy {result['test_accuracy']:.3f}.\n\n"
            f"| pointing game | Grad-CAM ({result['layer']}) | centre baseline |\n|---|---|---|\n"
            f"| mask | {p['gradcam_mask']:.3f} | {p['centre_mask']:.3f} |\n"
            f"| mask, 4 px tolerance | {p['gradcam_mask_tolerance_4px']:.3f} | {p['centre_mask_tolerance_4px']:.3f} |\n"
            f"| box | {p['gradcam_box']:.3f} | {p['centre_box']:.3f} |\n"
            f"| energy (mask) | {p['gradcam_energy_mask']:.3f} | {p['centre_energy_mask']:.3f} |\n\n"
            f"Object area share (a flat map's energy score): {p['mask_area_share']:.3f}.\n\n"
            f"### Cascading randomization, Grad-CAM ({result['randomization_gradcam']['images']} pictures)\n\n"
            f"| step | layers randomized down to | Spearman | SSIM |\n|---|---|---|---|\n{rows}\n\n"
            f"### Method x metric ({result['table']['settings']['images']} pictures, deletion/insertion "
            f"{result['table']['settings']['steps']} steps, blur baseline)\n\n{table_md}\n"
            f"Bars: {json.dumps(result['bars'])}\n")


if __name__ == "__main__":
    main()
