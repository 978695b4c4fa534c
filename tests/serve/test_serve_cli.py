"""`netgaze serve` as a user runs it: prints its URL, answers, and stops cleanly on Ctrl-C."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from netgaze.serve.server import free_port

SRC = Path(__file__).resolve().parents[2] / "src"


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(serve_runs):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen([sys.executable, "-m", "netgaze", "serve", str(serve_runs["cnn"]), "--port", str(port),
                                "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None, "the server did not come up"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        answer = httpx.post(f"http://127.0.0.1:{port}/api/explain", timeout=30,
                            json={"run": "cnn", "image": {"split": "test", "index": 0}, "include": []})
        assert answer.status_code == 200 and answer.json()["layers"] == ["features"]
        process.send_signal(signal.SIGINT)                      # what Ctrl-C sends
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0 and "stopped" in out and "Traceback" not in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
