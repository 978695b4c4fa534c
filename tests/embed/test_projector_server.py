"""The projector export seen by a real TensorBoard server over a multi-run log folder (issue 14)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from netgaze.embed import export_projector

pytest.importorskip("tensorboard")

WAIT_SECONDS = 90


def port_of(server_lines) -> int:
    """The port TensorBoard bound for ``--port 0``, from its line "TensorBoard V at http://HOST:PORT/"."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        line = server_lines.next("TensorBoard's 'at http://...' line", timeout=max(1.0, deadline - time.monotonic()))
        found = re.search(r"TensorBoard \S+ at http://[^/]*:([0-9]+)/", line)
        if found:
            return int(found.group(1))


def ask(port: int, route: str, **query) -> bytes:
    url = f"http://127.0.0.1:{port}/data/plugin/projector/{route}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def test_tensorboard_over_the_runs_folder_finds_every_embedding(tmp_path, lines):
    rng = np.random.default_rng(0)
    logs = tmp_path / "runs"
    board = logs / "shapes" / "projector"                       # README: embed --tensorboard runs/shapes/projector
    conv = rng.normal(size=(12, 5)).astype(np.float32)
    logits = rng.normal(size=(20, 3)).astype(np.float32)
    export_projector(board, {"features": conv, "pca-2d": conv[:, :2]}, labels=["a", "b"] * 6, group="conv4-test")
    export_projector(board, {"features": logits}, labels=["c"] * 20, group="logits-train")   # a second `embed`
    (logs / "shapes" / "notes").mkdir()                          # other folders of the log tree are harmless
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", "127.0.0.1",
                               "--port", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:                                                           # port 0: TensorBoard binds a free one and says which
        said = lines(server.stderr)
        port = port_of(said)
        assert port != 0
        runs, deadline = [], time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and "shapes/projector" not in runs:
            assert server.poll() is None, "".join(said.seen)[-2000:]
            try:
                runs = json.loads(ask(port, "runs"))
            except OSError:
                pass
            time.sleep(0.5)
        assert "shapes/projector" in runs, runs
        info = json.loads(ask(port, "info", run="shapes/projector"))
        assert [e["tensorName"] for e in info["embeddings"]] == [
            "conv4-test/features", "conv4-test/pca-2d", "logits-train/features"]
        tensor = np.frombuffer(ask(port, "tensor", run="shapes/projector", name="conv4-test/features"), np.float32)
        np.testing.assert_array_equal(tensor.reshape(12, 5), conv)
        tensor = np.frombuffer(ask(port, "tensor", run="shapes/projector", name="logits-train/features"), np.float32)
        np.testing.assert_array_equal(tensor.reshape(20, 3), logits)
        metadata = ask(port, "metadata", run="shapes/projector", name="conv4-test/pca-2d").decode().splitlines()
        assert metadata == ["a", "b"] * 6
    finally:
        server.kill()
        server.wait(timeout=30)
