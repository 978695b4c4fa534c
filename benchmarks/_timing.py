"""Shared benchmark plumbing: median timings, peak-memory probes, JSON results."""
from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).parent / "results"


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int = 5) -> dict[str, float]:
    """Median seconds per function, measured in rounds so machine load hits all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def interleaved_rounds(fns: dict[str, Callable[[], object]], repeats: int = 5, seed: int = 0
                       ) -> dict[str, list[float]]:
    """Seconds of every call, in rounds that run each function once in a shuffled order.

    Rounds spread machine drift over all functions alike; the shuffle keeps one
    function from always following an expensive one (whose freed memory the next
    call would page in again).
    """
    for fn in fns.values():
        fn()
    order = random.Random(seed)
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        order.shuffle(names)
        for name in names:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def with_cpu(cpu: dict[str, list[float]], name: str, fn: Callable[[], object]) -> Callable[[], None]:
    """``fn`` that also appends its process CPU seconds to ``cpu[name]`` (the fairer number on a shared machine)."""
    def call() -> None:
        start = time.process_time()
        fn()
        cpu.setdefault(name, []).append(time.process_time() - start)
    return call


def paired_ratios(times: dict[str, list[float]], baseline: str) -> dict[str, float]:
    """Median over rounds of each function's time divided by the baseline's in that round."""
    return {name: statistics.median(t / b for t, b in zip(ts, times[baseline])) for name, ts in times.items()}


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark of this process (Linux: /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def machine() -> dict:
    load = os.getloadavg()
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": round(load[0], 2),
            "platform": platform.platform()}


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
