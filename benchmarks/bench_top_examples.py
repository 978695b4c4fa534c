"""top_examples against a plain feature-extraction pass over the same data (issue 16).

    .venv/bin/python benchmarks/bench_top_examples.py

resnet18 (random weights), 256 pictures at 160x160, batch 64, every channel of ``layer3``
(256 channels), k = 9. The plain pass runs the same forward passes, stopped at ``layer3``,
and keeps nothing. Goal: top_examples costs at most 1.1x. Wall and CPU seconds, median of
per-round ratios over shuffled rounds. Writes ``benchmarks/results/top_examples.json``.
"""
from __future__ import annotations

import os
import statistics

import torch
import torchvision
from _timing import interleaved_rounds, paired_ratios, print_table, with_cpu, write_results
from torch.utils.data import DataLoader, TensorDataset

from netgaze.analyses.top_examples import top_examples
from netgaze.core.recorder import Recorder

N, SIZE, BATCH, LAYER = 256, 160, 64, "layer3"
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def main() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1000).eval()
    data = TensorDataset(torch.rand(N, 3, SIZE, SIZE), torch.zeros(N, dtype=torch.long))

    def plain():
        with Recorder(model, [LAYER], grads=False, stop=True) as rec:
            for x, _ in DataLoader(data, batch_size=BATCH):
                rec.forward(x)

    def tops():
        top_examples(model, data, LAYER, k=9, batch_size=BATCH, progress=False)

    cpu: dict[str, list[float]] = {}

    times = interleaved_rounds({"feature extraction": with_cpu(cpu, "feature extraction", plain),
                                "top_examples": with_cpu(cpu, "top_examples", tops)}, repeats=ROUNDS)
    cpu = {name: ts[1:] for name, ts in cpu.items()}
    wall, cpu_ratio = paired_ratios(times, "feature extraction"), paired_ratios(cpu, "feature extraction")
    rows, results = [], {}
    for name in times:
        results[name] = {"median_s": round(statistics.median(times[name]), 3), "ratio": round(wall[name], 3),
                         "cpu_ratio": round(cpu_ratio[name], 3), "seconds": [round(t, 3) for t in times[name]],
                         "cpu_seconds": [round(t, 3) for t in cpu[name]]}
        rows.append([name, f"{statistics.median(times[name]):.2f}", f"{wall[name]:.2f}x", f"{cpu_ratio[name]:.2f}x"])
    print_table(rows, ["pass", "median wall s", "wall vs plain", "CPU vs plain"])
    goal = wall["top_examples"] <= 1.1 or cpu_ratio["top_examples"] <= 1.1
    print(f"goal <= 1.1x feature extraction: {'met' if goal else 'NOT met'}")
    print("results:", write_results("top_examples", {
        "setup": {"model": "resnet18 (random weights)", "pictures": N, "size": SIZE, "batch": BATCH, "layer": LAYER,
                  "channels": 256, "k": 9, "rounds": ROUNDS}, "passes": results, "goal_met": goal}))


if __name__ == "__main__":
    main()
