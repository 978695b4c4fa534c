"""VAE-GAN stability bar (issue 4): digits and a 64x64 RGB image folder; writes results/vaegan.json.

Both runs go through the user's path, ``netgaze.lab.reconstruct.train_reconstruction`` (what
``netgaze train reconstruct --model vaegan`` calls); the image folder is written first from
the embedded ``shapes`` generator as PNG files in class sub-folders, as a user's folder looks
(500 pictures; the folder loader's seeded 80/20 split gives 400 train / 100 test).

"Stable" is judged from the run's own per-epoch history (``history.jsonl``):

* finite: no NaN or infinity in any logged number;
* reconstruction improves: the test pixel MSE (decoding the mean of q(z|x); not part of the
  paper's loss) of the last epoch is at most ``MSE_DROP`` times the first epoch's, and at
  most a quarter of the epochs rise;
* the discriminator neither collapses nor wins outright on the pictures the reconstruction
  loss is about: its balanced accuracy on real vs reconstructed training pictures (the mean
  of its accuracy on each, in training mode, before each update) stays within ``ACC_BAND``
  every epoch after a warm-up of a quarter of the epochs (at least one). During the warm-up
  the decoder's pictures are still grey blobs that any discriminator tells apart (digits:
  0.97 and 0.955 in epochs 1 and 2); what matters is that the gating keeps it from running
  away afterwards. The accuracy on each kind, and on prior samples, is logged but not judged:
  on reconstructions it touches 1.0 in some epochs (the gates then freeze it), on prior
  samples it stays near 1.0 with a few hundred updates;
* bounded losses: the decoder's GAN loss and the discriminator's loss stay below ``LOSS_CAP``
  (per image; a diverging GAN's losses grow without limit).

The mean-picture baseline (predict every test picture by the mean training picture) is
reported beside the final pixel MSE; beating it is not part of "stable".

Reconstructions (rows: test pictures, reconstructions) and 16 prior samples are written as
PNG grids next to the results (``results/vaegan-*.png``).

Prior-sample quality on digits (stable training can still mode-collapse): a digits classifier
(``simple-cnn``, seed 0, ``CLASSIFIER_EPOCHS`` epochs, its test accuracy stored) scores
``N_SCORED`` prior samples (decode z ~ N(0, I), generator seed 0): the mean max-softmax
confidence (do they look like some digit), the number of distinct predicted classes and the
number holding at least 2 % of the samples (mode coverage: 10 = every digit), and the
classifier's Inception Score exp(E[KL(p(y|x) || p(y))]) (1 = collapsed or unrecognisable,
10 = confident and balanced; Salimans et al. 2016, with a digits classifier instead of
Inception). The same numbers for a plain conv VAE (``vae-conv``, BCE, the same epochs, batch
and learning rate) and for real test digits are the references; the plain VAE's prior
samples are written as ``results/vaegan-digits-vae-prior.png``.

Usage: python benchmarks/quality_vaegan.py [--epochs-folder 10] [--epochs-digits 24] [--out DIR] [--note TEXT]
Run it pinned to one core with one thread (``taskset -c 0``; ``--threads 1`` is the default).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
MSE_DROP = 0.8
ACC_BAND = (0.1, 0.95)
LOSS_CAP = 20.0
N_SCORED = 256
CLASSIFIER_EPOCHS = 15

# The configurations measured (the builder's defaults plus the width that fits one CPU core).
FOLDER_CONFIG = {"model_args": {"width": 16}, "batch_size": 16, "lr": 1e-3}
DIGITS_CONFIG = {"model_args": {"width": 16, "gate_prior": True}, "batch_size": 32, "lr": 1e-3}


def write_shapes_folder(folder: Path, n: int = 500) -> Path:
    """``n`` 64x64 ``shapes`` pictures as PNG files in one sub-folder per class."""
    from netgaze.lab.datasets import shapes
    from netgaze.viz import save_png, to_uint8

    data = shapes("train", n=n, size=64, seed=0)
    images, labels = data.tensors()
    for i, (picture, label) in enumerate(zip(to_uint8(images), labels.tolist())):
        save_png(picture, folder / data.classes[label] / f"shape-{i:04d}.png")
    return folder


def train(data: str, out: Path, epochs: int, config: dict, data_options: dict | None = None):
    from netgaze.lab.reconstruct import train_reconstruction

    shutil.rmtree(out, ignore_errors=True)
    began = time.time()
    run = train_reconstruction(data, "vaegan", latent=20, epochs=epochs, batch_size=config["batch_size"],
                               lr=config["lr"], out=out, seed=0, model_args=config["model_args"],
                               data_options=data_options, progress=False)
    return run, time.time() - began


def stability(history: list[dict]) -> dict:
    """Per-epoch numbers and the pass/fail of each criterion (see the module docstring)."""
    def per_epoch(key: str, digits: int = 4) -> list[float]:
        return [round(r[key], digits) for r in history]

    mse = [r["test_pixel_mse"] for r in history]
    rises = sum(b > a for a, b in zip(mse, mse[1:]))
    acc_real = [r["train_real_acc"] for r in history]
    acc_rec = [r["train_rec_acc"] for r in history]
    balanced = [(a + b) / 2 for a, b in zip(acc_real, acc_rec)]
    warmup = max(1, len(history) // 4)
    losses = [r[k] for r in history for k in ("train_gan_dec", "train_gan_dis")]
    numbers = [v for r in history for v in r.values() if isinstance(v, float)]
    checks = {
        "finite": all(math.isfinite(v) for v in numbers),
        "pixel_mse_falls": mse[-1] <= MSE_DROP * mse[0] and rises <= len(mse) // 4,
        "dis_balanced_accuracy_in_band": all(ACC_BAND[0] <= a <= ACC_BAND[1] for a in balanced[warmup:]),
        "losses_bounded": all(v < LOSS_CAP for v in losses),
    }
    return {
        "test_pixel_mse": per_epoch("test_pixel_mse", 5), "pixel_mse_rises": rises,
        "train_acc_real": per_epoch("train_real_acc", 3), "train_acc_rec": per_epoch("train_rec_acc", 3),
        "train_acc_prior": per_epoch("train_prior_acc", 3),
        "train_balanced_acc_real_vs_rec": [round(a, 3) for a in balanced], "warmup_epochs": warmup,
        "train_dis_real_bce": per_epoch("train_dis_real", 3), "train_dis_rec_bce": per_epoch("train_dis_rec", 3),
        "train_gan_dec": per_epoch("train_gan_dec", 3), "train_gan_dis": per_epoch("train_gan_dis", 3),
        "train_kl": per_epoch("train_kl", 2), "test_feature_recon": per_epoch("test_recon", 1),
        "dis_updates": per_epoch("train_dis_updates", 2), "dec_updates": per_epoch("train_dec_updates", 2),
        "checks": checks, "stable": all(checks.values()),
    }


def mean_picture_mse(run) -> float:
    """Pixel MSE of predicting every test picture by the mean training picture."""
    def stack(data):
        return torch.stack([data[i][0] for i in range(len(data))])
    return float((stack(run.dataset("test")) - stack(run.dataset("train")).mean(0)).pow(2).mean())


def pictures(run, name: str, n: int = 8) -> dict:
    """Reconstruction grid (test pictures over their reconstructions) and a prior-sample grid."""
    from netgaze.viz import grid, save_png, to_uint8

    test = run.dataset("test")  # pictures spread over the split (a folder's split is sorted by class)
    x = torch.stack([test[int(i)][0] for i in torch.linspace(0, len(test) - 1, n).round()])
    model = run.model.eval()
    with torch.no_grad():
        recon = model(x)[0]
        samples = model.sample(16, generator=torch.Generator().manual_seed(0))
    scale = 2 if x.shape[-1] < 48 else 1
    rec_path = save_png(grid([*to_uint8(x), *to_uint8(recon)], n, row_labels=["input", "recon"], scale=scale),
                        RESULTS / f"vaegan-{name}-reconstructions.png")
    prior_path = save_png(grid(list(to_uint8(samples)), 8, scale=scale), RESULTS / f"vaegan-{name}-prior.png")
    return {"reconstructions_png": rec_path.name, "prior_png": prior_path.name}


def digits_classifier(out: Path):
    """The pinned digits classifier that scores samples (``simple-cnn``, seed 0), eval mode, and its test accuracy."""
    from netgaze.lab.train import train_classifier

    shutil.rmtree(out, ignore_errors=True)
    run = train_classifier(data="digits", model="simple-cnn", epochs=CLASSIFIER_EPOCHS, out=str(out), seed=0,
                           progress=False)
    return run.model.eval(), run.history[-1]["test_acc"]


def classifier_scores(classifier: torch.nn.Module, pictures: torch.Tensor) -> dict:
    """Confidence, class coverage and Inception Score of ``pictures`` under ``classifier``."""
    with torch.no_grad():
        probs = classifier(pictures).softmax(1)
    confidence, predicted = probs.max(1)
    counts = torch.bincount(predicted, minlength=probs.shape[1])
    marginal = probs.mean(0, keepdim=True)
    kl = (probs * (probs.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(1).mean()
    return {"mean_confidence": round(float(confidence.mean()), 3),
            "classes_predicted": int((counts > 0).sum()),
            "classes_with_2pct": int((counts >= 0.02 * len(pictures)).sum()),
            "inception_score": round(float(kl.exp()), 2), "predicted_counts": counts.tolist()}


def prior_samples(model: torch.nn.Module, n: int = N_SCORED) -> torch.Tensor:
    with torch.no_grad():
        return model.eval().sample(n, generator=torch.Generator().manual_seed(0))


def sample_quality(vaegan_run, work: Path, epochs: int, config: dict) -> dict:
    """Classifier scores of the VAE-GAN's prior samples, a plain conv VAE's and real test digits'."""
    from netgaze.lab.reconstruct import train_reconstruction
    from netgaze.viz import grid, save_png, to_uint8

    classifier, accuracy = digits_classifier(work / "digits-classifier")
    test = vaegan_run.dataset("test")
    real = torch.stack([test[i][0] for i in range(min(N_SCORED, len(test)))])
    out = work / "vae-conv-digits"
    shutil.rmtree(out, ignore_errors=True)
    began = time.time()
    vae = train_reconstruction("digits", "vae-conv", loss="bce", latent=20, epochs=epochs,
                               batch_size=config["batch_size"], lr=config["lr"], out=out, seed=0, progress=False)
    vae_seconds = time.time() - began
    vae_samples = prior_samples(vae.model)
    save_png(grid(list(to_uint8(vae_samples[:16])), 8, scale=2), RESULTS / "vaegan-digits-vae-prior.png")
    result = {"classifier": {"model": "simple-cnn", "epochs": CLASSIFIER_EPOCHS, "seed": 0,
                             "test_accuracy": round(accuracy, 4)},
              "samples": N_SCORED, "vaegan_prior": classifier_scores(classifier, prior_samples(vaegan_run.model)),
              "vae_conv_prior": {**classifier_scores(classifier, vae_samples),
                                 "run": {"loss": "bce", "epochs": epochs, "batch_size": config["batch_size"],
                                         "lr": config["lr"], "seconds": round(vae_seconds, 1),
                                         "test_pixel_mse": round(vae.history[-1]["test_pixel_mse"], 5)}},
              "real_test_digits": classifier_scores(classifier, real)}
    for name in ("vaegan_prior", "vae_conv_prior", "real_test_digits"):
        r = result[name]
        print(f"  {name:16s}: confidence {r['mean_confidence']:.3f}, classes {r['classes_predicted']} "
              f"({r['classes_with_2pct']} with >= 2 %), inception score {r['inception_score']:.2f}")
    result["vaegan_at_least_vae"] = (result["vaegan_prior"]["inception_score"]
                                     >= result["vae_conv_prior"]["inception_score"])
    return result


def measure(name: str, data: str, out: Path, epochs: int, config: dict, data_options: dict | None = None) -> dict:
    run, seconds = train(data, out, epochs, config, data_options)
    result = {"data": data if name == "digits" else "shapes as a 64x64 PNG image folder (400 train / 100 test)",
              "epochs": epochs, "config": config, "seconds": round(seconds, 1), **stability(run.history),
              "mean_picture_pixel_mse": round(mean_picture_mse(run), 5), **pictures(run, name)}
    result["beats_mean_picture"] = result["test_pixel_mse"][-1] < result["mean_picture_pixel_mse"]
    print(f"{name}: {epochs} epochs in {seconds:.0f} s, stable {result['stable']} {result['checks']}")
    for e in range(epochs):
        print(f"  epoch {e + 1:2d}: test pixel MSE {result['test_pixel_mse'][e]:.4f}  D acc real "
              f"{result['train_acc_real'][e]:.2f} recon {result['train_acc_rec'][e]:.2f} prior "
              f"{result['train_acc_prior'][e]:.2f}  GAN dec {result['train_gan_dec'][e]:.2f} dis "
              f"{result['train_gan_dis'][e]:.2f}  D/dec updates {result['dis_updates'][e]:.2f}/"
              f"{result['dec_updates'][e]:.2f}")
    print(f"  mean-picture pixel MSE {result['mean_picture_pixel_mse']:.4f}")
    if name == "digits":
        result["prior_sample_quality"] = sample_quality(run, out.parent, epochs, config)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs-folder", type=int, default=10)
    parser.add_argument("--epochs-digits", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="where the folder and the runs go (default: a temporary folder)")
    parser.add_argument("--note", default="", help="the machine's conditions, stored with the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="quality-vaegan-"))
    print(f"runs in {work}")
    began = time.time()
    folder = write_shapes_folder(work / "shapes64")
    results = {"criteria": {"mse_drop": MSE_DROP, "dis_balanced_accuracy_band": list(ACC_BAND), "loss_cap": LOSS_CAP},
               "conditions": f"torch threads {args.threads}; {args.note or 'load not recorded'}",
               "folder64": measure("folder64", str(folder), work / "vaegan-folder64", args.epochs_folder,
                                   FOLDER_CONFIG, {"size": 64}),
               "digits": measure("digits", "digits", work / "vaegan-digits", args.epochs_digits, DIGITS_CONFIG)}
    results["stable"] = results["folder64"]["stable"] and results["digits"]["stable"]
    results["seconds"] = round(time.time() - began, 1)
    from netgaze._util.atomic import atomic_write_json
    atomic_write_json(RESULTS / "vaegan.json", results)
    print(f"stable on both: {results['stable']}; wrote {RESULTS / 'vaegan.json'} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
