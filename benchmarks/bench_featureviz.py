"""Speed of activation maximization: channels of one vgg16 layer, batched vs one at a time.

The issue's workload is 64 channels of ``features.28`` of torchvision vgg16 (random
weights) at 128x128 for 256 steps on the CPU. That is hours on a shared 2-core machine,
so by default this runs ``--channels`` channels for ``--steps`` steps and reports the time
per channel per step, extrapolated to 256 steps (the cost is linear in steps: every step
is the same forward and backward pass). ``--channels 64 --steps 256`` runs the real thing.

Contenders, same layer, same channels, same image size, same steps:
  - netgaze batched: ``visualize`` with every channel on the batch axis (one optimisation);
  - netgaze one at a time: ``visualize`` called once per channel;
  - torch-lucent one at a time (``render_vis``), when installed: as it ships (it upsamples
    images under 224 pixels to 224 before the model) and with ``fixed_image_size=128``
    (same pixels as ours). lucent 0.1.8 pins kornia<=0.4.1; on kornia >= 0.6 its rotate
    needs two names that moved (``get_rotation_matrix2d``, ``warp_affine``), aliased here.

Prints a table and writes ``benchmarks/results/featureviz.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

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


def _ours_loop(model, layer, channels, steps, size):
    from netgaze.featureviz import IMAGENET_MEAN, IMAGENET_STD, visualize
    start = time.perf_counter()
    for c in channels:
        visualize(model, layer, [c], steps=steps, size=size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return time.perf_counter() - start


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
    parser.add_argument("--channels", type=int, default=8, help="channels rendered (0..N-1)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--skip-lucent", action="store_true")
    args = parser.parse_args(argv)

    model = _model()
    channels = list(range(args.channels))
    run = dict(layer=args.layer, size=args.size, steps=args.steps)
    # Warm-up (allocator, oneDNN primitive caches, lazy imports) outside the timings.
    _ours_batched(model, args.layer, channels[:1], 1, args.size)

    rows: dict[str, dict] = {}

    def record(name, seconds, n_channels, note=""):
        per_step = seconds / (n_channels * args.steps)
        rows[name] = {"seconds": round(seconds, 3), "channels": n_channels, "steps": args.steps,
                      "seconds_per_channel_per_step": round(per_step, 5),
                      "seconds_per_channel_at_256_steps": round(per_step * FULL_STEPS, 3), "note": note}
        print(f"{name:34s} {seconds:8.2f} s  {per_step * FULL_STEPS:8.2f} s/channel at {FULL_STEPS} steps  {note}",
              flush=True)

    record("netgaze batched", _ours_batched(model, args.layer, channels, args.steps, args.size), len(channels),
           f"{len(channels)} channels in one batch")
    record("netgaze one at a time", _ours_loop(model, args.layer, channels, args.steps, args.size),
           len(channels), "visualize() once per channel")
    lucent_error = None
    if not args.skip_lucent:
        try:
            import lucent  # noqa: F401
            _lucent(model, args.layer, channels[:1], 1, args.size, None)  # warm-up
            record("lucent one at a time (as shipped)",
                   _lucent(model, args.layer, channels, args.steps, args.size, None), len(channels),
                   "render_vis, upsamples to 224")
            record("lucent one at a time (128 px)",
                   _lucent(model, args.layer, channels, args.steps, args.size, args.size), len(channels),
                   f"render_vis, fixed_image_size={args.size}")
        except Exception as err:  # noqa: BLE001 - reported, not hidden
            lucent_error = f"{type(err).__name__}: {err}"
            print(f"torch-lucent not measured: {lucent_error}", flush=True)

    base = rows["netgaze batched"]["seconds_per_channel_per_step"]
    speedups = {name: round(r["seconds_per_channel_per_step"] / base, 2) for name, r in rows.items()}
    print("speed-up of netgaze batched per channel:", speedups, flush=True)
    result = {
        "benchmark": "featureviz", "model": "torchvision vgg16 (random weights)", **run,
        "channels": len(channels), "extrapolated_to_steps": FULL_STEPS, "rows": rows,
        "speedup_of_batched": speedups, "lucent_error": lucent_error,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(), "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=RESULTS.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(result, handle, indent=2)
    os.replace(tmp, RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
