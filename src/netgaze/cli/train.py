"""``netgaze train TASK``: train a model into a run folder; one module per task in ``training/``.

Every module of ``netgaze/cli/training/`` is a task (``classify``, ``reconstruct``,
``segment``) with ``HELP``, ``EXAMPLES``, ``add_arguments(parser)`` and ``run(args)``,
exactly like a top-level subcommand. ``training/`` has no ``__init__.py`` on purpose: it is
a namespace package, which the top-level discovery (``pkgutil.iter_modules``) does not list
as a command of its own.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil

from netgaze.cli import training

HELP = "train a model (classify, reconstruct, segment) into a run folder with a checkpoint per epoch"
EXAMPLES = """examples:
  netgaze train classify --data shapes --model simple-cnn --epochs 10 --out runs/shapes-cnn
  netgaze train classify --data digits --model simple-cnn-bn --augment robust --out runs/digits-bn
  netgaze train classify --data shapes --out runs/shapes-cnn --epochs 20 --resume
  torchrun --nproc_per_node=2 -m netgaze train classify --data shapes --out runs/shapes-ddp
Run `netgaze train TASK --help` for a task's options."""
ORDER = ["classify", "reconstruct", "segment"]


def tasks() -> list[str]:
    """Task names: the modules of ``netgaze.cli.training``."""
    found = {m.name for m in pkgutil.iter_modules(training.__path__) if not m.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for name in tasks():
        module = importlib.import_module(f"netgaze.cli.training.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=module.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_task_run=module.run)


def run(args: argparse.Namespace) -> int | None:
    return args._task_run(args)
