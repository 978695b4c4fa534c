"""Speed of activation maximization: channels of one vgg16 layer, batched vs one at a time.

The issue's workload is 64 channels of ``features.28`` of torchvision vgg16 (random
weights) at 128x128 for 256 steps on the CPU. That is hours on one core, so the batched
run renders the real 64 channels (the batch size is what batching is about) for
``--steps`` steps, the one-at-a-time runs ``--single-channels`` channels for
``--single-steps`` steps, and every row reports the time per channel per step,
extrapolated to 256 steps (the cost is linear in steps: every step is the same forward
and backward pass). The one-at-a-time rows run twice, before and after the batched run,
and report the mean, so a change of load during the run shows as their spread.

Contenders, same layer, same image size:
  - netgaze batched: ``visualize`` with every channel on the batch axis (one optimisation);
  - netgaze one at a time: ``visualize`` called once per channel;
  - netgaze one at a time, full forward: the same with the whole model run every step
    (``Recorder(stop=False)``: what the renderer did before it stopped at the objective's layer);
  - torch-lucent one at a time (``render_vis``), when installed: as it ships (it upsamples
    images under 224 pixels to 224 before the model) and with ``fixed_image_size=128``
    (same pixels as ours). lucent 0.1.8 pins kornia<=0.4.1; on kornia >= 0.6 its rotate
    needs two names that moved (``get_rotation_matrix2d``, ``warp_affine``), aliased here.

Prints a table and writes ``benchmarks/results/featureviz.json``.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from netgaze._util.atomic import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "featureviz.json"
FULL_STEPS = 256


def _model():
    import torchvision
    torch.manual_seed(0)
    return torchvision.models.vgg16(weights=None).eval()


def _ours_batched(model, layer, channels, steps, size):
    from netgaze.featureviz import IMAGENET_MEAN, IMAGENET_STD, visualize
    start = time.perf_counter()
    visualize(model, layer, channels, steps=steps, size=size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return time.perf_counter() - start


def _ours_loop(model, layer, channels, steps, size, stop=True):
    import importlib

    from netgaze.featureviz import IMAGENET_MEAN, IMAGENET_STD, visualize
    render = importlib.import_module("netgaze.featureviz.render")  # the module, not the function
    original = render.Recorder
    if not stop:  # ablation: the renderer as it was, running the whole model every step
        render.Recorder = lambda *args, stop=False, **options: original(*args, **options)  # noqa: E731
    try:
        start = time.perf_counter()
        for c in channels:
            visualize(model, layer, [c], steps=steps, size=size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        return time.perf_counter() - start
    finally:
        render.Recorder = original


def _lucent(model, layer, channels, steps, size, fixed_image_size):
    import kornia
    import kornia.geometry.transform as kgt
    for name in ("get_rotation_matrix2d", "warp_affine"):
        if not hasattr(kornia, name):
            setattr(kornia, name, getattr(kgt, name))
    import numpy as np
    from lucent.optvis import param, render

    np.random.seed(0)
    torch.manual_seed(0)
    lucent_layer = layer.replace(".", "_")
    start = time.perf_counter()
    for c in channels:
        render.render_vis(model, f"{lucent_layer}:{c}", lambda: param.image(size), thresholds=(steps,),
                          show_image=False, progress=False, fixed_image_size=fixed_image_size)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="features.28")
    parser.add_argument("--channels", type=int, default=64, help="channels rendered in the batch (0..N-1)")
    parser.add_argument("--steps", type=int, default=3, help="steps of the batched run")
    parser.add_argument("--single-channels", type=int, default=6, help="channels rendered one at a time")
    parser.add_argument("--single-steps", type=int, default=4, help="steps of each one-at-a-time run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (pin the process with taskset)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--skip-lucent", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model = _model()
    channels = list(range(args.channels))
    singles = list(range(args.single_channels))
    run = dict(layer=args.layer, size=args.size, steps=args.steps, single_steps=args.single_steps)
    # Warm-up (allocator, oneDNN primitive caches, lazy imports) outside the timings.
    _ours_batched(model, args.layer, channels[:1], 1, args.size)
    _ours_batched(model, args.layer, channels[:2], 1, args.size)

    rows: dict[str, dict] = {}
    lucent_error = None
    contenders = {
        "netgaze one at a time": (lambda: _ours_loop(model, args.layer, singles, args.single_steps, args.size),
                                  "visualize() once per channel"),
        "netgaze one at a time, full forward": (
            lambda: _ours_loop(model, args.layer, singles, args.single_steps, args.size, stop=False),
            "visualize() once per channel, whole model run every step (before Recorder(stop=True))"),
    }
    if not args.skip_lucent:
        try:
            import lucent  # noqa: F401
            _lucent(model, args.layer, singles[:1], 1, args.size, None)  # warm-up
            _lucent(model, args.layer, singles[:1], 1, args.size, args.size)
            contenders["lucent one at a time (as shipped)"] = (
                lambda: _lucent(model, args.layer, singles, args.single_steps, args.size, None),
                "render_vis, upsamples to 224")
            contenders["lucent one at a time (128 px)"] = (
                lambda: _lucent(model, args.layer, singles, args.single_steps, args.size, args.size),
                f"render_vis, fixed_image_size={args.size}")
        except Exception as err:  # noqa: BLE001 - reported, not hidden
            lucent_error = f"{type(err).__name__}: {err}"
            print(f"torch-lucent not measured: {lucent_error}", flush=True)

    def record(name, seconds, n_channels, steps, note=""):
        per_step = [s / (n_channels * steps) for s in seconds]
        mean = sum(per_step) / len(per_step)
        rows[name] = {"seconds": [round(s, 3) for s in seconds], "channels": n_channels, "steps": steps,
                      "seconds_per_channel_per_step": round(mean, 5),
                      "seconds_per_channel_per_step_each_run": [round(v, 5) for v in per_step],
                      "seconds_per_channel_at_256_steps": round(mean * FULL_STEPS, 3), "note": note}
        print(f"{name:36s} {mean:7.4f} s/channel/step (runs {[round(v, 4) for v in per_step]})  "
              f"{mean * FULL_STEPS:8.2f} s/channel at {FULL_STEPS} steps  {note}", flush=True)

    before = {name: fn() for name, (fn, _) in contenders.items()}
    record("netgaze batched", [_ours_batched(model, args.layer, channels, args.steps, args.size)],
           len(channels), args.steps, f"{len(channels)} channels in one batch")
    for name, (fn, note) in contenders.items():
        record(name, [before[name], fn()], len(singles), args.single_steps, note)

    base = rows["netgaze batched"]["seconds_per_channel_per_step"]
    speedups = {name: round(r["seconds_per_channel_per_step"] / base, 2) for name, r in rows.items()}
    print("speed-up of netgaze batched per channel:", speedups, flush=True)
    result = {
        "benchmark": "featureviz", "model": "torchvision vgg16 (random weights)", **run,
        "channels": len(channels), "single_channels": len(singles), "extrapolated_to_steps": FULL_STEPS,
        "rows": rows,
        "speedup_of_batched": speedups, "lucent_error": lucent_error,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)), "load_average": os.getloadavg(), "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
    }
    atomic_write_json(RESULTS, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
