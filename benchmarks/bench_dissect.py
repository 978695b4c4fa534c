"""Network dissection in one streaming pass against a per-unit loop with exact quantiles (issue 16).

    .venv/bin/python benchmarks/bench_dissect.py

simple-cnn (random weights, channels 32-64-128-128: 352 units in 4 conv layers) on 256 ``shapes``
test pictures at 64x64 with a marker (8 concepts: 5 objects, any object, background, marker).
Streaming: ``ng.dissect``, one pass, per-unit histograms (memory independent of the dataset).
Per-unit loop: keeps every layer's activations for the whole dataset (memory grows with it),
then per unit upsamples, takes the exact top-0.5% quantile (``torch.quantile``) and the IoUs.
Reports both times, the activations the loop had to hold, and the largest IoU difference
(the histograms' accuracy). Writes ``benchmarks/results/dissect.json``.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from _timing import print_table, write_results

import netgaze as ng
from netgaze.analyses.dissect import concepts_of, dissect
from netgaze.lab.datasets.shapes import shapes
from netgaze.core.recorder import Recorder

N, SIZE, Q = 256, 64, 0.005


def per_unit_loop(model, data, layers, names):
    images, _ = data.tensors()
    sources = concepts_of(data)
    masks = torch.stack([sources[c](torch.arange(len(data))) for c in names], 1)  # [N, R, H, W]
    with Recorder(model, layers, grads=False) as rec:
        held = {name: [] for name in layers}
        for x in images.split(32):
            rec.forward(x)
            for name in layers:
                held[name].append(rec.activations[name])
    held = {name: torch.cat(parts) for name, parts in held.items()}
    held_mb = sum(t.numel() * 4 for t in held.values()) / 2 ** 20
    out = {}
    for name in layers:
        ious = []
        for u in range(held[name].shape[1]):
            up = F.interpolate(held[name][:, u:u + 1], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
            on = (up > torch.quantile(up.flatten(), 1 - Q))[:, None]
            ious.append((on & masks).sum((0, 2, 3)) / (on | masks).sum((0, 2, 3)).clamp(min=1))
        out[name] = torch.stack(ious).numpy()
    return out, held_mb


def main() -> None:
    torch.manual_seed(0)
    data = shapes("test", n=N, size=SIZE, marker_classes=[2])
    model = ng.build_model("simple-cnn", num_classes=5, in_channels=3, mean=data.mean, std=data.std).eval()
    dissect(model, data, progress=False, limit=32)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    result = dissect(model, data, quantile=Q, progress=False)
    stream_s, stream_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    exact, held_mb = per_unit_loop(model, data, result.settings["layers"], result.concepts)
    loop_s, loop_cpu = time.perf_counter() - start, time.process_time() - cpu
    diff = max(float(abs(exact[l.name] - l.iou).max()) for l in result.layers)
    agree = sum(int(((exact[l.name].max(1) > 0.04) == l.detector).sum()) for l in result.layers)
    units = sum(len(l.iou) for l in result.layers)
    rows = [["streaming (one pass, histograms)", f"{stream_s:.1f}", f"{stream_cpu:.1f}", "histograms only"],
            ["per-unit loop (exact quantiles)", f"{loop_s:.1f}", f"{loop_cpu:.1f}", f"{held_mb:.0f} MB of activations"]]
    print_table(rows, ["method", "wall s", "CPU s", "memory that grows with the data"])
    print(f"largest |IoU difference| {diff:.4f}; detector decisions agree on {agree} of {units} units")
    print("results:", write_results("dissect", {
        "setup": {"model": "simple-cnn 32-64-128-128 (random weights)", "pictures": N, "size": SIZE, "quantile": Q,
                  "units": units, "concepts": result.concepts},
        "streaming": {"wall_s": round(stream_s, 2), "cpu_s": round(stream_cpu, 2)},
        "per_unit_loop": {"wall_s": round(loop_s, 2), "cpu_s": round(loop_cpu, 2), "held_mb": round(held_mb, 1)},
        "max_iou_difference": round(diff, 5), "detector_agreement": f"{agree}/{units}",
        "detectors_per_layer": {l.name: int(l.detector.sum()) for l in result.layers}}))


if __name__ == "__main__":
    main()
