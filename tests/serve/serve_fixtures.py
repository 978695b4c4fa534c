"""Tiny runs for the explorer's tests: a classifier, a conv VAE, a conditional VAE and an FCN, trained in seconds."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

LOCAL_URL = "http://127.0.0.1"  # the Host a browser on this machine sends (the Host rule refuses "testserver")
EVIL = '<img src=x onerror="window.__xss=1">'
ATOL = 1e-5      # served maps against the library call


def answer_map(answer: dict, key: str = "map"):
    """An answer's map as a tensor (a dict of tensors when several layers were asked for)."""
    value = answer[key]
    return {k: torch.tensor(v) for k, v in value.items()} if isinstance(value, dict) else torch.tensor(value)


def grey_png(size: int) -> bytes:
    """A grey square PNG of ``size`` pixels a side."""
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.new("L", (size, size), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def make_runs(root: Path) -> dict[str, Path]:
    """Train the three runs under ``root`` (once; reused when present) and a copy of the classifier
    whose first class name is HTML (the escaping test)."""
    from netgaze.lab.reconstruct import train_reconstruction
    from netgaze.lab.segment import train_segmentation
    from netgaze.lab.train import train_classifier

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = Path(root)
        runs = {"cnn": root / "cnn", "vae": root / "vae", "fcn": root / "fcn", "cvae": root / "cvae"}
        if not (runs["cnn"] / "run.json").is_file():
            train_classifier(data="shapes", model="simple-cnn", epochs=2, out=str(runs["cnn"]),
                             data_options={"n": 128, "size": 32}, model_options={"channels": [8, 16, 16, 16]},
                             progress=False, seed=0)
        if not (runs["vae"] / "run.json").is_file():
            train_reconstruction("digits", "vae-conv", latent=4, epochs=1, batch_size=256, out=runs["vae"],
                                 model_args={"width": 4, "activation": "relu"}, progress=False)
        if not (runs["cvae"] / "run.json").is_file():
            train_reconstruction("digits", "cvae", latent=4, epochs=1, batch_size=256, out=runs["cvae"],
                                 model_args={"width": 4, "arch": "conv"}, progress=False)
        if not (runs["fcn"] / "run.json").is_file():
            train_segmentation("shapes", "simple", "fcn8", epochs=1, out=runs["fcn"],
                               data_options={"n": 24, "size": 24}, batch_size=12, progress=False)
        evil = root / "evil"
        if not evil.is_dir():
            shutil.copytree(runs["cnn"], evil)
            for meta in list((evil / "checkpoints").glob("epoch-*.json")) + [evil / "run.json"]:
                data = json.loads(meta.read_text())
                if "classes" in data:
                    data["classes"] = [EVIL] + data["classes"][1:]
                    meta.write_text(json.dumps(data))
        runs["evil"] = evil
        return runs
    finally:
        torch.set_num_threads(before)


def with_concepts(root: Path, cnn: Path) -> Path:
    """A copy of the tiny classifier run with its concept atlas (``netgaze study concepts``), made once."""
    from netgaze.analyses.run_studies import concepts_study

    run = Path(root) / "concepts"
    if not (run / "artifacts" / "concepts" / "concepts.json").is_file():
        shutil.copytree(cnn, run, ignore=shutil.ignore_patterns("artifacts"), dirs_exist_ok=True)
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            concepts_study(run, k=6, n_channels=6, featureviz_steps=0, progress=False)
        finally:
            torch.set_num_threads(before)
    return run
