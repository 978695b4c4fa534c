"""The demo's worker processes: each group of steps in its own ``python -m netgaze.demo --group``."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def run_groups_in_processes(out: Path, settings: Any, progress: bool, threads: int,
                            groups: list[str]) -> dict[str, dict[str, Any]]:
    """Each group in its own ``python -m netgaze.demo --group`` process (no fork of a process that holds torch
    threads, no re-import of the caller's main module); a process that dies becomes a skip note.

    ``settings``: the demo's ``DemoSettings`` (a dataclass), passed to each process as JSON.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="netgaze-demo-") as work:
        processes = {}
        for group in groups:
            result = Path(work) / f"{group}.json"
            command = [sys.executable, "-m", "netgaze.demo", "--group", group, "--out", str(out), "--result", str(result),
                       "--threads", str(threads), "--settings", json.dumps(dataclasses.asdict(settings))]
            if not progress:
                command.append("--quiet")
            processes[group] = (subprocess.Popen(command, env=env), result)
        results = {}
        for group, (process, result) in processes.items():
            code = process.wait()
            if code == 0 and result.is_file():
                results[group] = json.loads(result.read_text())
            else:
                reason = f"its process ended with exit status {code}"
                results[group] = {"timings": {}, "cpu": {}, "skipped": {group: reason}, "seconds": None, "reused": [],
                                  "unplaced": {group: {"study": group, "skipped": reason}}}
    return results
