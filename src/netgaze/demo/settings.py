"""The demo's sizes (``DemoSettings``) and their JSON form, which ``demo.json`` records so that a
later demo with other settings knows to set the old runs aside."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class DemoSettings:
    """Sizes of the demo; ``quick()`` is a smoke-test version of the same pipeline."""

    size: int = 48
    n_train: int | None = None  # shapes' own default: 2,000 train and 500 test pictures
    classifier_epochs: int = 8  # the shortcut is learned by epoch 2; the augmented model needs longer for shapes
    channels: tuple[int, ...] = (16, 32, 64, 64)
    digits_epochs: int = 5  # simple-cnn on digits with a 3x3 pooling grid: test accuracy 0.98 after 5
    digits_channels: tuple[int, ...] = (16, 32, 64, 64)
    layer_channels: int = 8  # channels per conv layer in the activation-maximization grid
    vae_epochs: int = 40  # about 0.55 s of CPU an epoch: test pixel MSE 0.0076 after 20 epochs
    cvae_epochs: int = 24
    dvae_epochs: int = 24
    vaegan_epochs: int = 20  # about 2 s of CPU an epoch; 0 leaves the VAE-GAN out
    vae_latent: int = 8
    vae_width: int = 16
    vae_batch_size: int = 32  # many small steps: sharper digits in the same time than batch 128
    morph_classes: tuple[int, int] | None = (0, 6)  # the class interpolation (None: the first test pictures' classes)
    fcn_epochs: int = 6
    n_eval: int = 200
    embed_limit: int = 500
    featureviz_steps: int = 96
    faithfulness_images: int = 64
    workers: int = 2  # processes running the step groups at once (1: everything in this process)

    @classmethod
    def quick(cls) -> "DemoSettings":
        return cls(size=32, n_train=256, classifier_epochs=2, channels=(8, 16, 16, 16), digits_epochs=1,
                   digits_channels=(8, 8, 8, 8), layer_channels=2, vae_epochs=1, cvae_epochs=1, dvae_epochs=1,
                   vaegan_epochs=0, vae_batch_size=128, fcn_epochs=1, n_eval=32, embed_limit=64, featureviz_steps=8,
                   faithfulness_images=8, workers=1)


def settings_json(settings: DemoSettings) -> dict[str, Any]:
    return json.loads(json.dumps(settings.__dict__, default=list))


def _settings_from_json(text: str) -> DemoSettings:
    values = json.loads(text)
    for key in ("channels", "digits_channels", "morph_classes"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return DemoSettings(**values)
