"""The ``netgaze`` command: one entry point, one module per subcommand in this package.

Each subcommand module defines ``HELP`` (one line), ``EXAMPLES`` (epilog text),
``add_arguments(parser)`` and ``run(args) -> int | None``. User mistakes raise
``UserError`` (or a ``LayerError`` / ``FileNotFoundError``) and end as one line on
stderr with exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from netgaze.errors import UserError

ORDER = ["train", "explain", "embed", "visualize", "report", "serve", "demo"]


def _subcommands() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__)
             if not m.ispkg and m.name != "common" and not m.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netgaze", description="See where and how a convolutional network looks at pictures.",
        epilog="Run `netgaze COMMAND --help` for examples.")
    from netgaze import __version__
    parser.add_argument("--version", action="version", version=f"netgaze {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _subcommands():
        module = importlib.import_module(f"netgaze.cli.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=module.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (UserError, FileNotFoundError) as err:
        print(f"netgaze {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"netgaze {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
