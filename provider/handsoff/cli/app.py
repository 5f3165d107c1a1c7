"""The `handsoff` console script: parse the command line, run one command from the registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from handsoff.cli.registry import COMMANDS, UsageError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subparser per registered command."""
    parser = argparse.ArgumentParser(prog="handsoff", description="handsoff deployment pipelines")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=command.help, description=command.help)
        for argument in command.args:
            subparser.add_argument(*argument.flags, **argument.options)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (2 for usage errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return COMMANDS[args.command].load()(args)
    except UsageError as exc:
        print(f"handsoff {args.command}: error: {exc}", file=sys.stderr)
        return 2
