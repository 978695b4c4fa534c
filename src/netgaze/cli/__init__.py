"""The ``netgaze`` command: one entry point, one module per subcommand in this package.

Each subcommand module defines ``HELP`` (one line), ``EXAMPLES`` (epilog text),
``add_arguments(parser)`` and ``run(args) -> int | None``. Options are checked by the
``type=`` functions of ``netgaze.cli.parsing`` as they are parsed; mistakes found later are a
``netgaze.errors.UserError`` (exactly that class, subclasses included). Both end as one line
on stderr and exit status 2, never a traceback; anything else is a bug. Warnings print as one
line ``netgaze COMMAND: warning: ...``.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from typing import Sequence

from netgaze.cli.parsing import OneLineParser, flush_warnings, print_error
from netgaze.errors import UserError, one_line

ORDER = ["train", "explain", "embed", "visualize", "report", "serve", "demo"]
# Commands that rebuild a run's model: a run naming package.module:callable needs --trust-code.
TRUST_COMMANDS = ("explain", "embed", "visualize", "study", "serve")


def _subcommands() -> list[str]:
    found = {m.name for m in pkgutil.iter_modules(__path__)
             if not m.ispkg and m.name != "parsing" and not m.name.startswith("_")}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="netgaze", description="See where and how a convolutional network looks at pictures.",
        epilog="Run `netgaze COMMAND --help` for examples.")
    from netgaze._util.version import VERSION as __version__
    parser.add_argument("--version", action="version", version=f"netgaze {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _subcommands():
        module = importlib.import_module(f"netgaze.cli.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, epilog=module.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        if name in TRUST_COMMANDS:
            add_trust_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    """``--trust-code`` / ``--trust-module``: allow a run's ``package.module:callable`` to be imported."""
    group = parser.add_argument_group("code named by a run (a run folder is untrusted input)")
    group.add_argument("--trust-code", action="store_true",
                       help="import and run the code a run names to rebuild its model (package.module:callable)")
    group.add_argument("--trust-module", action="append", metavar="MODULE", default=None,
                       help="trust only this module (and its submodules), e.g. mypkg; repeatable")


def _trust(args: argparse.Namespace):
    """A context that allows what ``--trust-code`` / ``--trust-module`` allow (nothing when neither)."""
    import contextlib

    trust = True if getattr(args, "trust_code", False) else (getattr(args, "trust_module", None) or None)
    if not trust:
        return contextlib.nullcontext()
    from netgaze.lab.models.trust import trusting_code
    return trusting_code(trust)


def _one_line_warnings(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"netgaze {command}: warning: {one_line(message)}", file=file or sys.stderr)
    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (2 for a user mistake, 0 after --help)."""
    try:
        args, extras = build_parser().parse_known_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad option already printed as one line
        return exit_.code if isinstance(exit_.code, int) else 2
    command = " ".join(str(part) for part in (args.command, getattr(args, "task", None)) if part)
    if extras:  # named by the subcommand that does not know them, not by the top-level parser
        print(f"netgaze {command}: error: unrecognized arguments: {' '.join(extras)} "
              f"(see `netgaze {command} --help`)", file=sys.stderr)
        return 2
    show = warnings.showwarning
    warnings.showwarning = _one_line_warnings(command)
    flush_warnings(False)
    ok = False
    try:
        with _trust(args):
            status = int(args._run(args) or 0)
        ok = status == 0
        return status
    except UserError as err:
        print_error(command, str(err))
        return 2
    except KeyboardInterrupt:
        print(f"netgaze {command}: interrupted", file=sys.stderr)
        return 130
    finally:
        flush_warnings(ok)    # a named model's random-weights warning: after success only, never before an error
        warnings.showwarning = show


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
