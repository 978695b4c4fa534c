"""The demo's bookkeeping: one step at a time, its wall and CPU time, and a visible note when it fails.

``DemoSession`` is what every demo step receives (``netgaze.demo.steps``); the runner's
``Demo`` adds the order of the steps on top of it.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from netgaze.demo.settings import DemoSettings
from netgaze.studies.common import write_manifest


@dataclass
class DemoSession:
    out: Path
    settings: DemoSettings
    progress: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    group: str = ""
    unplaced: dict[str, dict[str, str]] = field(default_factory=dict)  # skip notes with no run folder to hold them
    reused: list[str] = field(default_factory=list)

    def resuming(self, path: Path) -> bool:
        """Whether a training continues an earlier one in ``path`` (then it is said and recorded)."""
        if not (path / "run.json").is_file():
            return False
        self.reused.append(path.name)
        self.say(f"{path.name}: continuing the training found in {path} (same settings)")
        return True

    def say(self, message: str) -> None:
        if self.progress:
            print(f"[demo {time.strftime('%H:%M:%S')}{' ' + self.group if self.group else ''}] {message}", flush=True)

    def step(self, name: str, function: Callable[[], Any], note_in: Path | None = None, study: str | None = None):
        """Run one step; when it raises, record a visible skip note (the report shows it) and go on."""
        self.say(f"{name} ...")
        start, cpu = time.perf_counter(), time.process_time()
        try:
            result = function()
        except Exception as err:  # a failing step must not sink the demo; the report says so
            if self.progress:
                traceback.print_exc()
            result = self.skip(name, f"it failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}",
                               note_in, study)
        self.timings[name] = round(time.perf_counter() - start, 1)
        self.cpu[name] = round(time.process_time() - cpu, 1)
        self.say(f"{name} done in {self.timings[name]:.0f} s (CPU {self.cpu[name]:.0f} s)")
        return result

    def skip(self, name: str, reason: str, note_in: Path | None, study: str | None) -> None:
        self.skipped[name] = reason
        self.say(f"{name} SKIPPED: {reason}")
        if note_in is not None and (note_in / "run.json").is_file():
            write_manifest(note_in / "artifacts", f"skipped-{name}", {"study": study or name, "skipped": reason})
        else:
            self.unplaced[name] = {"study": study or name, "skipped": reason}
        return None
