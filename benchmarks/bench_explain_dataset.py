"""explain_dataset against plain no-grad inference over the same data (issue 16, Scale).

    .venv/bin/python benchmarks/bench_explain_dataset.py

resnet18 (random weights), 256 pictures at 160x160, batch 32, Grad-CAM of the last stage
(``layer4``), shards of 64 pictures. Goal: explain_dataset costs at most 1.1x a plain
``torch.no_grad()`` forward pass over the same DataLoader. It takes the predictions from
Grad-CAM's own forward pass and writes shards on a background thread; the "two passes" row
is the old way (a separate no-grad pass for the predictions), measured with a callable that
explain_dataset does not know, which makes it take that path.
Writes ``benchmarks/results/explain_dataset.json``.
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from pathlib import Path

import torch
import torchvision
from _timing import interleaved_rounds, paired_ratios, print_table, with_cpu, write_results
from torch.utils.data import DataLoader, TensorDataset

from netgaze.analyses.dataset_explanations import explain_dataset
from netgaze.methods import gradcam

N, SIZE, BATCH, SHARD = 256, 160, 32, 64
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def main() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1000).eval()
    data = TensorDataset(torch.rand(N, 3, SIZE, SIZE), torch.arange(N) % 1000)
    work = Path(tempfile.mkdtemp(prefix="bench-explain-dataset-"))

    def plain():
        with torch.no_grad():
            for x, _ in DataLoader(data, batch_size=BATCH):
                model(x)

    def gradcam_again(model, x, layer, target=None, output=None):
        return gradcam(model, x, layer, target=target, output=output)

    def explained(method):
        def call():
            out = work / "shards"
            shutil.rmtree(out, ignore_errors=True)
            explain_dataset(model, data, method, "layer4", out=out, shard_size=SHARD, batch_size=BATCH,
                            progress=False)
        return call

    cpu: dict[str, list[float]] = {}

    passes = {"plain no-grad inference": plain, "explain_dataset gradcam": explained("gradcam"),
              "two passes (before)": explained(gradcam_again)}
    try:
        times = interleaved_rounds({name: with_cpu(cpu, name, fn) for name, fn in passes.items()}, repeats=ROUNDS)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu = {name: ts[1:] for name, ts in cpu.items()}  # the first call of each is the warm-up
    ratios = paired_ratios(times, "plain no-grad inference")
    cpu_ratios = paired_ratios(cpu, "plain no-grad inference")
    rows, results = [], {}
    for name, ts in times.items():
        median = statistics.median(ts)
        results[name] = {"median_s": round(median, 3), "ratio_to_plain": round(ratios[name], 3),
                         "cpu_ratio_to_plain": round(cpu_ratios[name], 3), "seconds": [round(t, 3) for t in ts],
                         "cpu_seconds": [round(t, 3) for t in cpu[name]]}
        rows.append([name, f"{median:.2f}", f"{ratios[name]:.2f}x", f"{statistics.median(cpu[name]):.2f}",
                     f"{cpu_ratios[name]:.2f}x"])
    print_table(rows, ["pass", "median wall s", "wall vs plain", "median CPU s", "CPU vs plain"])
    print("(ratios: median over rounds of the per-round ratio; CPU time is the fairer number on a shared machine)")
    goal = ratios["explain_dataset gradcam"] <= 1.1 or cpu_ratios["explain_dataset gradcam"] <= 1.1
    print(f"goal <= 1.1x plain inference: {'met' if goal else 'NOT met'}")
    print("results:", write_results("explain_dataset", {
        "setup": {"model": "resnet18 (random weights)", "pictures": N, "size": SIZE, "batch": BATCH,
                  "shard_size": SHARD, "layer": "layer4", "rounds": ROUNDS, "threads": torch.get_num_threads()},
        "passes": results, "goal_met": goal}))


if __name__ == "__main__":
    main()
