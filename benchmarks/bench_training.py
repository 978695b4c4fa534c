"""Quality bar of the training lab (issue 3): accuracy, wall time, and the trainer's overhead.

    .venv/bin/python benchmarks/bench_training.py            # everything (about 5-8 min idle)
    taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_training.py \
        --only overhead --threads 1                          # about 2.5 min on one core

1. simple-cnn on shapes (default: 2,000 + 500 pictures, 64x64, 5 classes), 10 epochs:
   test accuracy >= 90% within 10 epochs, in under 3 minutes of wall time.
2. simple-cnn on digits, 10 epochs: test accuracy >= 95%.
3. ``train_classifier`` against a bare hand-written loop (same model, data, batches, seed;
   both evaluate test loss and accuracy every epoch), digits, 10 epochs, in one process
   after imports and a warm-up run of each: overhead <= 10% of the bare loop's time. The
   trainer also writes a checkpoint and history.jsonl every epoch, curves.png at the end,
   run.json and log.txt, and loads the run back; the table splits its time into those parts.

Prints a table and writes ``benchmarks/results/training.json``, with the load average of the
machine before and after each part: on a shared machine, timings are only as good as that.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from netgaze.lab import loop, train
from netgaze.lab.datasets import load_dataset
from netgaze.lab.distributed import seed_everything
from netgaze.lab.loop import EpochTrainer
from netgaze.lab.models import build_model
from netgaze.lab.runs import RunFolder, atomic_write_json
from netgaze.lab.train import classifier_model_args, train_classifier

RESULTS = Path(__file__).parent / "results" / "training.json"


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def quality(data: str, epochs: int, bar: float, time_limit: float | None, workdir: Path,
            batch_size: int = 64, lr: float = 1e-3) -> dict:
    load_dataset(data, "train"), load_dataset(data, "test")  # generated / cached before the clock starts
    before = load()
    began = time.perf_counter()
    run = train_classifier(data=data, model="simple-cnn", epochs=epochs, out=str(workdir / data), progress=False,
                           batch_size=batch_size, lr=lr)
    wall = time.perf_counter() - began
    accs = [r["test_acc"] for r in run.history]
    reached = next((r["epoch"] for r in run.history if r["test_acc"] >= bar), None)
    elapsed = 0.0
    time_to_bar = None
    for r in run.history:
        elapsed += r["seconds"]
        if r["epoch"] == reached:
            time_to_bar = round(elapsed, 1)
    ok = reached is not None and (time_limit is None or wall < time_limit)
    return {"data": data, "epochs": epochs, "batch_size": batch_size, "lr": lr, "test_acc_per_epoch": [round(a, 4) for a in accs],
            "final_test_acc": round(accs[-1], 4), "best_test_acc": round(max(accs), 4), "bar": bar,
            "first_epoch_at_bar": reached, "train_seconds_to_bar": time_to_bar, "wall_seconds": round(wall, 1),
            "time_limit_seconds": time_limit, "passed": ok, "load_before": before, "load_after": load()}


EPOCHS_PART = "epochs (train + test passes)"
REST_PART = "setup and the rest"


class BareLoop:
    """What a user writes by hand: the same model, batches and per-epoch evaluation (train loss,
    test loss and accuracy), no run folder, no checkpoint. Adds its times to ``parts``."""

    def __init__(self, data: str, batch_size: int, lr: float, seed: int, parts: dict[str, float]):
        self.parts, self.seed = parts, seed
        self.train_set, self.test_set = load_dataset(data, "train"), load_dataset(data, "test")
        began = time.perf_counter()
        seed_everything(seed)
        self.model = build_model("simple-cnn", **classifier_model_args("simple-cnn", self.train_set, {}))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.sampler = DistributedSampler(self.train_set, num_replicas=1, rank=0, shuffle=True, seed=seed)
        self.train_loader = DataLoader(self.train_set, batch_size=batch_size, sampler=self.sampler)
        self.test_loader = DataLoader(self.test_set, batch_size=batch_size)
        self.history: list[dict[str, float]] = []
        parts[REST_PART] += time.perf_counter() - began

    def epoch(self, epoch: int) -> None:
        began = time.perf_counter()
        seed_everything(self.seed, epoch)
        self.sampler.set_epoch(epoch)
        model, opt = self.model, self.opt
        model.train()
        train_loss = 0.0
        for x, y in self.train_loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            train_loss += loss.item() * len(y)
        model.eval()
        test_loss, correct = 0.0, 0
        with torch.no_grad():
            for x, y in self.test_loader:
                logits = model(x)
                test_loss += F.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
        self.history.append({"epoch": epoch, "train_loss": train_loss / len(self.train_set),
                             "test_loss": test_loss / len(self.test_set), "test_acc": correct / len(self.test_set)})
        self.parts[EPOCHS_PART] += time.perf_counter() - began

    def total(self) -> float:
        return self.parts[EPOCHS_PART] + self.parts[REST_PART]


# The trainer's parts, timed by wrapping what it calls (the wrappers cost microseconds).
TRAINER_PARTS = {
    EPOCHS_PART: [(EpochTrainer, "run_epoch")],
    "checkpoints (weights, optimizer, metadata; fsync)": [(RunFolder, "save_epoch")],
    "history.jsonl, run.json, log.txt": [(RunFolder, "write_history"), (RunFolder, "write_config"),
                                         (RunFolder, "log")],
    "curves.png": [(loop, "plot_curves")],
    "load_run at the end": [(train, "load_run")],
}


@contextlib.contextmanager
def patched(owner: object, attr: str, replacement: object) -> Iterator[None]:
    original = getattr(owner, attr)
    setattr(owner, attr, replacement)
    try:
        yield
    finally:
        setattr(owner, attr, original)


def timed(fn, parts: dict[str, float], name: str):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            parts[name] += time.perf_counter() - began
    return wrapper


def trainer_run(data: str, epochs: int, batch_size: int, lr: float, seed: int, out: Path,
                parts: dict[str, float], between_epochs: BareLoop | None = None) -> float:
    """``train_classifier``'s wall time, its parts added to ``parts``.

    ``between_epochs``: a bare loop that runs one epoch after each of the trainer's (not
    counted in the trainer's time), so that both sides see the same load of the machine.
    """
    inside = [0.0]
    end_epoch = EpochTrainer.end_epoch

    def end_epoch_then_bare(self, record, history, total_epochs):
        end_epoch(self, record, history, total_epochs)
        if between_epochs is not None:
            began = time.perf_counter()
            between_epochs.epoch(record["epoch"])
            inside[0] += time.perf_counter() - began

    with contextlib.ExitStack() as stack:
        for name, targets in TRAINER_PARTS.items():
            for owner, attr in targets:
                stack.enter_context(patched(owner, attr, timed(getattr(owner, attr), parts, name)))
        stack.enter_context(patched(EpochTrainer, "end_epoch", end_epoch_then_bare))
        began = time.perf_counter()
        train_classifier(data=data, model="simple-cnn", epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         out=str(out), progress=False)
        total = time.perf_counter() - began - inside[0]
    parts[REST_PART] += total - sum(v for k, v in parts.items() if k != REST_PART)
    return total


def overhead(data: str, epochs: int, repeats: int, workdir: Path, batch_size: int = 64, lr: float = 1e-3) -> dict:
    """Trainer vs bare loop in this process, after imports and one warm-up run of each.

    Each repeat trains both, epoch by epoch in turn (trainer epoch 1, bare epoch 1, trainer
    epoch 2, ...), so that a burst of load from other processes hits both sides alike; the
    overhead compares the fastest repeat of each side. matplotlib's import (once per process,
    paid by the first run that draws curves) is measured apart and not in the overhead.
    """
    load_dataset(data, "train"), load_dataset(data, "test")  # generated / cached before any clock
    began = time.perf_counter()
    import matplotlib.backends.backend_agg  # noqa: F401  (what plot_curves imports)
    import matplotlib.figure  # noqa: F401
    matplotlib_import = time.perf_counter() - began
    warm = BareLoop(data, batch_size, lr, 0, defaultdict(float))  # warm-up: first-call allocations
    trainer_run(data, 1, batch_size, lr, 0, workdir / "warm-up", defaultdict(float), between_epochs=warm)
    before = load()
    bare, trainer = [], []
    for i in range(repeats):
        bare_parts, trainer_parts = defaultdict(float), defaultdict(float)
        loop_by_hand = BareLoop(data, batch_size, lr, 0, bare_parts)
        seconds = trainer_run(data, epochs, batch_size, lr, 0, workdir / f"overhead-{i}", trainer_parts,
                              between_epochs=loop_by_hand)
        bare.append((loop_by_hand.total(), dict(bare_parts)))
        trainer.append((seconds, dict(trainer_parts)))
    best_bare, best_trainer = min(bare, key=lambda r: r[0]), min(trainer, key=lambda r: r[0])
    ratio = best_trainer[0] / best_bare[0] - 1
    paired = sorted(t / b - 1 for (t, _), (b, _) in zip(trainer, bare))
    breakdown = {}
    for n in [*TRAINER_PARTS, REST_PART]:
        b, t = best_bare[1].get(n, 0.0), best_trainer[1].get(n, 0.0)
        breakdown[n] = {"bare_seconds": round(b, 3), "trainer_seconds": round(t, 3),
                        "fraction_of_bare_total": round((t - b) / best_bare[0], 4)}
    # What the trainer adds beyond the passes over the data: less noisy than the totals, whose
    # difference on a shared machine is mostly load (the passes do the same work on both sides).
    fixed = (best_trainer[0] - best_trainer[1][EPOCHS_PART]) - (best_bare[0] - best_bare[1][EPOCHS_PART])
    return {"data": data, "epochs": epochs, "batch_size": batch_size, "lr": lr, "repeats": repeats,
            "interleaved": "epoch by epoch",
            "bare_seconds": [round(t, 2) for t, _ in bare], "trainer_seconds": [round(t, 2) for t, _ in trainer],
            "overhead_fraction_of_min": round(ratio, 4),
            "overhead_fraction_median_of_pairs": round(paired[len(paired) // 2], 4),
            "outside_passes_fraction": round(fixed / best_bare[0], 4),
            "passes_ratio_minus_one": round(best_trainer[1][EPOCHS_PART] / best_bare[1][EPOCHS_PART] - 1, 4),
            "breakdown_of_fastest_runs": breakdown,
            "matplotlib_import_seconds_once_per_process": round(matplotlib_import, 2),
            "conditions": {"torch_threads": torch.get_num_threads(),
                           "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                           else None,
                           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            "limit": 0.10, "passed": ratio <= 0.10, "load_before": before, "load_after": load()}


def print_overhead(r: dict) -> None:
    print(f"\ntrainer vs bare loop (epochs interleaved), {r['data']}, {r['epochs']} epochs, batch {r['batch_size']} "
          f"({r['conditions']['torch_threads']} torch thread(s), CPUs {r['conditions']['cpu_affinity']}):")
    print(f"  runs (s): bare {r['bare_seconds']}  trainer {r['trainer_seconds']}")
    print(f"  {'part (fastest run of each side)':52} {'bare s':>8} {'trainer s':>10} {'extra, of bare':>15}")
    for name, part in r["breakdown_of_fastest_runs"].items():
        print(f"  {name:52} {part['bare_seconds']:8.2f} {part['trainer_seconds']:10.2f} "
              f"{part['fraction_of_bare_total']:+15.1%}")
    print(f"  {'total':52} {min(r['bare_seconds']):8.2f} {min(r['trainer_seconds']):10.2f} "
          f"{r['overhead_fraction_of_min']:+15.1%}   (limit +{r['limit']:.0%})")
    print(f"  median over the repeats of trainer / bare - 1: {r['overhead_fraction_median_of_pairs']:+.1%}")
    print(f"  outside the passes over the data (checkpoints, files, curves, setup): "
          f"{r['outside_passes_fraction']:+.1%} of the bare loop; the passes themselves differ by "
          f"{r['passes_ratio_minus_one']:+.1%} (same work: that is load noise and per-batch bookkeeping)")
    print("  once per process, not counted: importing matplotlib "
          f"{r['matplotlib_import_seconds_once_per_process']:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["shapes", "digits", "overhead"], action="append")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--overhead-data", default="digits", help="of the overhead part (default: digits)")
    parser.add_argument("--overhead-epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="of each side in the overhead part (default: 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="of the quality runs (default: 32)")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam's, in the quality runs (default: 2e-3)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = args.only or ["shapes", "digits", "overhead"]
    results = {}
    results["machine"] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "torch": torch.__version__, "platform": platform.platform(),
                          "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "shapes" in parts:
            results["shapes"] = quality("shapes", 10, 0.90, 180.0, workdir, args.batch_size, args.lr)
            print("shapes", json.dumps(results["shapes"]), flush=True)
        if "digits" in parts:
            results["digits"] = quality("digits", 10, 0.95, None, workdir, args.batch_size, args.lr)
            print("digits", json.dumps(results["digits"]), flush=True)
        if "overhead" in parts:
            results["overhead"] = overhead(args.overhead_data, args.overhead_epochs, args.repeats, workdir)
            print("overhead", json.dumps(results["overhead"]), flush=True)
            print_overhead(results["overhead"])
    if args.only and RESULTS.is_file():  # keep the parts not run this time (read at the end: runs may overlap)
        old = json.loads(RESULTS.read_text())
        results = {**old, **results, "machine": old.get("machine", results["machine"])}  # the other parts' machine
    atomic_write_json(RESULTS, results)
    print(f"\n{'part':10} {'result':52} passed")
    for name in ("shapes", "digits"):
        if name in results:
            r = results[name]
            text = (f"test acc {r['best_test_acc']:.1%} (bar {r['bar']:.0%} at epoch {r['first_epoch_at_bar']}), "
                    f"wall {r['wall_seconds']:.0f} s")
            print(f"{name:10} {text:52} {r['passed']}")
    if "overhead" in results:
        r = results["overhead"]
        text = f"trainer {min(r['trainer_seconds']):.1f} s vs bare {min(r['bare_seconds']):.1f} s: " \
               f"{r['overhead_fraction_of_min']:+.1%}"
        print(f"{'overhead':10} {text:52} {r['passed']}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; results in {RESULTS}")


if __name__ == "__main__":
    main()
