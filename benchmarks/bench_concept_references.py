"""concept_references (issue 27 part 2) against a plain feature pass over the same data.

    .venv/bin/python benchmarks/bench_concept_references.py

resnet18 (random weights, 10 classes), 256 pictures at 160x160, batch 64, the default layer
(``layer4``, the last stage), k = 9, every class followed. The plain pass runs the same forward
passes stopped at ``layer4`` and keeps nothing. Goal: the reference pass costs at most 1.2x. Wall
and CPU seconds, median of per-round ratios over shuffled rounds. Writes
``benchmarks/results/concept_references.json``.
"""
from __future__ import annotations

import os
import statistics

import torch
import torchvision
from _timing import interleaved_rounds, paired_ratios, print_table, with_cpu, write_results
from torch.utils.data import DataLoader, TensorDataset

from netgaze.analyses.concept_references import concept_references
from netgaze.core.recorder import Recorder

N, SIZE, BATCH, LAYER, CLASSES = 256, 160, 64, "layer4", 10
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def main() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=CLASSES).eval()
    data = TensorDataset(torch.rand(N, 3, SIZE, SIZE), torch.arange(N) % CLASSES)

    def plain():
        with Recorder(model, [LAYER], grads=False, stop=True) as rec:
            for x, _ in DataLoader(data, batch_size=BATCH):
                rec.forward(x)

    def references():
        concept_references(model, data, LAYER, k=9, batch_size=BATCH, progress=False)

    cpu: dict[str, list[float]] = {}
    times = interleaved_rounds({"feature pass": with_cpu(cpu, "feature pass", plain),
                                "concept_references": with_cpu(cpu, "concept_references", references)},
                               repeats=ROUNDS)
    cpu = {name: ts[1:] for name, ts in cpu.items()}
    wall, cpu_ratio = paired_ratios(times, "feature pass"), paired_ratios(cpu, "feature pass")
    rows, results = [], {}
    for name in times:
        results[name] = {"median_s": round(statistics.median(times[name]), 3), "ratio": round(wall[name], 3),
                         "cpu_ratio": round(cpu_ratio[name], 3), "seconds": [round(t, 3) for t in times[name]]}
        rows.append([name, f"{statistics.median(times[name]):.2f}", f"{wall[name]:.2f}x", f"{cpu_ratio[name]:.2f}x"])
    print_table(rows, ["pass", "median wall s", "wall vs plain", "CPU vs plain"])
    ratio = wall["concept_references"]
    goal = ratio <= 1.2 or cpu_ratio["concept_references"] <= 1.2
    print(f"concept_references / feature pass: {ratio:.2f}x wall, {cpu_ratio['concept_references']:.2f}x CPU; "
          f"goal <= 1.2x: {'met' if goal else 'NOT met'}")
    print("results:", write_results("concept_references", {
        "setup": {"model": "resnet18 (random weights)", "classes": CLASSES, "pictures": N, "size": SIZE,
                  "batch": BATCH, "layer": LAYER, "k": 9, "rounds": ROUNDS}, "passes": results, "goal_met": goal}))


if __name__ == "__main__":
    main()
