"""One self-contained HTML report from run folders: ``build_report(["runs/NAME"])``."""
from netgaze.report.build import build_report, render
from netgaze.report.runinfo import RunInfo, find_runs, read_run

__all__ = ["build_report", "render", "RunInfo", "find_runs", "read_run"]
