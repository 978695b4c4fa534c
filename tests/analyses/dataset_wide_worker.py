"""Worker for the torchrun test of the dataset-wide analyses: strategies, dissection and top
examples of a fixed blob dataset, written as JSON to ``argv[1]/rank-R.json`` by every process."""
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_strategies import blob_dataset, blob_model  # noqa: E402

from netgaze.analyses.dissect import dissect  # noqa: E402
from netgaze.analyses.strategies import strategies  # noqa: E402
from netgaze.analyses.top_examples import top_examples  # noqa: E402


def run(out: str) -> None:
    torch.set_num_threads(1)
    data, _ = blob_dataset()
    model = blob_model()
    found = strategies(model, data, layer="1", resolution=8, shard_size=8, batch_size=4, progress=False)
    units = dissect(model, data, layers=["0", "1"], batch_size=5, progress=False)
    top = top_examples(model, data, "1", k=5, batch_size=5, progress=False)
    rank = int(os.environ.get("RANK", "0"))
    result = {"classes": found.classes, "strategies": found.to_dict(), "dissection": units.to_dict(),
              "top_examples": top.to_dict()}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"rank-{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    run(sys.argv[1])
