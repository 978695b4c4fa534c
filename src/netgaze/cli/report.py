"""netgaze report: one self-contained HTML report from run folders."""
from __future__ import annotations

import argparse

from netgaze.cli.parsing import out_file, run_folder
from netgaze.errors import printable

HELP = "write one self-contained report.html from run folders (reads them only)"
EXAMPLES = """examples:
  netgaze report runs/shapes-cnn
  netgaze report runs/cnn runs/cnn-bn runs/cnn-robust --out comparison.html
  netgaze report runs/demo            # a folder of run folders
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", type=run_folder,
                        help="run folders, or a folder holding run folders")
    parser.add_argument("--out", type=out_file, help="the HTML file (default: FIRST_RUN/report.html)")
    parser.add_argument("--title", help="the report's title (default: the runs' names)")


def run(args: argparse.Namespace) -> int:
    from netgaze.report import build_report

    path = build_report(args.runs, args.out, args.title)
    print(printable(path))
    return 0
