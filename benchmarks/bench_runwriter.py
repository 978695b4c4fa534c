"""What ``RunWriter.save`` adds to an epoch of the demo's digits CNN (the bar: at most 5%).

    .venv/bin/python benchmarks/bench_runwriter.py                 # about 20 s on 2 idle cores
    taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_runwriter.py --threads 1
                                      # one core: the writer's thread shares the training's only core

The demo's digits classifier (``simple-cnn`` with channels 16, 32, 64, 64 and a 3x3 pooling
grid, Adam, batch 64) trains on the embedded digits in a plain loop, as a user's loop would.
Each round times one epoch alone and one epoch followed by ``writer.save(epoch, model,
metrics)`` (the weights are copied on the calling thread, written on the writer's own thread
while the next epoch trains), in a shuffled order. The writer's background writes of the
previous epoch overlap the timed epochs, as they do in training; a final ``close`` is timed
apart. The ratio is the median over rounds of (epoch + save) / epoch.

Prints the ratio and writes ``benchmarks/results/runwriter.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_rounds, machine, paired_ratios, write_results  # noqa: E402

import netgaze as ng  # noqa: E402
from netgaze.lab.datasets import load_dataset  # noqa: E402
from netgaze.lab.models import build_model  # noqa: E402

BAR = 1.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    build_args = {"num_classes": 10, "in_channels": 1, "channels": [16, 32, 64, 64], "pool_grid": 3,
                  "mean": train.mean, "std": train.std}
    torch.manual_seed(0)
    model = build_model("simple-cnn", **build_args)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))

    def epoch() -> float:
        model.train()
        total = 0.0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        return total / len(loader)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        writer = ng.RunWriter(Path(tmp) / "digits-cnn", model=model, build="simple-cnn", build_args=build_args,
                              data={"test": test})
        open_seconds = time.perf_counter() - started
        counter = iter(range(1, 10_000))
        save_seconds: list[float] = []

        def epoch_and_save() -> None:
            loss = epoch()
            began = time.perf_counter()
            writer.save(next(counter), model, metrics={"train_loss": loss})
            save_seconds.append(time.perf_counter() - began)

        times = interleaved_rounds({"epoch": epoch, "epoch + save": epoch_and_save}, repeats=args.rounds)
        began = time.perf_counter()
        writer.close()
        close_seconds = time.perf_counter() - began
        checkpoint_bytes = sum(p.stat().st_size for p in (Path(tmp) / "digits-cnn" / "checkpoints").glob("*.safetensors"))
        checkpoints = len(list((Path(tmp) / "digits-cnn" / "checkpoints").glob("*.safetensors")))
        # what the writer's thread does per checkpoint (weights, checksum, metadata, history), timed alone
        from netgaze.lab.runs import RunFolder, state_dict_to_cpu
        folder = RunFolder(Path(tmp) / "alone")
        folder.prepare()
        state = state_dict_to_cpu(model.state_dict())
        numbers = iter(range(1, 10_000))
        write_alone = statistics.median(_timed(lambda: (folder.save_state(next(numbers), state, {"epoch": 1}, None, {}),
                                                         folder.write_history([{"epoch": 1}]))) for _ in range(7))
    ratio = paired_ratios(times, "epoch")["epoch + save"]
    epoch_s = statistics.median(times["epoch"])
    result = {"ratio": round(ratio, 4), "bar": BAR, "passes": ratio <= BAR, "rounds": args.rounds,
              "epoch_seconds": round(epoch_s, 4), "epoch_and_save_seconds": round(statistics.median(times["epoch + save"]), 4),
              "save_call_seconds_median": round(statistics.median(save_seconds), 5),
              "background_write_seconds": round(write_alone, 5), "writer_open_seconds": round(open_seconds, 3), "close_seconds": round(close_seconds, 3),
              "checkpoint_kib": round(checkpoint_bytes / max(checkpoints, 1) / 1024, 1),
              "threads": torch.get_num_threads(), "machine": machine()}
    path = write_results("runwriter", result)
    print(f"epoch {epoch_s * 1000:.0f} ms, epoch + RunWriter.save {result['epoch_and_save_seconds'] * 1000:.0f} ms, "
          f"save() on the training thread {result['save_call_seconds_median'] * 1000:.2f} ms "
          f"(+ {write_alone * 1000:.1f} ms on the writer's thread): "
          f"ratio {ratio:.3f} (bar {BAR}) -> {path}")
    return 0 if ratio <= BAR else 1


def _timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


if __name__ == "__main__":
    sys.exit(main())
