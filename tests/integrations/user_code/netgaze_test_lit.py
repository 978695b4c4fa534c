"""A user's LightningModule and network in a module of their own (importable by path, not ``__main__``):
what the Lightning integration's tests train. Tests put this folder on ``sys.path``."""
from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyNet(nn.Module):
    """One conv, global average pooling, a linear head: 1-channel 8x8 pictures, ``classes`` outputs."""

    def __init__(self, width: int = 4, classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class LitClassifier(pl.LightningModule):
    """The network under ``self.model``, with a loss module that has weights of its own (not the build's)."""

    def __init__(self, width: int = 4, classes: int = 3, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.model = TinyNet(width, classes)
        self.loss = nn.CrossEntropyLoss(weight=torch.ones(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, index):
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, index):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class BareLit(pl.LightningModule):
    """The network's layers directly on the LightningModule (its state dict is TinyNet's)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))

    def training_step(self, batch, index):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
