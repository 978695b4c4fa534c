"""Tiny trained run folders shared by the study tests (trained once per test session)."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

ROOT = Path(tempfile.mkdtemp(prefix="netgaze-study-runs-"))
atexit.register(shutil.rmtree, ROOT, True)


@functools.lru_cache(maxsize=None)
def tiny_run(model: str = "simple-cnn", epochs: int = 2, augment: str = "none") -> Path:
    """A run folder: ``model`` trained on shapes (128 pictures of 32x32) for ``epochs`` epochs."""
    from netgaze.lab.train import train_classifier

    out = ROOT / f"{model}-{augment}-{epochs}"
    train_classifier(data="shapes", model=model, augment=augment, epochs=epochs, out=str(out),
                     data_options={"n": 128, "size": 32}, model_options={"channels": [8, 16, 16, 16]},
                     progress=False, seed=0)
    return out
