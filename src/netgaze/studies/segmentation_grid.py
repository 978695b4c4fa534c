"""The report's segmentation table: every encoder x decoder trained the same way, scored the same way.

``segmentation_grid(encoders=("alexnet", "vgg16"), decoders=("fcn8", "fcn32"), epochs=20,
out="runs/seg-grid")`` trains one run folder per cell (``OUT/DECODER-ENCODER``, resumed
when it exists, so an interrupted grid continues) and writes ``OUT/segmentation_grid.md``
and ``OUT/segmentation_grid.json`` (also in the first run's ``artifacts/``, where the
report finds it) with the columns of the report: Encoder, Decoder,
Mean Acc, total IoU, Epochs (plus pixel accuracy, frequency-weighted IoU and training
seconds, and ``Init``: how the encoder started). "total IoU" is the report's name for the
mean IoU over classes of ONE confusion matrix over the whole test split; both scores are
percentages of the last epoch. ``epochs`` and ``lr`` may differ per encoder (a VGG16 epoch
costs ~15 AlexNet epochs on a CPU); every decoder of one encoder gets the same, so the
decoders stay comparable within an encoder, and each row states its epochs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from netgaze.errors import ArgumentError
from netgaze.lab.models.fcn_encoders import weights_path
from netgaze.lab.runs import atomic_write_json, atomic_write_text
from netgaze.lab.segment import train_segmentation

COLUMNS = ["Encoder", "Decoder", "Mean Acc", "total IoU", "Epochs", "Pixel Acc", "FW IoU", "Seconds", "Init"]
RANDOM_INIT = "random init (no ImageNet weights on this machine)"


@dataclass
class GridResult:
    """Rows of the table (one dict per run, keys ``COLUMNS`` plus ``run``), and the files written."""

    rows: list[dict[str, Any]]
    markdown: Path
    json: Path


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A Markdown table of ``rows`` (numbers with one decimal)."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.1f}"
        return "" if value is None else str(value)
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def encoder_init(encoder: str, weights: str | None) -> str:
    """How an encoder starts: "random init" (simple), "ImageNet (FILE)" or ``RANDOM_INIT``.

    The same rule as the builder's: a given file, else the torch hub cache, else random
    weights (only when allowed; otherwise training fails before any row is written).
    """
    if encoder == "simple":
        return "random init"
    path = weights_path(encoder, weights)
    return f"ImageNet ({path.name})" if path.is_file() else RANDOM_INIT


def grid_row(run) -> dict[str, Any]:
    """The table row of a finished segmentation run (last epoch's test scores, in percent)."""
    last = run.history[-1]
    args = run.config.get("model_args", {})
    percent = lambda key: None if last.get(key) is None else 100 * float(last[key])  # noqa: E731
    return {"Encoder": run.config["encoder"], "Decoder": run.config["decoder"], "Mean Acc": percent("mean_acc"),
            "total IoU": percent("mean_iou"), "Epochs": int(last["epoch"]), "Pixel Acc": percent("pixel_acc"),
            "FW IoU": percent("test_fw_iou"), "Seconds": round(sum(float(r.get("seconds", 0)) for r in run.history), 1),
            "Init": encoder_init(run.config["encoder"], args.get("weights")), "run": str(run.path)}


def segmentation_grid(encoders: Sequence[str] = ("simple",), decoders: Sequence[str] = ("fcn8", "fcn32"),
                      epochs: int | Mapping[str, int] = 8, out: str | Path = "runs/segmentation-grid", *,
                      data: str = "shapes", data_options: dict[str, Any] | None = None, batch_size: int = 32,
                      lr: float | Mapping[str, float] | None = None,
                      seed: int = 0, weights: dict[str, str] | None = None, allow_random_init: bool = False,
                      fc_channels: int | None = None, progress: bool = False) -> GridResult:
    """Train every encoder x decoder with the same data, epochs, batch size and seed; write the table.

    Args:
        encoders: "simple", "vgg16", "alexnet".
        decoders: "fcn32", "fcn16", "fcn8".
        epochs: epochs of every run, or a mapping encoder -> epochs (every encoder named).
        out: folder of the run folders and the table files.
        lr: Adam's learning rate, or a mapping encoder -> rate; None (or an encoder
            missing from the mapping): ``train_segmentation``'s default for the encoder.
        data, data_options, batch_size, seed, allow_random_init, fc_channels: as
            ``train_segmentation`` (the same for every cell).
        weights: ImageNet weights file per encoder name (None: the torch hub cache).
        progress: progress bars.
    """
    out = Path(out)
    per_encoder = dict(epochs) if isinstance(epochs, Mapping) else {e: int(epochs) for e in encoders}
    missing = [e for e in encoders if e not in per_encoder]
    if missing:
        raise ArgumentError(f"epochs: no number of epochs for encoder(s) {', '.join(missing)}")
    rates = dict(lr) if isinstance(lr, Mapping) else {e: lr for e in encoders}
    rows = []
    for encoder in encoders:
        for decoder in decoders:
            folder = out / f"{decoder}-{encoder}"
            began = time.perf_counter()
            run = train_segmentation(data, encoder, decoder, epochs=per_encoder[encoder], batch_size=batch_size,
                                     lr=rates.get(encoder),
                                     out=str(folder), seed=seed, resume=folder.joinpath("run.json").is_file(),
                                     weights=(weights or {}).get(encoder), allow_random_init=allow_random_init,
                                     fc_channels=fc_channels, data_options=data_options, progress=progress)
            rows.append(grid_row(run))
            print(f"{encoder:8s} {decoder:6s} mean acc {rows[-1]['Mean Acc']:.1f}  total IoU "
                  f"{rows[-1]['total IoU']:.1f}  ({time.perf_counter() - began:.0f} s)", flush=True)
    table = markdown_table(rows)
    inits = sorted({row["Init"] for row in rows})
    note = (f"\nData: {data} {data_options or {}}; epochs per row (column Epochs), batch {batch_size}, seed {seed}. "
            "Mean Acc and total IoU (mean IoU over classes) in %, from one confusion matrix over the test split, last "
            f"epoch. Encoders: {'; '.join(inits)}.\n")
    markdown = atomic_write_text(out / "segmentation_grid.md", table + note)
    manifest = {"study": "segmentation_grid", "title": "Segmentation: encoders x decoders",
                "run": Path(rows[0]["run"]).name, "task": "segment", "dataset": data, "epoch": max(per_encoder[e] for e in encoders),
                "method": "train_segmentation per encoder x decoder; scores of the last epoch on the test split",
                "figures": [], "numbers": {f"{r['Decoder']}-{r['Encoder']}": {"mean_acc": r["Mean Acc"],
                                                                          "mean_iou": r["total IoU"]} for r in rows},
                "data": data, "data_options": data_options or {}, "epochs": per_encoder, "batch_size": batch_size,
                "seed": seed, "tables": [{"title": "Segmentation", "columns": COLUMNS,
                                          "rows": [[row[c] for c in COLUMNS] for row in rows]}],
                "rows": rows}
    path = atomic_write_json(out / "segmentation_grid.json", manifest)
    atomic_write_json(Path(rows[0]["run"]) / "artifacts" / "segmentation_grid.json", manifest)
    print(table, end="")
    return GridResult(rows=rows, markdown=markdown, json=path)


__all__ = ["segmentation_grid", "markdown_table", "grid_row", "encoder_init", "GridResult", "COLUMNS", "RANDOM_INIT"]
