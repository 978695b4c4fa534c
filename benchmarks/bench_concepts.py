"""Speed of ``ng.concepts`` (k conditional maps) against one ``ng.gradcam`` call on the same batch.

The issue's bar: conditional maps for k = 8 concepts cost at most 3x one Grad-CAM call (batched
gradients). ``ng.concepts`` runs one forward pass with autograd from the input, one backward pass
from the target to the layer and ONE batched backward pass (``is_grads_batched``) from the layer
to the input for all k seeds; Grad-CAM runs its forward pass without autograd up to the layer and
a backward pass from the target to the layer only. The batched pass still does k backward passes'
arithmetic, so on a CPU (arithmetic-bound) the ratio grows with k; on a GPU (where a small batch is
bound by kernel launches, not arithmetic) the k seeds should cost little more than one pass (not
measured here). Also timed: the same k maps one backward pass per channel (the loop the batched
pass replaces; on this CPU it is faster: vmap's batched convolution backward costs more than k
plain ones) and k = 1.

Models: the quality bar's simple CNN (random weights, 64 px, batch 32) and resnet18 (random
weights, 128 px, batch 8), default layers, torch threads as given (``--threads``). Rounds call
every contender once in a shuffled order; medians of wall seconds and the median per-round ratio
to Grad-CAM are printed and written to ``benchmarks/results/concepts.json``.

    python benchmarks/bench_concepts.py [--repeats 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys

import torch
import torchvision

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _timing import interleaved_rounds, paired_ratios, print_table, with_cpu, write_results  # noqa: E402

import netgaze as ng  # noqa: E402

concepts_module = importlib.import_module("netgaze.methods.concepts")


def one_pass_per_channel(model, x, k):
    """ng.concepts with its batched backward pass replaced by a loop of k passes (same numbers)."""
    batched = concepts_module._batched_vjp
    concepts_module._batched_vjp = lambda out, inp, seeds: torch.stack(
        [torch.autograd.grad(out, inp, grad_outputs=s, retain_graph=True)[0] for s in seeds])
    try:
        return ng.concepts(model, x, k=k)
    finally:
        concepts_module._batched_vjp = batched


def models():
    torch.manual_seed(0)
    simple = ng.build_model("simple-cnn", num_classes=5, in_channels=3, mean=[0.25] * 3, std=[0.2] * 3,
                            channels=[16, 32, 64, 64]).eval()
    yield "simple-cnn 64px batch 32", simple, torch.rand(32, 3, 64, 64)
    yield "resnet18 128px batch 8", torchvision.models.resnet18(num_classes=10).eval(), torch.rand(8, 3, 128, 128)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, results = [], {}
    for label, model, x in models():
        cpu: dict[str, list[float]] = {}
        fns = {"gradcam": lambda: ng.gradcam(model, x),
               "concepts k=1": lambda: ng.concepts(model, x, k=1),
               "concepts k=8": lambda: ng.concepts(model, x, k=8),
               "concepts k=8, one pass per channel": lambda: one_pass_per_channel(model, x, 8)}
        times = interleaved_rounds({n: with_cpu(cpu, n, f) for n, f in fns.items()}, repeats=args.repeats)
        wall = paired_ratios(times, "gradcam")
        cpu_ratio = {n: statistics.median(c / g for c, g in zip(cpu[n][1:], cpu["gradcam"][1:])) for n in fns}
        results[label] = {n: {"seconds": round(statistics.median(times[n]), 4), "ratio_wall": round(wall[n], 2),
                              "ratio_cpu": round(cpu_ratio[n], 2)} for n in fns}
        results[label]["bar_3x_met"] = bool(wall["concepts k=8"] <= 3.0)
        rows += [[label, n, f"{statistics.median(times[n]):.4f}", f"{wall[n]:.2f}x", f"{cpu_ratio[n]:.2f}x"]
                 for n in fns]
    print_table(rows, ["model", "call", "median s", "wall / gradcam", "cpu / gradcam"])
    payload = {"threads": args.threads, "repeats": args.repeats, "device": "cpu", "models": results}
    print("results:", write_results("concepts", payload))
    return payload


if __name__ == "__main__":
    main()
