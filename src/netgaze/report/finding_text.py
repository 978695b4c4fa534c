"""What every finding of the report shares: the sentence helpers and references to figures and tables.

A finding is ``{"title", "text", "refs"}``; ``refs`` name the figures (``{"run", "file"}``) or
tables (``{"run", "study", "table"}``) that show its numbers. Numbers are written by ``fmt``
(two decimals) and ``pct``; ``trend`` names a change only when it is larger than ``NOISE``.
"""
from __future__ import annotations

from typing import Any

from netgaze.report.runinfo import RunInfo

NOISE = 0.02  # changes of a mean share smaller than this are called no change

Finding = dict[str, Any]


def fmt(value: Any) -> str:
    return "n/a" if not isinstance(value, (int, float)) else f"{value:.2f}"


def pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def manifests_of(runs: list[RunInfo], study: str) -> list[tuple[RunInfo, dict[str, Any]]]:
    return [(run, m) for run in runs for m in run.manifests if m.get("study") == study and not m.get("skipped")]


def figure_ref(run: RunInfo | str, manifest: dict[str, Any] | None = None, file: str | None = None) -> dict[str, str]:
    """A reference to a figure: the manifest's first figure, or the named file."""
    name = run if isinstance(run, str) else run.name
    if file is None and manifest is not None and manifest.get("figures"):
        first = manifest["figures"][0]
        file = str(first.get("file", "")) if isinstance(first, dict) else str(first)
    return {"run": name, "file": str(file).rsplit("/", 1)[-1]}


def table_ref(run: RunInfo, study: str, index: int = 0) -> dict[str, Any]:
    return {"run": run.name, "study": study, "table": index}


def trend(values: list[float]) -> str:
    """'rises', 'falls' or 'does not change' from the first to the last value (by more than NOISE)."""
    delta = values[-1] - values[0]
    return "rises" if delta > NOISE else "falls" if delta < -NOISE else "does not change"


# -- classification ---------------------------------------------------------------------------
