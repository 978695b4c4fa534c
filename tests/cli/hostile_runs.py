"""Hostile run folders for the bad-input table (tests/cli/test_bad_inputs.py), made from a good one."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch


def hostile_runs(root: Path) -> None:
    """Run folders whose JSON files are hostile: too deep for Python's parser, numbers past its
    int-string limit, fields of the wrong type."""
    def config(name: str, **fields) -> None:
        path = root / name / "run.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))

    for name in ("deep", "bigint", "epochs", "epochs-nan", "meta-nan", "meta-big", "size", "opts", "data", "proc"):
        shutil.copytree(root / "cls", root / f"bad-{name}")
    (root / "bad-deep" / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "bad-bigint" / "history.jsonl").write_text('{"epoch": ' + "9" * 5000 + ', "loss": 1}\n')
    config("bad-epochs", epochs="x")
    run_json = root / "bad-epochs-nan" / "run.json"
    run_json.write_text(run_json.read_text().replace('"epochs": 1', '"epochs": NaN'))
    meta = root / "bad-meta-nan" / "checkpoints" / "epoch-0001.json"
    meta.write_text(meta.read_text().replace('"epoch": 1', '"epoch": NaN'))
    meta = root / "bad-meta-big" / "checkpoints" / "epoch-0001.json"
    meta.write_text(meta.read_text().replace('"epoch": 1', '"epoch": 1e308'))
    config("bad-size", data_options={"n": 64, "size": "big"})
    config("bad-opts", data_options=[1])
    config("bad-data", data=5)
    config("bad-proc", data="/proc", data_options={})
    from safetensors.torch import load_file, save_file
    shutil.copytree(root / "cls", root / "bad-nan")   # a diverged training: NaN weights, intact checksum
    weights = root / "bad-nan" / "checkpoints" / "epoch-0001.safetensors"
    save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
               for k, v in load_file(weights).items()}, weights)
    meta = root / "bad-nan" / "checkpoints" / "epoch-0001.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()),
                                "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}))
