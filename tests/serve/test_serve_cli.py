"""`netgaze serve` as a user runs it: prints its URL, answers, and stops on Ctrl-C with exit status 130."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))


def start_serve(*args: str) -> subprocess.Popen:
    """``netgaze serve ARGS`` in its own process group (Ctrl-C in a terminal signals the whole group)."""
    return subprocess.Popen([sys.executable, "-m", "netgaze", "serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(serve_runs, tmp_path, lines, until):
    (tmp_path / "demo.json").write_text("{}")                  # what `runs/demo/*` also matches
    (tmp_path / "screenshots").mkdir()
    globbed = [str(serve_runs["cnn"]), str(tmp_path / "demo.json"), str(tmp_path / "screenshots")]
    process = start_serve(*globbed, "--port", "0", "--threads", "1")     # port 0: the server binds a free one
    try:
        out = lines(process.stdout)
        skipped = out.next("the list of skipped paths", timeout=120)
        assert "skipped 2 path(s) that are not run folders" in skipped and "demo.json" in skipped
        line = out.next("the URL", timeout=120)
        assert "1 source(s)" in line, line
        port = int(re.search(r"http://127\.0\.0\.1:([0-9]+)/", line).group(1))
        assert port != 0
        url = f"http://127.0.0.1:{port}"

        def health():
            try:
                return httpx.get(f"{url}/api/health", timeout=2)
            except httpx.HTTPError:
                assert process.poll() is None, out.seen
                return None
        assert until(health, "the server answers at the printed URL", timeout=60).json()["status"] == "ok"
        answer = httpx.post(f"{url}/api/explain", timeout=30,
                            json={"run": "cnn", "image": {"split": "test", "index": 0}, "include": []})
        assert answer.status_code == 200 and answer.json()["layers"] == ["features"]
        workers = _children(process.pid)
        assert len(workers) == 1                               # the explanation worker process
        os.killpg(process.pid, signal.SIGINT)                   # what Ctrl-C sends: to the server and its worker
        process.wait(timeout=60)
        rest = out.rest(timeout=30)
        assert process.returncode == 130, rest                 # like every other command on Ctrl-C
        assert rest.splitlines() == ["netgaze serve: stopped", "netgaze serve: interrupted"], rest
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)      # the worker stopped with it
    finally:
        stop(process)


def test_requests_held_by_a_dead_worker_get_a_500_and_the_next_is_served(serve_runs, lines, until):
    """README: the requests a dead worker held are answered 500 (one line each), and the explorer serves on.
    A real `netgaze serve` in its own process: whatever breaks, the test kills it and cannot hang."""
    process = start_serve(str(serve_runs["cnn"]), "--port", "0", "--threads", "1")
    try:
        out = lines(process.stdout)
        url = re.search(r"http://127\.0\.0\.1:[0-9]+", out.next("the URL", timeout=120)).group(0)
        body = {"run": "cnn", "image": {"split": "test", "index": 0}, "include": ["map"]}

        def up():
            try:
                return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                assert process.poll() is None, out.seen
                return False
        until(up, "the server answers at the printed URL", timeout=60, every=0.1)
        assert httpx.post(f"{url}/api/explain", json=body, timeout=60).status_code == 200   # the worker is up
        [worker] = _children(process.pid)
        answers: list = []

        def ask():
            try:
                answers.append(httpx.post(f"{url}/api/explain", json=body, timeout=30))
            except httpx.HTTPError as err:
                answers.append(err)
        os.kill(worker, signal.SIGSTOP)                          # the worker takes the requests and answers none
        threads = [threading.Thread(target=ask, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        until(lambda: httpx.get(f"{url}/api/health", timeout=5).json()["pending"] >= 2,
              "two requests held by the stopped worker", timeout=30, every=0.02)
        os.kill(worker, signal.SIGKILL)                          # it dies holding them
        for thread in threads:
            thread.join(40)
        assert len(answers) == 2 and all(isinstance(a, httpx.Response) for a in answers), \
            f"the requests held by the dead worker were not answered: {answers}"
        for answer in answers:
            assert answer.status_code == 500 and list(answer.json()) == ["error"], answer.text
            error = answer.json()["error"]
            assert "explanation worker stopped" in error and "\n" not in error and "Traceback" not in error
        after = httpx.post(f"{url}/api/explain", json=body, timeout=60)      # waits for the new worker
        assert after.status_code == 200, after.text
        assert len(_children(process.pid)) == 1 and worker not in _children(process.pid)
    finally:
        stop(process)


def test_a_port_in_use_is_one_line(serve_runs):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "netgaze", "serve", str(serve_runs["cnn"]), "--port", str(port)],
                                capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr, result.stderr


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
