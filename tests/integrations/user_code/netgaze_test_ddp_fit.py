"""A two-process data-parallel Lightning fit (``ddp_spawn`` on the CPU, gloo) with netgaze's callback:
``python netgaze_test_ddp_fit.py RUN_FOLDER`` prints the final weights' checksum from rank 0."""
from __future__ import annotations

import hashlib
import sys
import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from netgaze.integrations.lightning import RunCallback
from netgaze_test_lit import LitClassifier


def data(n: int = 32) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    for i in range(n):
        x[i, 0, :4, 2 * int(y[i]):2 * int(y[i]) + 3] += 1.0
    return TensorDataset(x, y)


class Checksum(pl.Callback):
    """Prints, on every rank, the rank and a checksum of the trained network's weights at the end."""

    def on_fit_end(self, trainer, module):
        state = module.model.state_dict()
        digest = hashlib.sha256(b"".join(state[k].detach().cpu().numpy().tobytes() for k in sorted(state))).hexdigest()
        print(f"RANK {trainer.global_rank} {digest}", flush=True)


def main(run: str) -> None:
    torch.manual_seed(0)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[RunCallback(run, build="netgaze_test_lit:TinyNet",
                                                build_args={"width": 4, "classes": 3}, data={"test": data(12)},
                                                classes=["a", "b", "c"], module_attr="model"), Checksum()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(LitClassifier(), DataLoader(data(), batch_size=8), DataLoader(data(12), batch_size=6))


if __name__ == "__main__":
    main(sys.argv[1])
