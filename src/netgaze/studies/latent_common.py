"""What the latent studies share: a VAE and its test pictures, means of q(z|x), decoding, tiles."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from netgaze import viz
from netgaze.errors import ArgumentError
from netgaze.lab.models.vae import VAE
from netgaze.studies.common import artifacts_dir, open_run, run_facts, write_manifest
from netgaze.studies.across_layers import StudyResult


class VAERun:
    """A trained VAE (eval mode), its test pictures and labels, and where to write.

    Args:
        run: a ``netgaze.lab.runs.Run`` or a run folder path.
        dataset: test pictures; None takes ``run.dataset("test")``.
        epoch: checkpoint (None: the last).
    """

    def __init__(self, run: Any, dataset: Any = None, epoch: int | None = None):
        self.run = open_run(run, epoch)
        self.model: VAE = self.run.model.eval()
        if not isinstance(self.model, VAE):
            raise ArgumentError(f"latent studies need a VAE run; {self.run.path} holds a {type(self.model).__name__}")
        self.dataset = dataset if dataset is not None else self.run.dataset("test")
        if hasattr(self.dataset, "tensors"):
            self.images, self.labels = self.dataset.tensors()
        else:
            pairs = [self.dataset[i] for i in range(len(self.dataset))]
            self.images = torch.stack([p[0] for p in pairs])
            self.labels = torch.tensor([int(p[1]) for p in pairs])
        self.classes = list(getattr(self.dataset, "classes", [])) or [str(c) for c in range(int(self.labels.max()) + 1)]
        self.folder = artifacts_dir(self.run)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None, batch: int = 256) -> torch.Tensor:
        """Means of q(z|x), [N, latent] (labels are used by a conditional VAE only)."""
        out = []
        for i in range(0, len(images), batch):
            y = labels[i:i + batch] if self.model.conditional else None
            out.append(self.model.encode(images[i:i + batch], y)[0])
        return torch.cat(out)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | int | None = None) -> torch.Tensor:
        """Pictures from latent codes; a conditional VAE needs ``labels`` (one, or one per code)."""
        if self.model.conditional and labels is None:
            raise ArgumentError("a conditional VAE decodes with labels")
        return self.model.decode(z, labels if self.model.conditional else None)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        y = labels if self.model.conditional else None
        return self.model(images, y)[0] if y is not None else self.model(images)[0]

    def class_means(self) -> torch.Tensor:
        """Mean latent code of each class over the test pictures, [K, latent] (NaN for absent classes)."""
        z = self.encode(self.images, self.labels)
        means = torch.full((len(self.classes), z.shape[1]), float("nan"))
        for k in range(len(self.classes)):
            chosen = self.labels == k
            if chosen.any():
                means[k] = z[chosen].mean(0)
        return means

    def save(self, name: str, title: str, figures: list[tuple[str, np.ndarray, str]], numbers: dict[str, Any],
             tensors: dict[str, torch.Tensor], method: str, tables: list[dict[str, Any]] | None = None) -> StudyResult:
        """Write each ``(file stem, picture, caption)`` as PNG and the manifest ``name.json`` (with ``tables``
        when given: ``{"title", "columns", "rows"}`` for the report)."""
        written, entries = [], []
        for stem, picture, caption in figures:
            written.append(viz.save_png(picture, self.folder / f"{stem}.png"))
            entries.append({"file": written[-1].name, "caption": caption})
        manifest = {"study": name, "title": title, **run_facts(self.run), "method": method,
                    "figures": entries, "numbers": numbers, **({"tables": tables} if tables is not None else {})}
        path = write_manifest(self.folder, name, manifest)
        return StudyResult(manifest=manifest, path=path, figures=written, maps=tensors)


def tiles(images: torch.Tensor) -> list[np.ndarray]:
    """uint8 tiles of pictures [N, C, H, W] in [0, 1]."""
    return list(viz.to_uint8(images))


def tile_scale(images: torch.Tensor) -> int:
    """Enlarge small pictures (28x28 -> x3) so the grid is readable."""
    return max(1, 84 // int(images.shape[-1]))


__all__ = ["VAERun", "tiles", "tile_scale"]
