"""Deletion / insertion speed: batched across steps and images vs per-image loops, side by side.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--images 256] [--steps 20]``.
Prints a table and writes ``benchmarks/results/metrics.json``. The three ways compute the
same numbers (checked): the batched library call, a per-image loop that batches each
image's steps, and the RISE-style loop with one forward pass per image per step.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn as nn

from netgaze.metrics import deletion_curve, insertion_curve, make_baseline
from netgaze.metrics.deletion import step_counts

RESULTS = Path(__file__).resolve().parent / "results"


def bench_model(num_classes: int = 5) -> nn.Module:
    """The quality run's simple CNN (16-32-64-64 channels), random weights: speed does not depend on training."""
    torch.manual_seed(0)
    try:
        from netgaze.lab.models import build_model
        return build_model("simple-cnn", num_classes=num_classes, in_channels=3, mean=[0.5] * 3, std=[0.25] * 3,
                           channels=(16, 32, 64, 64)).eval()
    except ImportError:  # the lab is optional for this benchmark
        chans = [3, 16, 32, 64, 64]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1), nn.ReLU()] + ([nn.MaxPool2d(2)] if i < 3 else [])
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)).eval()


def batched(model, x, maps, steps):
    d = deletion_curve(model, x, maps, steps=steps, baseline="blur", batch_size=256)
    i = insertion_curve(model, x, maps, steps=steps, baseline="blur", batch_size=256)
    return d.scores, i.scores


def per_image_batched_steps(model, x, maps, steps):
    dels, ins = [], []
    for k in range(x.shape[0]):
        dels.append(deletion_curve(model, x[k:k + 1], maps[k:k + 1], steps=steps, baseline="blur").scores)
        ins.append(insertion_curve(model, x[k:k + 1], maps[k:k + 1], steps=steps, baseline="blur").scores)
    return torch.cat(dels), torch.cat(ins)


@torch.no_grad()
def per_image_per_step(model, x, maps, steps):
    """RISE's reference loop: one image, one step, one forward pass at a time."""
    n, _, h, w = x.shape
    base = make_baseline(x, "blur")
    classes = model(x).argmax(1)
    counts = step_counts(h * w, steps).tolist()
    out = {"deletion": torch.empty(n, steps + 1), "insertion": torch.empty(n, steps + 1)}
    for i in range(n):
        order = torch.argsort(maps[i].flatten(), descending=True, stable=True)
        for mode, start, end in (("deletion", x[i], base[i]), ("insertion", base[i], x[i])):
            img = start.clone().view(x.shape[1], -1)
            end_flat = end.reshape(x.shape[1], -1)
            for k, c in enumerate(counts):
                img[:, order[:c]] = end_flat[:, order[:c]]
                prob = model(img.view(1, *x.shape[1:])).softmax(1)[0, classes[i]]
                out[mode][i, k] = prob
    return out["deletion"], out["insertion"]


def timed(fn, *args):
    began = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - began, result


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--loop-images", type=int, default=256,
                        help="images the slow loops run on (scaled to --images); lower it on a busy machine")
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.images, 3, args.size, args.size, generator=g)
    maps = torch.rand(args.images, args.size, args.size, generator=g)
    model = bench_model()
    k = min(args.loop_images, args.images)
    scale = args.images / k
    load_before = os.getloadavg()
    t_batched, (d0, i0) = timed(batched, model, x, maps, args.steps)
    t_batched_sub, _ = timed(batched, model, x[:k], maps[:k], args.steps)
    t_image, (d1, i1) = timed(per_image_batched_steps, model, x[:k], maps[:k], args.steps)
    t_loop, (d2, i2) = timed(per_image_per_step, model, x[:k], maps[:k], args.steps)
    diff = max(float((a[:k] - b).abs().max()) for a, b in ((d0, d1), (i0, i1), (d0, d2), (i0, i2)))
    t_image_all, t_loop_all = t_image * scale, t_loop * scale
    result = {
        "task": f"deletion + insertion curves, {args.images} images {args.size}x{args.size}, {args.steps} steps "
                f"({args.steps + 1} points), blur baseline, simple CNN 16-32-64-64",
        "batched_s": round(t_batched, 3),
        "loop_images": k,
        "batched_on_loop_images_s": round(t_batched_sub, 3),
        "per_image_batched_steps_on_loop_images_s": round(t_image, 3),
        "per_image_per_step_on_loop_images_s": round(t_loop, 3),
        "per_image_batched_steps_s": round(t_image_all, 3),
        "per_image_per_step_s": round(t_loop_all, 3),
        "loops_extrapolated": k < args.images,
        "speedup_vs_per_image_per_step": round(t_loop_all / t_batched, 2),
        "speedup_vs_per_image_batched_steps": round(t_image_all / t_batched, 2),
        "speedup_on_loop_images_vs_per_image_per_step": round(t_loop / t_batched_sub, 2),
        "max_abs_difference": diff,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "note": ("measured side by side in one process on a CPU shared with other jobs (see load averages); "
                 "absolute times are noisy, the ratio is the result. "
                 + (f"The loops ran on the first {k} images and are scaled by {scale:g} (each image costs the "
                    "same, no cross-image work); the batched call ran on all images." if k < args.images else "")),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / "metrics.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, RESULTS / "metrics.json")
    star = "*" if k < args.images else ""
    print(f"| way ({args.images} images) | seconds | vs batched |\n|---|---|---|\n"
          f"| batched across steps and images (netgaze) | {t_batched:.2f} | 1.0 |\n"
          f"| per-image loop, steps batched | {t_image_all:.2f}{star} | {t_image_all / t_batched:.1f}x slower |\n"
          f"| per-image per-step loop (RISE reference) | {t_loop_all:.2f}{star} | {t_loop_all / t_batched:.1f}x slower |")
    if star:
        print(f"* measured on {k} images, scaled by {scale:g}; on those {k} images alone the batched call took "
              f"{t_batched_sub:.2f} s ({t_loop / t_batched_sub:.1f}x faster than the per-step loop)")
    print(f"max |difference| between the three: {diff:.2e}; load average {load_before} -> {os.getloadavg()}")
    return result


if __name__ == "__main__":
    main()
