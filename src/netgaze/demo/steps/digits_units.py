"""Demo step: a digits classifier and activation maximization of its class units and of every conv layer.

Seed 003's figure is the class units of an MNIST classifier, which look like digits, and
filters of every layer that grow from edges to parts. The shapes classifiers of the demo
learned a background shortcut, so their class units are textures; this step trains
``simple-cnn`` on the embedded ``digits`` with a 3x3 pooling grid (so each class unit
weighs where strokes are) and renders its class units and its layers' channels.
"""
from __future__ import annotations

from netgaze.demo.session import DemoSession


def digits_classifier(demo: DemoSession) -> None:
    from netgaze.lab.train import train_classifier
    from netgaze.studies.units import class_units_study, layer_channels_study

    s = demo.settings
    path = demo.out / "digits-cnn"
    demo.step("train digits-cnn", lambda: train_classifier(
        data="digits", model="simple-cnn", epochs=s.digits_epochs, lr=3e-3, out=str(path), seed=0, progress=False,
        model_options={"channels": list(s.digits_channels), "pool_grid": 3}, resume=demo.resuming(path)))
    if not (path / "run.json").is_file():
        return
    demo.step("class units", lambda: class_units_study(path, steps=s.featureviz_steps), path, "featureviz")
    demo.step("layer channels", lambda: layer_channels_study(path, steps=s.featureviz_steps, channels=s.layer_channels),
              path, "layer_channels")
