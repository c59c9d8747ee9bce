"""The ``zerograds`` command line.

Each subcommand lives in its own module of this package and exposes two functions:
``add_parser(subparsers)``, which registers its ``argparse`` parser, and ``run(args)``, which
executes it and returns the exit status. ``COMMANDS`` lists the modules in help order.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from types import ModuleType

COMMANDS = ("demo", "run", "runs", "bench")


def _command_modules() -> list[ModuleType]:
    modules = []
    for name in COMMANDS:
        try:
            modules.append(importlib.import_module(f"{__name__}.{name}"))
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise  # a missing dependency inside an existing command module
    return modules


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with one subparser per available command."""
    parser = argparse.ArgumentParser(
        prog="zerograds",
        description="Optimize black-box functions with ZeroGrads learned local surrogates.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        sub = module.add_parser(subparsers)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:
        # The reader of stdout (for example `| head`) closed it. Point stdout at devnull so
        # that the interpreter's final flush does not raise a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
