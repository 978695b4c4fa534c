"""netgaze demo: the seed reports' studies end to end on embedded data; writes OUT/report.html."""
from __future__ import annotations

import argparse

from netgaze.cli.parsing import out_dir
from netgaze.errors import printable

HELP = "train the reports' models on embedded data, run every study, write OUT/report.html"
EXAMPLES = """examples:
  netgaze demo --out runs/demo           # about 5 minutes on 2 idle CPU cores (two processes at once)
  netgaze demo --out /tmp/demo --quick   # the same pipeline on tiny data, about a minute
Run it again on the same folder to resume: finished trainings are kept.
Each step prints its wall time and its CPU time; OUT/demo.json keeps both.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", type=out_dir, help="the demo folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="tiny data and few epochs: a smoke test of the pipeline")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from netgaze.demo import run_demo

    report = run_demo(args.out, quick=args.quick, progress=not args.quiet)
    print(printable(report))
    return 0
