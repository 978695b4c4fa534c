"""The demo's dataset-wide step: a model with a planted shortcut, its strategies, dissection, top pictures.

``dataset_analyses(demo)`` trains a small CNN on ``shapes`` where 80% of the triangles' training
pictures carry a corner tag (the marker), then runs on its test pictures (half of them tagged):
``strategies`` of the triangle class (which should single out the tagged pictures as a shortcut),
``dissect`` of every conv layer against object / background / marker masks, and the top pictures
of the last stage's channels beside their activation-maximization pictures, and the concept atlas of
every class (the marker's concept should be named for the triangles). Sizes follow the
demo's own settings (``quick`` stays quick). Kept in its own module so ``demo.py`` only calls it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from netgaze.demo.session import DemoSession

MARKER_CLASS = 2  # triangle


def marker_options(demo: DemoSession) -> dict[str, Any]:
    """Data options of the marker run: the demo's picture size, at most 1,200 pictures, class 2 tagged."""
    s = demo.settings
    return {"n": min(1200, s.n_train or 1200), "size": s.size, "marker_classes": [MARKER_CLASS],
            "marker_rate": 0.8}


def dataset_analyses(demo: DemoSession) -> Path | None:
    """Train the marker run (resumed if present) and run the three analyses on it; returns the run path."""
    from netgaze.lab.train import train_classifier

    s = demo.settings
    path = demo.out / "cnn-marker"
    epochs = min(6, s.classifier_epochs)  # the quality bar's recipe (benchmarks/quality_strategies.py)
    demo.step("train cnn-marker", lambda: train_classifier(
        data="shapes", model="simple-cnn", epochs=epochs, batch_size=32, lr=2e-3, out=str(path),
        data_options=marker_options(demo), model_options={"channels": list(s.channels)}, seed=0, progress=False,
        resume=demo.resuming(path)))
    if not (path / "run.json").is_file():
        return None
    from netgaze.analyses import run_studies

    demo.step("strategies", lambda: run_studies.strategies_study(path, classes=[MARKER_CLASS], progress=False),
              path, "strategies")
    demo.step("dissection", lambda: run_studies.dissection_study(path, limit=min(200, s.n_eval), progress=False),
              path, "dissection")
    demo.step("top examples", lambda: run_studies.top_examples_study(
        path, layer=-1, channels=list(range(min(8, s.channels[-1]))), k=9,
        featureviz_steps=min(64, s.featureviz_steps), progress=False), path, "top_examples")
    demo.step("concepts", lambda: run_studies.concepts_study(
        path, n_channels=4, featureviz_steps=min(48, s.featureviz_steps), progress=False), path, "concepts")
    return path
