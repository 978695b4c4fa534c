"""Every dataset-wide analysis under torchrun (two processes, gloo on the CPU) gives what one process gives.

Strategies: the explanations are sharded by rank, the two classes are clustered on different
ranks and rank 0 merges them; dissection and top examples: each rank takes every other batch and
the counts and top lists are merged on every rank.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dataset_wide_worker import run  # noqa: E402


@pytest.mark.timeout(400)
def test_two_processes_give_the_one_process_results(tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    run(str(single))
    worker = Path(__file__).with_name("dataset_wide_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                           str(worker), str(multi)], env=env, capture_output=True, text=True, timeout=360)
    assert done.returncode == 0, done.stderr[-3000:]
    one = json.loads((single / "rank-0.json").read_text())
    main, other = (json.loads((multi / f"rank-{r}.json").read_text()) for r in (0, 1))
    # strategies: rank 0 holds both classes (one clustered on each rank), equal to one process
    assert main["classes"] == one["classes"] == [0, 1]
    assert main["strategies"] == one["strategies"]
    assert len(other["classes"]) == 1  # the other rank clustered one class
    # top examples: every rank has the merged lists, equal to one process's
    assert main["top_examples"] == one["top_examples"] == other["top_examples"]
    # dissection: every rank has the same counts; thresholds are bin edges of ranges fitted to
    # two batches at a time instead of one, so they agree up to a bin, and so do the IoUs
    assert main["dissection"] == other["dissection"]
    for a, b in zip(main["dissection"]["layers"], one["dissection"]["layers"]):
        assert a["top_pictures"] == b["top_pictures"]
        np.testing.assert_allclose(a["iou"], b["iou"], atol=0.02)
        np.testing.assert_allclose(a["thresholds"], b["thresholds"], rtol=0.02, atol=1e-3)
        assert a["detectors"] == b["detectors"]
