"""explain_dataset: shards + index, resumable, and torchrun shards union to the one-process run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netgaze.analyses.dataset_explanations import ExplainDatasetError, explain_dataset, load_explanations
from netgaze.methods import gradcam

sys.path.insert(0, str(Path(__file__).parent))
from explain_dataset_worker import run, toy_dataset, toy_model  # noqa: E402


def test_single_process_matches_direct_gradcam(tmp_path):
    run(str(tmp_path))
    index = json.loads((tmp_path / "index.json").read_text())
    assert [e["count"] for e in index["shards"]] == [5, 5, 5, 5, 3]
    result = load_explanations(tmp_path)
    x, labels = toy_dataset().tensors
    model = toy_model()
    assert torch.equal(result["indices"], torch.arange(23))
    assert torch.equal(result["labels"], labels)
    assert torch.equal(result["predictions"], model(x).argmax(1))
    torch.testing.assert_close(result["maps"], gradcam(model, x, "2"), rtol=1e-5, atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_resume_skips_finished_shards_and_never_shows_a_partial_one(tmp_path):
    calls = []

    def failing(model, x, layer, target=None, output=None):
        calls.append(len(x))
        if len(calls) == 5:  # dies in the middle of shard 2 (shards hold 2 batches: 3 + 2)
            raise RuntimeError("killed")
        return gradcam(model, x, layer, target=target, output=output)

    failing.__name__ = "gradcam"  # same settings as the resumed run
    with pytest.raises(RuntimeError, match="killed"):
        explain_dataset(toy_model(), toy_dataset(), failing, "2", out=tmp_path, shard_size=5, batch_size=3,
                        progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-00000.safetensors", "shard-00001.safetensors"]
    calls.clear()

    def counting(model, x, layer, target=None, output=None):
        calls.append(len(x))
        return gradcam(model, x, layer, target=target, output=output)

    counting.__name__ = "gradcam"
    explain_dataset(toy_model(), toy_dataset(), counting, "2", out=tmp_path, shard_size=5, batch_size=3,
                    progress=False)
    assert sum(calls) == 13  # only shards 2, 3, 4 (5 + 5 + 3 images)
    full = tmp_path / "full"
    run(str(full))
    resumed, fresh = load_explanations(tmp_path), load_explanations(full)
    assert all(torch.equal(resumed[k], fresh[k]) for k in fresh)
    with pytest.raises(ExplainDatasetError, match="other settings"):
        explain_dataset(toy_model(), toy_dataset(), "gradcam", "0", out=tmp_path, shard_size=5, progress=False)


def test_torchrun_two_processes_union_equals_one_process(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    run(str(single))
    worker = Path(__file__).with_name("explain_dataset_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", str(worker), str(multi)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = load_explanations(single), load_explanations(multi)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert json.loads((single / "index.json").read_text()) == json.loads((multi / "index.json").read_text())
