"""Quality bar of the reconstruction lab (issue 4), on the embedded digits; prints and writes results/vae.json.

1. Linear VAE (784-400-20), BCE: test loss per image printed per epoch, and decreasing.
2. Conv VAE vs linear VAE with MSE at the same latent size: test pixel MSE.
3. Imputation of a hidden box beats filling it with the mean training picture.
4. Area guided backprop: share of the absolute mass inside the box (locality measure).
(VAE-GAN stability on digits and a 64x64 image folder: benchmarks/quality_vaegan.py, results/vaegan.json.)

MNIST comparison point (users' IDX files, not run here: no downloads):
  netgaze train reconstruct --data mnist:PATH --model vae-linear --loss bce --epochs 10
is the classic PyTorch example (784-400-20, Adam 1e-3, batch 128, BCE summed + KL),
whose published test loss is about 105.6 per image after 10 epochs.

Usage: python benchmarks/quality_vae.py [--epochs 40] [--threads 1] [--out DIR]
The digits are sklearn's 8x8 digits upscaled to 28x28: grey, blurred strokes, so their BCE
per image is far above MNIST's (the entropy of grey pixels is not zero) and not comparable to 105.6.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "vae.json"


def _train(out: Path, model: str, loss: str, epochs: int, model_args=None, data="digits", data_options=None,
           lr=1e-3, batch_size=128):
    from netgaze.lab.reconstruct import train_reconstruction

    shutil.rmtree(out, ignore_errors=True)
    began = time.time()
    run = train_reconstruction(data, model, loss=loss, latent=20, epochs=epochs, batch_size=batch_size, lr=lr,
                               out=out, seed=0, model_args=model_args, data_options=data_options, progress=False)
    return run, time.time() - began


def _losses(run) -> list[float]:
    return [round(r["test_loss"], 3) for r in run.history]


def bce_floor() -> float:
    """The smallest possible BCE per test picture: the summed entropy of its grey pixels."""
    from netgaze.lab.datasets import digits

    x = digits("test").tensors()[0].clamp(1e-7, 1 - 1e-7)
    return float(-(x * x.log() + (1 - x) * (1 - x).log()).flatten(1).sum(1).mean())


def linear_bce(work: Path, epochs: int) -> tuple[dict, object]:
    run, seconds = _train(work / "linear-bce", "vae-linear", "bce", epochs)
    losses = _losses(run)
    floor = bce_floor()
    for epoch, value in enumerate(losses, 1):
        print(f"  linear VAE, BCE, epoch {epoch:3d}: test loss {value:.2f} per image")
    rises = sum(b > a for a, b in zip(losses, losses[1:]))
    print(f"  (BCE floor of these grey pictures, their pixel entropy: {floor:.2f} per image)")
    return {"test_loss_per_epoch": losses, "first": losses[0], "last": losses[-1], "epochs_with_a_rise": rises,
            "bce_floor_pixel_entropy": round(floor, 3),
            "decreasing": losses[-1] < losses[0], "seconds": round(seconds, 1)}, run


def conv_vs_linear_mse(work: Path, epochs: int) -> tuple[dict, object]:
    out = {}
    runs = {}
    for name in ("vae-linear", "vae-conv"):
        run, seconds = _train(work / f"{name}-mse", name, "mse", epochs)
        last = run.history[-1]
        out[name] = {"test_loss": round(last["test_loss"], 4), "test_recon_sse": round(last["test_recon"], 4),
                     "test_pixel_mse": round(last["test_pixel_mse"], 5),
                     "parameters": sum(p.numel() for p in run.model.parameters()), "seconds": round(seconds, 1)}
        runs[name] = run
        print(f"  {name}, MSE: test pixel MSE {last['test_pixel_mse']:.5f}, loss {last['test_loss']:.3f}")
    out["conv_beats_linear"] = out["vae-conv"]["test_pixel_mse"] < out["vae-linear"]["test_pixel_mse"]
    return out, runs["vae-conv"]


def imputation_numbers(run, name: str) -> dict:
    from netgaze.studies.imputation import imputation

    out = {}
    for label, box in (("lower_half", (14, 0, 28, 28)), ("centre_12x12", (8, 8, 20, 20))):
        numbers = imputation(run, box=box, iterations=20).manifest["numbers"]
        out[label] = {k: round(numbers[k], 5) for k in ("vae_mse_hidden", "mean_fill_mse_hidden", "vae_wins_share")}
        out[label]["beats_mean"] = numbers["vae_mse_hidden"] < numbers["mean_fill_mse_hidden"]
        print(f"  imputation {name} {label}: VAE {numbers['vae_mse_hidden']:.4f} vs mean fill "
              f"{numbers['mean_fill_mse_hidden']:.4f} (VAE better on {100 * numbers['vae_wins_share']:.0f}%)")
    return out


def area_numbers(run) -> dict:
    from netgaze.studies.area import area_study

    numbers = area_study(run, margin=4).manifest["numbers"]
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in numbers.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--out", default=None, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="quality-vae-"))
    print(f"runs in {work}")
    results = {"data": "digits (sklearn 8x8 upscaled to 28x28; 1437 train / 360 test)", "epochs": args.epochs,
               "mnist_reference": {"config": "vae-linear 784-400-20, Adam lr 1e-3, batch 128, BCE summed + KL, "
                                             "10 epochs", "published_test_loss_per_image": 105.6,
                                   "command": "netgaze train reconstruct --data mnist:PATH --model vae-linear "
                                              "--loss bce --epochs 10"}}
    print("1. linear VAE, BCE")
    results["linear_bce"], linear_run = linear_bce(work, args.epochs)
    print("2. conv vs linear, MSE, latent 20")
    results["mse_latent20"], conv_run = conv_vs_linear_mse(work, args.epochs)
    print("3. imputation")
    results["imputation"] = {"vae-linear-bce": imputation_numbers(linear_run, "linear BCE"),
                             "vae-conv-mse": imputation_numbers(conv_run, "conv MSE")}
    print("4. area guided backprop locality (linear VAE, BCE)")
    results["area"] = area_numbers(linear_run)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
