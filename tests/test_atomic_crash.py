"""Atomic writes under a crash injected at exact moments (issue 14, tests that prove the guarantees).

A forked child writes a new version of a file and is killed (SIGKILL) or fails (an
exception) at one chosen instant: half-way through ``write``, after the data is written
but before ``os.replace``. The previous version must be intact and load.
"""
from __future__ import annotations

import os
import signal

import pytest
import torch
from safetensors.torch import save as save_safetensors

import netgaze._util.atomic as files
from netgaze._util.atomic import TMP_MARK, atomic_write_bytes
from netgaze.lab.runs import RunFolder, remove_partial_files

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


class _HalfThenDie:
    """A file handle that writes half of the first chunk, flushes it to disk, then is killed."""

    def __init__(self, path, mode):
        self.handle = open(path, mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        os.fsync(self.handle.fileno())
        _die()

    def __getattr__(self, name):
        return getattr(self.handle, name)


def _killed_while(write, where: str) -> int:
    """Run ``write()`` in a forked child killed at ``where``; return the child's signal."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            if where == "mid-write":
                files.open = _HalfThenDie           # the module's open(), shadowing the builtin
            elif where == "before-replace":
                files.os.replace = _die              # data written and fsync'ed, not yet renamed
            write()
        finally:
            os._exit(3)                              # reached only if the kill did not happen
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)


@pytest.fixture()
def checkpoint(tmp_path):
    """A run folder with a complete epoch-1 checkpoint and its old weights."""
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 32)
    folder = RunFolder(tmp_path / "run")
    folder.prepare()
    folder.save_epoch(1, model, {"epoch": 1}, {"optimizers": {}})
    old = {k: v.clone() for k, v in model.state_dict().items()}
    new = save_safetensors({k: v + 1 for k, v in old.items()})
    return folder, old, new


@pytest.mark.parametrize("where", ["mid-write", "before-replace"])
def test_a_kill_leaves_the_previous_checkpoint_intact(checkpoint, where):
    folder, old, new = checkpoint
    weights = folder.checkpoint_paths(1)[0]
    before = weights.read_bytes()
    assert _killed_while(lambda: atomic_write_bytes(weights, new), where) == signal.SIGKILL
    assert weights.read_bytes() == before
    loaded = folder.load_weights(1)                       # checksum verified
    assert all(torch.equal(loaded[k], old[k]) for k in old)
    (partial,) = weights.parent.glob(f".{weights.name}{TMP_MARK}*")
    assert 0 < partial.stat().st_size <= len(new)         # the killed write's leftover, never the target
    if where == "mid-write":
        assert partial.stat().st_size == len(new) // 2
    else:
        assert partial.read_bytes() == new
    assert remove_partial_files(folder.path) == [partial]  # the trainer's start-up removes exactly it


@pytest.mark.parametrize("where", ["mid-write", "before-replace"])
def test_a_kill_leaves_the_previous_json_intact(tmp_path, where):
    path = tmp_path / "run.json"
    path.write_text('{"epochs": 5}\n')
    assert _killed_while(lambda: files.atomic_write_json(path, {"epochs": 1, "pad": "x" * 5000}), where) \
        == signal.SIGKILL
    assert path.read_text() == '{"epochs": 5}\n'


def test_a_failure_before_replace_keeps_the_old_file_and_no_leftover(tmp_path, monkeypatch):
    path = tmp_path / "history.jsonl"
    path.write_text('{"epoch": 1}\n')

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        files.atomic_write_text(path, '{"epoch": 1}\n{"epoch": 2}\n')
    monkeypatch.undo()
    assert path.read_text() == '{"epoch": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]   # the temporary file is gone


def test_a_failure_mid_write_keeps_the_old_file_and_no_leftover(tmp_path, monkeypatch):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old picture")

    class Full:
        def __init__(self, name, mode):
            self.handle = open(name, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[:3])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "open", Full, raising=False)
    with pytest.raises(OSError):
        atomic_write_bytes(path, b"new picture, longer")
    monkeypatch.delattr(files, "open")
    assert path.read_bytes() == b"old picture" and sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]
