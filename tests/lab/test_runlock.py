"""One process owns a run folder; a refused second start touches nothing (issue 14, items 2 and 3)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from netgaze.lab.runlock import RunBusyError, RunLock
from netgaze.lab.train import train_classifier

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
HOLD = ("import sys; from netgaze.lab.runlock import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('locked', flush=True); sys.stdin.read()")


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def owner(tmp_path, lines):
    """A run folder held by another live process, with that process's write in progress."""
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "run.json").write_text('{"task": "classify", "data": "digits"}\n')
    (folder / ".run.json.tmp-424242").write_text("a write in progress")
    (folder / "checkpoints" / ".epoch-0001.safetensors.tmp-424242").write_bytes(b"half a checkpoint")
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], env=ENV, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert lines(process.stdout).next("the owner's 'locked'", timeout=120).strip() == "locked"
    yield folder, process
    process.kill()
    process.wait(timeout=30)


def test_a_second_start_is_refused_and_touches_nothing(owner):
    folder, process = owner
    before = snapshot(folder)
    for resume in (False, True):
        with pytest.raises(RunBusyError, match=rf"in use by process {process.pid}\b"):
            train_classifier(data="digits", epochs=1, out=str(folder), resume=resume, progress=False, tensorboard=True,
                             model_options={"channels": [4, 4, 4, 4]})
    assert snapshot(folder) == before
    # the command line says it in one line, exit status 2
    result = subprocess.run([sys.executable, "-m", "netgaze", "train", "classify", "--data", "digits", "--epochs", "1",
                             "--out", str(folder), "--resume", "--quiet"], env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and f"process {process.pid}" in result.stderr, result.stderr
    assert snapshot(folder) == before
    assert process.poll() is None  # the owner was not disturbed


def test_the_lock_dies_with_its_owner(owner):
    folder, process = owner
    with pytest.raises(RunBusyError):
        RunLock(folder).acquire()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with RunLock(folder) as lock:       # the OS released it: no stale lock after a crash
        assert lock.held and lock.owner() == os.getpid()
        with pytest.raises(RunBusyError, match=f"process {os.getpid()}"):
            RunLock(folder).acquire()   # a second lock of the same process is refused too (flock per open)
    assert not lock.held
