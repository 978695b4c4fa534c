"""Every subcommand against a table of bad inputs, through the real ``netgaze`` command.

Each case must end with exit status 2, exactly one line on stderr that starts with
``netgaze COMMAND: error:`` and names the problem, no traceback, and nothing written: its
working folder stays empty and the shared run folders and files are left exactly as they
were. A representative subset runs as separate ``python -m netgaze`` processes (at least
one per subcommand); the whole table also runs through one process that calls
``netgaze.cli.main`` once per case (``bad_input_runner.py``), so the table stays fast.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from hostile_runs import hostile_runs  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
RUNNER = Path(__file__).with_name("bad_input_runner.py")
TINY = ["--n", "16", "--size", "16", "--quiet", "--epochs", "1"]
NO_GPU_DEVICE = "cuda:99" if torch.cuda.is_available() else "cuda"

# (argv with {R} = runs root and {F} = files root, text the error line must contain)
CASES: list[tuple[list[str], str]] = [
    # train classify
    (["train", "classify", *TINY, "--epochs", "0", "--out", "o"], "argument --epochs: must be at least 1, got 0"),
    (["train", "classify", *TINY, "--lr", "-1", "--out", "o"], "argument --lr: must be positive"),
    (["train", "classify", *TINY, "--lr", "nan", "--out", "o"], "argument --lr: must be a finite number"),
    (["train", "classify", *TINY, "--lr", "inf", "--out", "o"], "argument --lr: must be a finite number"),
    (["train", "classify", *TINY, "--batch-size", "0", "--out", "o"], "argument --batch-size"),
    (["train", "classify", *TINY, "--device", "gpu", "--out", "o"], "unknown device 'gpu'"),
    (["train", "classify", *TINY, "--device", NO_GPU_DEVICE, "--out", "o"], f"device '{NO_GPU_DEVICE}'"),
    (["train", "classify", *TINY, "--out", "{F}/afile.txt"], "output folder {F}/afile.txt is a file"),
    (["train", "classify", *TINY, "--out", "{F}/afile.txt/run"], "{F}/afile.txt is a file"),
    (["train", "classify", "--n", "0", "--size", "16", "--quiet", "--out", "o"], "argument --n"),
    (["train", "classify", "--n", "16", "--size", "0", "--quiet", "--out", "o"], "argument --size"),
    (["train", "classify", *TINY, "--workers", "-1", "--out", "o"], "argument --workers"),
    (["train", "classify", *TINY, "--seed", "-3", "--out", "o"], "argument --seed"),
    (["train", "classify", *TINY, "--epochs", "²", "--out", "o"], "argument --epochs: expected a whole number"),
    (["train", "classify", *TINY, "--model", "nope", "--out", "o"], "unknown model 'nope'"),
    (["train", "classify", "--n", "16", "--size", "16", "--quiet", "--marker-classes", "2", "--marker-rate", "2",
      "--out", "o"], "argument --marker-rate"),
    (["train", "classify", "--n", "16", "--size", "16", "--quiet", "--marker-rate", "0.5", "--out", "o"],
     "need --marker-classes"),
    (["train", "classify", *TINY, "--lr=0.1", "--bogus", "--out", "o"], "unrecognized arguments: --bogus"),
    (["train", "classify", *TINY, "--model-option", "channels=[0,0,0,0]", "--out", "o"],
     "channels must be whole numbers >= 1"),
    (["train", "classify", *TINY, "--model-option", "bogus=1", "--out", "o"], "takes no argument 'bogus'"),
    (["train", "classify", "--quiet", "--epochs", "1", "--data", "{F}/oneper", "--out", "o"],
     "one picture per class cannot be split"),
    (["train", "classify", "--quiet", "--epochs", "1", "--data", "{F}/nope", "--out", "o"], "{F}/nope"),
    (["train", "classify", "--quiet", "--epochs", "1", "--data", "mnist:{F}/mnistbomb", "--out", "o"],
     "decompression bomb"),
    (["train", "classify", "--quiet", "--epochs", "3", "--resume", "--out", "{R}/bad-runjson"],
     "{R}/bad-runjson/run.json is damaged"),
    # sizes past a stated limit are refused before anything is allocated
    (["train", "classify", "--quiet", "--data", "shapes", "--n", "1000000000", "--out", "o"],
     "argument --n: at most 200,000 pictures, got 1000000000"),
    (["train", "classify", "--quiet", "--data", "shapes", "--size", "100000", "--out", "o"],
     "argument --size: at most 4,096 pixels a side"),
    (["serve", "--workers", "1000", "{R}/cls"], "argument --workers: at most 64 processes"),
    (["explain", "--model", "torchvision:resnet18", "--size", "100000", "--images", "{F}/ok.png", "--out", "o"],
     "argument --size: at most 4,096 pixels a side"),
    (["visualize", "--model", "torchvision:resnet18", "--layer", "layer4", "--channels", "0-1000000", "--out", "o"],
     "--channels names more than 4,096 units"),
    # train reconstruct
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--latent", "0", "--out", "o"], "argument --latent"),
    (["train", "reconstruct", "--quiet", "--epochs", "0", "--out", "o"], "argument --epochs"),
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--lr", "nan", "--out", "o"], "argument --lr"),
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--erase", "2", "--model", "dvae", "--out", "o"],
     "argument --erase: must lie between 0 and 1"),
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--width", "0", "--model", "vae-conv", "--out", "o"],
     "argument --width"),
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--device", NO_GPU_DEVICE, "--out", "o"], "argument --device"),
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--batch-size", "0", "--out", "o"], "argument --batch-size"),
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--model", "vaegan", "--feature-stage", "9", "--out", "o"],
     "feature_stage must lie in 0..1"),
    # train segment
    (["train", "segment", "--quiet", "--epochs", "1", "--fc-channels", "0", "--encoder", "alexnet",
      "--allow-random-init", "--out", "o"], "argument --fc-channels"),
    (["train", "segment", "--quiet", "--epochs", "1", "--n", "0", "--out", "o"], "argument --n"),
    (["train", "segment", "--quiet", "--epochs", "1", "--size", "0", "--out", "o"], "argument --size"),
    (["train", "segment", "--quiet", "--epochs", "0", "--out", "o"], "argument --epochs"),
    (["train", "segment", "--quiet", "--epochs", "1", "--lr", "-1", "--out", "o"], "argument --lr"),
    (["train", "segment", "--quiet", "--epochs", "1", "--data", "{F}/nope", "--out", "o"], "{F}/nope"),
    # explain
    (["explain", "--run", "{R}/seg", "--images", "{F}/ok.png", "--out", "o"], "{R}/seg is a segment run"),
    (["explain", "--run", "{R}/vae", "--images", "{F}/ok.png", "--out", "o"], "{R}/vae is a reconstruct run"),
    (["explain", "--run", "{R}/nope", "--images", "{F}/ok.png", "--out", "o"], "no such run folder: {R}/nope"),
    (["explain", "--run", "{R}/bad-runjson", "--images", "{F}/ok.png", "--out", "o"], "run.json is damaged"),
    (["explain", "--run", "{R}/bad-ckpt", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-ckpt/checkpoints/epoch-0001.safetensors does not match its metadata's checksum: the checkpoint is damaged"),
    (["explain", "--run", "{R}/bad-meta", "--images", "{F}/ok.png", "--out", "o"], "epoch-0001.json is damaged"),
    (["explain", "--run", "{R}/bad-nosum", "--images", "{F}/ok.png", "--out", "o"],
     "epoch-0001.safetensors has no checksum in its metadata (weights_sha256), so it cannot be checked"),
    (["explain", "--run", "{R}/bad-hist", "--images", "{F}/ok.png", "--out", "o"], "history.jsonl: line 1 is not JSON"),
    (["explain", "--run", "{R}/bad-weights", "--images", "{F}/ok.png", "--out", "o"], "does not fit the model"),
    # hostile run folders: each one line naming the file
    (["explain", "--run", "{R}/bad-deep", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-deep/run.json is damaged: JSON nested too deep"),
    (["explain", "--run", "{R}/bad-bigint", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-bigint/history.jsonl: line 1 is not usable JSON"),
    (["explain", "--run", "{R}/bad-epochs", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-epochs/run.json is damaged: epochs must be a whole number"),
    (["explain", "--run", "{R}/bad-epochs-nan", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-epochs-nan/run.json is damaged: epochs must be a whole number"),
    (["explain", "--run", "{R}/bad-meta-nan", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-meta-nan/checkpoints/epoch-0001.json is damaged: epoch must be a whole number"),
    (["explain", "--run", "{R}/bad-meta-big", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-meta-big/checkpoints/epoch-0001.json is damaged: epoch must be a whole number"),
    (["explain", "--run", "{R}/bad-size", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-size/run.json is damaged: data_options.size must be a whole number"),
    (["explain", "--run", "{R}/bad-opts", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-opts/run.json is damaged: data_options must be a JSON object"),
    (["explain", "--run", "{R}/bad-data", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-data/run.json is damaged: data must be a string"),
    (["embed", "--run", "{R}/bad-proc", "--method", "pca", "--out", "o"], "cannot read image folder /proc"),
    (["study", "layers", "{R}/bad-deep", "--out", "o"], "{R}/bad-deep/run.json is damaged: JSON nested too deep"),
    (["study", "epochs", "{R}/bad-bigint", "--out", "o"], "{R}/bad-bigint/history.jsonl: line 1"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/missing.png", "--out", "o"], "no such picture: {F}/missing.png"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/bomb.png", "--out", "o"], "{F}/bomb.png"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/notpic.png", "--out", "o"], "cannot read picture {F}/notpic.png"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/ok.png", "--target", "²", "--out", "o"], "unknown class '²'"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/ok.png", "--target", "99", "--out", "o"], "unknown class '99'"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/ok.png", "--method", "gradcom", "--out", "o"],
     "unknown method 'gradcom'"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/ok.png", "--layer", "nope", "--out", "o"], "unknown layer 'nope'"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/ok.png", "--layer", "classifier", "--out", "o"],
     "pick a spatial layer"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/ok.png", "--out", "{F}/afile.txt"], "is a file"),
    (["explain", "--model", "torchvision:resnet18", "--size", "0", "--images", "{F}/ok.png", "--out", "o"],
     "argument --size"),
    (["explain", "--model", "torchvision:resnet18", "--weights", "{F}/afile.txt", "--images", "{F}/ok.png",
      "--out", "o"], "cannot read weights from {F}/afile.txt"),
    (["explain", "--model", "torchvision:resnet18", "--weights", "{F}/wrong.pth", "--images", "{F}/ok.png",
      "--out", "o"], "{F}/wrong.pth does not fit torchvision:resnet18"),
    (["explain", "--run", "{R}/cls", "--all", "--shard-size", "0", "--out", "o"], "argument --shard-size"),
    (["explain", "--run", "{R}/cls", "--all", "--batch-size", "0", "--out", "o"], "argument --batch-size"),
    (["explain", "--run", "{R}/cls", "--all", "--split", "nope", "--out", "o"], "split"),
    (["explain", "--run", "{R}/cls", "--all", "--target", "²", "--out", "o"], "--target INDEX or --target label"),
    (["explain", "--run", "{R}/seg", "--all", "--out", "o"], "{R}/seg is a segment run"),
    # --model's class names and head
    (["explain", "--model", "torchvision:mobilenet_v3_small", "--weights", "{F}/zero-classes.pth", "--size", "32",
      "--images", "{F}/ok.png", "--out", "o"], "{F}/zero-classes.pth has a head of 0 classes"),
    (["visualize", "--model", "torchvision:mobilenet_v3_small", "--weights", "{F}/zero-classes.pth", "--layer",
      "features", "--out", "o"], "{F}/zero-classes.pth has a head of 0 classes"),
    (["explain", "--model", "torchvision:mobilenet_v3_small", "--labels", "{F}/latin1.txt", "--size", "32",
      "--images", "{F}/ok.png", "--out", "o"], "cannot read {F}/latin1.txt as UTF-8 text"),
    # a segmenter's --target: ASCII digits only, finite coordinates
    (["explain", "--model", "torchvision:lraspp_mobilenet_v3_large", "--weights", "{F}/lraspp.pth", "--size", "32",
      "--images", "{F}/ok.png", "--target", "class:²", "--out", "o"], "unknown class '²'"),
    (["explain", "--model", "torchvision:lraspp_mobilenet_v3_large", "--weights", "{F}/lraspp.pth", "--size", "32",
      "--images", "{F}/ok.png", "--target", "class:1@nan,0,10,10", "--out", "o"], "takes finite pixel coordinates"),
    (["explain", "--model", "torchvision:lraspp_mobilenet_v3_large", "--weights", "{F}/lraspp.pth", "--size", "32",
      "--images", "{F}/ok.png", "--target", "class:1@0,0,inf,10", "--out", "o"], "takes finite pixel coordinates"),
    (["explain", "--model", "torchvision:lraspp_mobilenet_v3_large", "--weights", "{F}/lraspp.pth", "--size", "32",
      "--images", "{F}/ok.png", "--target", "class:1@0,0,1e400,10", "--out", "o"], "takes finite pixel coordinates"),
    # embed
    (["embed", "--run", "{R}/cls", "--limit", "0", "--out", "o"], "argument --limit"),
    (["embed", "--run", "{R}/cls", "--dims", "4", "--out", "o"], "argument --dims: invalid choice"),
    (["embed", "--run", "{R}/cls", "--limit", "3", "--out", "o"], "--limit must be at least 6"),
    (["embed", "--run", "{R}/cls", "--perplexity", "nan", "--out", "o"], "argument --perplexity"),
    (["embed", "--run", "{R}/cls", "--batch-size", "0", "--out", "o"], "argument --batch-size"),
    (["embed", "--run", "{R}/cls", "--perplexity", "1e-9", "--out", "o"], "argument --perplexity: must lie between 1"),
    (["embed", "--run", "{R}/cls", "--seed", "4294967296", "--out", "o"], "argument --seed: at most 2**32 - 1"),
    (["train", "classify", *TINY, "--seed", "99999999999999999999", "--out", "o"], "argument --seed: at most 2**32 - 1"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--seed", "4294967296", "--out", "o"], "argument --seed"),
    (["study", "layers", "{R}/cls", "--seed", "4294967296", "--out", "o"], "argument --seed"),
    (["embed", "--run", "{R}/cls", "--split", "nope", "--out", "o"], "split"),
    (["embed", "--run", "{R}/cls", "--epoch", "99", "--out", "o"], "no checkpoint of epoch 99"),
    (["embed", "--run", "{R}/cls", "--out", "{F}/afile.txt"], "is a file"),
    (["embed", "--run", "{R}/cls", "--tensorboard", "{F}/afile.txt", "--out", "o"], "is a file"),
    (["embed", "--run", "{R}/bad-ckpt", "--out", "o"], "the checkpoint is damaged"),
    (["embed", "--run", "{R}/tiny", "--method", "pca", "--out", "o"], "holds 2 picture(s); embed needs at least 6"),
    (["embed", "--run", "{R}/one", "--split", "train", "--method", "pca", "--out", "o"], "one class only ('a')"),
    # visualize
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--steps", "-1", "--out", "o"], "argument --steps"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--size", "0", "--out", "o"], "argument --size"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--tv", "nan", "--out", "o"], "argument --tv"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--batch-size", "0", "--out", "o"], "argument --batch-size"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--device", NO_GPU_DEVICE, "--out", "o"],
     "argument --device"),
    (["visualize", "--run", "{R}/cls", "--activations", "{F}/bomb.png", "--out", "o"], "{F}/bomb.png"),
    (["visualize", "--run", "{R}/cls", "--activations", "{F}/missing.png", "--out", "o"], "no such file"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--out", "{F}/afile.txt"], "is a file"),
    (["visualize", "--run", "{R}/vae", "--layer", "logits", "--steps", "1", "--out", "o"], "is a reconstruct run"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--channels", "x", "--out", "o"], "--channels"),
    # study
    (["study", "layers", "{R}/vae", "--out", "o"], "`study layers` needs a classify run; {R}/vae is a reconstruct run"),
    (["study", "layers", "{R}/seg", "--out", "o"], "{R}/seg is a segment run"),
    (["study", "epochs", "{R}/vae", "--out", "o"], "{R}/vae is a reconstruct run"),
    (["study", "models", "{R}/cls", "{R}/vae", "--out", "o"], "{R}/vae is a reconstruct run"),
    (["study", "latent", "{R}/cls", "--out", "o"], "{R}/cls is a classify run"),
    (["study", "area", "{R}/cls", "--out", "o"], "{R}/cls is a classify run"),
    (["study", "layers", "{R}/cls", "--images", "0", "--out", "o"], "argument --images"),
    (["study", "epochs", "{R}/cls", "--eval", "-1", "--out", "o"], "argument --eval"),
    (["study", "epochs", "{R}/bad-hist", "--out", "o"], "history.jsonl: line 1 is not JSON"),
    (["study", "layers", "{R}/bad-runjson", "--out", "o"], "run.json is damaged"),
    (["study", "layers", "{R}/bad-ckpt", "--out", "o"], "the checkpoint is damaged"),
    (["study", "layers", "{R}/cls", "--out", "{F}/afile.txt"], "is a file"),
    (["study", "layers", "{R}/nope", "--out", "o"], "no such run folder"),
    (["study", "strategies", "{R}/vae", "--out", "o"], "{R}/vae is a reconstruct run"),
    (["study", "strategies", "{R}/cls", "--clusters", "0", "--out", "o"], "argument --clusters"),
    (["study", "strategies", "{R}/bad-nan", "--out", "o"], "{R}/bad-nan/checkpoints/epoch-0001.safetensors holds NaN"),
    (["study", "dissect", "{R}/bad-nan", "--out", "o"], "holds NaN or infinite weights"),
    (["study", "layers", "{R}/bad-nan", "--out", "o"], "holds NaN or infinite weights"),
    # NaN or infinite weights, or scores that overflow: one line naming the weights, never "predicted x (nan%)"
    (["explain", "--run", "{R}/bad-nan", "--images", "{F}/ok.png", "--out", "o"],
     "{R}/bad-nan/checkpoints/epoch-0001.safetensors holds NaN or infinite weights"),
    (["explain", "--run", "{R}/bad-nan", "--all", "--out", "o"], "{R}/bad-nan/checkpoints/epoch-0001.safetensors holds NaN"),
    (["explain", "--model", "torchvision:resnet18", "--weights", "{F}/nan.pth", "--images", "{F}/ok.png", "--size", "32",
      "--out", "o"], "{F}/nan.pth: conv1.weight holds 9408 NaN or infinite value(s)"),
    (["explain", "--model", "torchvision:resnet18", "--weights", "{F}/overflow.pth", "--images", "{F}/ok.png",
      "--size", "32", "--out", "o"], "the model gives NaN or infinite class scores with {F}/overflow.pth"),
    (["visualize", "--run", "{R}/bad-nan", "--layer", "logits", "--out", "o"], "holds NaN or infinite weights"),
    # a named model's random-weights warning never comes before an error (the error is the one line)
    (["explain", "--model", "torchvision:resnet18", "--images", "{F}/notpic.png", "--size", "32", "--out", "o"],
     "cannot read picture {F}/notpic.png"),
    (["explain", "--model", "torchvision:resnet18", "--images", "{F}/ok.png", "--layer", "nope", "--size", "32",
      "--out", "o"], "unknown layer 'nope'"),
    (["explain", "--model", "timm:resnet18", "--images", "{F}/ok.png", "--target", "zebra", "--size", "32",
      "--out", "o"], "unknown class 'zebra'"),
    (["embed", "--run", "{R}/bad-nan", "--out", "o"], "{R}/bad-nan/checkpoints/epoch-0001.safetensors holds NaN"),
    (["study", "top-examples", "{R}/cls", "--k", "0", "--out", "o"], "argument --k"),
    (["study", "dissect", "{R}/cls", "--split", "nope", "--out", "o"], "argument --split"),
    # serve (never started here: every case fails before the server would)
    (["serve"], "give run folders"),
    (["serve", "{R}/nope"], "no such run folder: {R}/nope"),
    (["serve", "{R}/cls", "--port", "99999"], "argument --port"),
    (["serve", "{R}/cls", "--workers", "0"], "argument --workers"),
    (["serve", "{R}/cls", "--token", ""], "argument --token: a token has at least 8 characters"),
    (["serve", "--model", "torchvision:resnet18", "--images", "{F}/afile.txt"], "is a file, not a folder"),
    # report
    (["report", "{R}/nope", "--out", "o.html"], "no such run folder: {R}/nope"),
    (["report", "{R}/cls", "--out", "{F}"], "{F} is a folder"),
    (["report", "{R}/cls", "--out", "{F}/afile.txt/report.html"], "{F}/afile.txt is a file"),
    (["report", "{F}/oneper", "--out", "o.html"], "{F}/oneper is not a run folder"),
    (["report", "{R}/cls", "--out", "{F}/fifo"], "--out {F}/fifo is not a regular file"),   # it used to hang
    # demo
    (["demo", "--out", "{F}/afile.txt", "--quick", "--quiet"], "output folder {F}/afile.txt is a file"),
    # an output folder nothing can be written in: one line naming it, in every command that writes
    (["train", "classify", *TINY, "--out", "/proc/netgaze-test"], "output folder /proc/netgaze-test cannot be written"),
    (["train", "reconstruct", "--quiet", "--epochs", "1", "--out", "/proc/netgaze-test"], "/proc is not writable"),
    (["train", "segment", "--quiet", "--epochs", "1", "--out", "/proc/netgaze-test/run"], "/proc is not writable"),
    (["explain", "--run", "{R}/cls", "--images", "{F}/ok.png", "--out", "/proc/netgaze-test"],
     "output folder /proc/netgaze-test cannot be written"),
    (["embed", "--run", "{R}/cls", "--out", "/proc/netgaze-test"], "output folder /proc/netgaze-test cannot be written"),
    (["embed", "--run", "{R}/cls", "--tensorboard", "/proc/netgaze-test", "--out", "o"], "/proc is not writable"),
    (["visualize", "--run", "{R}/cls", "--layer", "logits", "--out", "/proc/netgaze-test"], "/proc is not writable"),
    (["study", "layers", "{R}/cls", "--out", "/proc/netgaze-test"], "output folder /proc/netgaze-test cannot be written"),
    (["report", "{R}/cls", "--out", "/proc/netgaze-test/report.html"], "cannot write /proc/netgaze-test/report.html"),
    (["demo", "--out", "/proc/netgaze-test", "--quick", "--quiet"], "output folder /proc/netgaze-test cannot be written"),
]



def _command(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "train" else argv[0]


def _real_cases() -> list[int]:
    """The first case of every subcommand, and for train and explain the GPU, picture and
    damaged-checkpoint cases."""
    seen: set[str] = set()
    picked = []
    for i, (argv, _) in enumerate(CASES):
        special = any(s in argv for s in ("gpu", "{F}/bomb.png", "{R}/bad-ckpt"))
        if _command(argv) not in seen or (special and argv[0] in ("train", "explain")):
            seen.add(_command(argv))
            picked.append(i)
    return picked


REAL = _real_cases()  # one real `python -m netgaze` process each


def _write_files(root: Path) -> None:
    root.mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(root / "ok.png")
    Image.new("1", (20000, 20000)).save(root / "bomb.png")  # 400 M pixels in a 48 KB file
    (root / "afile.txt").write_text("x")
    os.mkfifo(root / "fifo")
    (root / "notpic.png").write_text("not a picture")
    torch.save({"fc.weight": torch.zeros(3, 3)}, root / "wrong.pth")
    import torchvision
    segmenter = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None)
    torch.save(segmenter.state_dict(), root / "lraspp.pth")  # a segmenter (21 classes) without a random-weights warning
    headless = torchvision.models.mobilenet_v3_small(weights=None).state_dict()
    headless["classifier.3.weight"], headless["classifier.3.bias"] = torch.zeros(0, 1024), torch.zeros(0)
    torch.save(headless, root / "zero-classes.pth")  # a head of 0 classes
    (root / "latin1.txt").write_bytes("caf\xe9\nbar\n".encode("latin-1"))  # class names, not UTF-8
    small = torchvision.models.resnet18(num_classes=3).state_dict()
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in small.items()},
               root / "nan.pth")                                   # a diverged fine-tuning
    small["fc.weight"] = torch.full_like(small["fc.weight"], 3e38)  # finite weights whose scores overflow
    torch.save(small, root / "overflow.pth")
    rng = np.random.default_rng(0)
    for name, classes, n in (("oneper", "ab", 1), ("tinyset", "ab", 3), ("oneclass", "a", 12)):
        for c in classes:
            (root / name / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / name / c / f"{i}.png")
    # a 1 GB claim in a small gzip: the trailer agrees with the header, the ratio gives it away
    bomb = root / "mnistbomb"
    bomb.mkdir()
    header = struct.pack(">I", 0x803) + struct.pack(">III", 1_000_000, 100, 10)
    packed = bytearray(gzip.compress(header + bytes(1 << 16)))
    packed[-4:] = ((len(header) + 1_000_000_000) % 2 ** 32).to_bytes(4, "little")
    (bomb / "train-images-idx3-ubyte.gz").write_bytes(bytes(packed))
    (bomb / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, 1) + b"\0")


def _train_runs(root: Path, files: Path) -> None:
    from netgaze.lab.reconstruct import train_reconstruction
    from netgaze.lab.segment import train_segmentation
    from netgaze.lab.train import train_classifier

    train_classifier(data="shapes", epochs=1, out=str(root / "cls"), data_options={"n": 64, "size": 32},
                     model_options={"channels": [4, 4, 4, 4]}, progress=False)
    train_reconstruction("digits", "vae-linear", latent=2, epochs=1, batch_size=256, out=root / "vae",
                         model_args={"hidden": 16}, progress=False)
    train_segmentation("shapes", "simple", "fcn8", epochs=1, batch_size=16, out=str(root / "seg"),
                       data_options={"n": 32, "size": 32}, progress=False, examples=0)
    for name, folder in (("tiny", "tinyset"), ("one", "oneclass")):
        train_classifier(data=str(files / folder), epochs=1, out=str(root / name),
                         model_options={"channels": [4, 4, 4, 4]}, progress=False)
    for name in ("runjson", "ckpt", "meta", "hist", "weights", "nosum"):
        shutil.copytree(root / "cls", root / f"bad-{name}")
    (root / "bad-runjson" / "run.json").write_text("{broken")
    weights = root / "bad-ckpt" / "checkpoints" / "epoch-0001.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    (root / "bad-meta" / "checkpoints" / "epoch-0001.json").write_text("{not json")
    history = root / "bad-hist" / "history.jsonl"
    history.write_text("garbage{\n" + history.read_text())
    seg_weights = root / "seg" / "checkpoints" / "epoch-0001.safetensors"
    shutil.copyfile(seg_weights, root / "bad-weights" / "checkpoints" / "epoch-0001.safetensors")
    meta_path = root / "bad-weights" / "checkpoints" / "epoch-0001.json"  # intact file, wrong model
    meta = json.loads(meta_path.read_text())
    meta["weights_sha256"] = hashlib.sha256(seg_weights.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    hostile_runs(root)
    unsummed = root / "bad-nosum" / "checkpoints" / "epoch-0001.json"  # a checkpoint nobody can check
    meta = json.loads(unsummed.read_text())
    del meta["weights_sha256"]
    unsummed.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("bad-inputs")
    files, runs = base / "files", base / "runs"
    _write_files(files)
    runs.mkdir()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train_runs(runs, files)
    finally:
        torch.set_num_threads(before)
    return base, runs, files


def _expand(items: list[str], runs: Path, files: Path) -> list[str]:
    return [item.format(R=runs, F=files) for item in items]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and time, except the run folders' lock files (a start records its PID there)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".netgaze.lock"}


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1")
    return env


def _real(argv: list[str], cwd: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "netgaze", *argv], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)
    return {"code": done.returncode, "stderr": done.stderr, "written": sorted(os.listdir(cwd)), "stdout": done.stdout}


def _check(argv: list[str], expected: str, result: dict) -> None:
    command = _command(argv)
    lines = result["stderr"].splitlines()
    where = f"netgaze {' '.join(argv)}"
    assert "Traceback" not in result["stderr"], f"{where}: traceback\n{result['stderr']}"
    assert result["code"] == 2, f"{where}: exit {result['code']}\n{result['stderr']}"
    assert len(lines) == 1, f"{where}: {len(lines)} stderr lines\n{result['stderr']}"
    assert lines[0].startswith(f"netgaze {command}: error: "), f"{where}: {lines[0]}"
    assert expected in lines[0], f"{where}: {expected!r} not in {lines[0]!r}"
    assert result["written"] == [], f"{where}: wrote {result['written']}"


def test_every_bad_input_is_one_line_exit_2_nothing_written(world, tmp_path):
    base, runs, files = world
    cases = [(_expand(argv, runs, files), expected.format(R=runs, F=files)) for argv, expected in CASES]
    before = _tree(base)
    (tmp_path / "cases.json").write_text(json.dumps([argv for argv, _ in cases]))
    real_dirs = [tmp_path / f"real-{i}" for i in REAL]
    for folder in real_dirs:
        folder.mkdir()
    batch = subprocess.Popen([sys.executable, str(RUNNER), str(tmp_path / "cases.json"), str(tmp_path / "out.json")],
                             cwd=tmp_path, env=_env())
    with ThreadPoolExecutor(max_workers=max(1, min(3, (os.cpu_count() or 2) - 1))) as pool:
        real = list(pool.map(lambda pair: _real(cases[pair[0]][0], pair[1]), zip(REAL, real_dirs)))
    assert batch.wait(timeout=600) == 0
    results = json.loads((tmp_path / "out.json").read_text())
    failures = []
    for (argv, expected), result in zip(cases, results):
        try:
            _check(argv, expected, result)
        except AssertionError as err:
            failures.append(str(err))
    for i, result in zip(REAL, real):
        try:
            _check(cases[i][0], cases[i][1], result)
        except AssertionError as err:
            failures.append("real process: " + str(err))
        assert result["stdout"] == ""
    assert not failures, "\n\n".join(failures)
    assert _tree(base) == before, "a failed command changed the shared run folders or files"
    assert {_command(CASES[i][0]) for i in REAL} == {"train classify", "train reconstruct", "train segment",
                                                     "explain", "embed", "visualize", "study", "report", "serve", "demo"}
