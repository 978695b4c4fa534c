"""README: every subcommand has ``--help`` with examples (the train tasks and every other level too)."""
from __future__ import annotations

import argparse
import re

import pytest

from netgaze.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand the parser knows: ("train",), ("train", "classify"), ..."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(build_parser())


def test_the_commands_are_all_found():
    top = {c[0] for c in COMMANDS}
    assert {"train", "explain", "embed", "visualize", "report", "serve", "demo", "study"} <= top
    assert {("train", "classify"), ("train", "reconstruct"), ("train", "segment")} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_exits_0_with_examples_of_the_command(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    name = "netgaze " + " ".join(command)
    assert out.startswith(f"usage: {name}"), out[:200]
    sections = re.split(r"^examples:$", out, flags=re.M)
    assert len(sections) == 2, f"`{name} --help` has no 'examples:' section"
    examples = [line.strip() for line in sections[1].splitlines()]
    assert any(line.startswith(name + " ") for line in examples), \
        f"`{name} --help` shows no example of `{name} ...`"
