"""Quality bar of the training lab (issue 3): accuracy, wall time, and the trainer's overhead.

    .venv/bin/python benchmarks/bench_training.py            # everything (about 5-8 min idle)
    .venv/bin/python benchmarks/bench_training.py --only overhead

1. simple-cnn on shapes (default: 2,000 + 500 pictures, 64x64, 5 classes), 10 epochs:
   test accuracy >= 90% within 10 epochs, in under 3 minutes of wall time.
2. simple-cnn on digits, 10 epochs: test accuracy >= 95%.
3. ``train_classifier`` against a bare hand-written loop (same model, data, batches, seed,
   one evaluation of the test split per epoch): overhead <= 10% of the bare loop's time.
   The trainer also writes a checkpoint, history and curves every epoch.

Prints a table and writes ``benchmarks/results/training.json``, with the load average of the
machine before and after each part: on a shared machine, timings are only as good as that.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from netgaze.lab.data import load_dataset
from netgaze.lab.distributed import seed_everything
from netgaze.lab.models import build_model
from netgaze.lab.runs import atomic_write_json
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


def bare_loop(data: str, epochs: int, batch_size: int, lr: float, seed: int) -> float:
    """What a user writes by hand: the same model, batches and evaluation, no run folder."""
    train_set, test_set = load_dataset(data, "train"), load_dataset(data, "test")
    began = time.perf_counter()
    seed_everything(seed)
    model = build_model("simple-cnn", **classifier_model_args("simple-cnn", train_set, {}))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sampler = DistributedSampler(train_set, num_replicas=1, rank=0, shuffle=True, seed=seed)
    train_loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler)
    test_loader = DataLoader(test_set, batch_size=batch_size)
    for epoch in range(1, epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x).argmax(1) == y).sum().item()
    return time.perf_counter() - began


def overhead(data: str, epochs: int, repeats: int, workdir: Path) -> dict:
    load_dataset(data, "train"), load_dataset(data, "test")
    bare, trainer = [], []
    before = load()
    for i in range(repeats):  # interleaved, so a burst of load hits both
        bare.append(bare_loop(data, epochs, 64, 1e-3, seed=0))
        began = time.perf_counter()
        train_classifier(data=data, model="simple-cnn", epochs=epochs, out=str(workdir / f"overhead-{i}"),
                         progress=False)
        trainer.append(time.perf_counter() - began)
    ratio = min(trainer) / min(bare) - 1
    return {"data": data, "epochs": epochs, "repeats": repeats, "bare_seconds": [round(t, 2) for t in bare],
            "trainer_seconds": [round(t, 2) for t in trainer], "overhead_fraction_of_min": round(ratio, 4),
            "limit": 0.10, "passed": ratio <= 0.10, "load_before": before, "load_after": load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["shapes", "digits", "overhead"], action="append")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--overhead-epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
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
            results["overhead"] = overhead("digits", args.overhead_epochs, args.repeats, workdir)
            print("overhead", json.dumps(results["overhead"]), flush=True)
    if args.only and RESULTS.is_file():  # keep the parts not run this time (read at the end: runs may overlap)
        results = {**json.loads(RESULTS.read_text()), **results}
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
