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


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(serve_runs, tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    (tmp_path / "demo.json").write_text("{}")                  # what `runs/demo/*` also matches
    (tmp_path / "screenshots").mkdir()
    globbed = [str(serve_runs["cnn"]), str(tmp_path / "demo.json"), str(tmp_path / "screenshots")]
    process = subprocess.Popen([sys.executable, "-m", "netgaze", "serve", *globbed, "--port", str(port),
                                "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env, start_new_session=True)
    try:
        skipped = process.stdout.readline()
        assert "skipped 2 path(s) that are not run folders" in skipped and "demo.json" in skipped
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line and "1 source(s)" in line
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
        workers = _children(process.pid)
        assert len(workers) == 1                               # the explanation worker process
        os.killpg(process.pid, signal.SIGINT)                   # what Ctrl-C sends: to the server and its worker
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0 and "stopped" in out and "Traceback" not in out
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)      # the worker stopped with it
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                found.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return found


def test_a_lone_path_that_is_not_a_run_is_an_error(tmp_path, capsys):
    from netgaze.cli import main

    (tmp_path / "notes.txt").write_text("hello")
    assert main(["serve", str(tmp_path / "notes.txt")]) == 2
    assert "is a file, not a run folder" in capsys.readouterr().err
    assert main(["serve", str(tmp_path)]) == 2
    assert "has no run.json" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), str(tmp_path / "notes.txt")]) == 2
    assert "none of the 2 paths is a run folder" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "no such run folder" in capsys.readouterr().err
