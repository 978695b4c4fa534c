"""Speed of the lab's embedded datasets: generating ``shapes`` and loading ``digits``.

    .venv/bin/python benchmarks/bench_data.py

Goal (issue 3): the default shapes set (2,000 train + 500 test, 64x64) is generated in about
1-2 s of CPU time; the second call with the same arguments comes from the in-memory cache.
Prints a table and writes ``benchmarks/results/data.json`` (CPU seconds and wall seconds; on a
shared machine the CPU time is the fairer number).
"""
from __future__ import annotations

import importlib
import time

from _timing import print_table, write_results

from netgaze.lab.datasets import digits, shapes

shapes_module = importlib.import_module("netgaze.lab.datasets.shapes")
digits_module = importlib.import_module("netgaze.lab.datasets.digits")


def clock(fn) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    rows, results = [], {}
    digits("train")  # import sklearn and torch kernels once, outside the timings
    cases = {
        "shapes train+test (2000+500, 64x64)": lambda: (shapes("train"), shapes("test")),
        "shapes train 2000, 10 classes, clutter 1": lambda: shapes("train", num_classes=10, clutter=1.0),
        "shapes train 2000, 128x128": lambda: shapes("train", size=128),
    }
    for name, fn in cases.items():
        shapes_module._generate.cache_clear()
        cpu, wall = clock(fn)
        cached_cpu, cached_wall = clock(fn)
        results[name] = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "cached_wall_s": round(cached_wall, 4)}
        rows.append([name, f"{cpu:.2f}", f"{wall:.2f}", f"{cached_wall * 1000:.1f}"])
    digits_module._digits_tensors.cache_clear()
    cpu, wall = clock(lambda: (digits("train"), digits("test")))
    results["digits train+test"] = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3)}
    rows.append(["digits train+test (1437+360, 28x28)", f"{cpu:.2f}", f"{wall:.2f}", "-"])
    print_table(rows, ["dataset", "CPU s", "wall s", "cached ms"])
    print("results:", write_results("data", {"datasets": results}))


if __name__ == "__main__":
    main()
