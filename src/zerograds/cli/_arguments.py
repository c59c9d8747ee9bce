"""Arguments of ``zerograds run``: the parser, option parsing and the checks made before a run."""

from __future__ import annotations

import argparse
import ast
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._output import HelpFormatter, Trace
from ._problems import COCO_SUITES

DEFAULT_DB = Path("zerograds-out/runs.db")

# Keyword arguments that `run` passes to zerograds.minimize / ZeroGrads from its own flags.
# An --option must not set them a second time.
RUN_FLAGS = {
    "sigma": "--sigma",
    "lr": "--lr",
    "batch_size": "--batch-size",
    "seed": "--seed",
    "max_evals": "--evals",
    "x0": "--x0",
    "fun": "--function",
    "vectorized": "--vectorized",
    "progress": "--no-progress",
    "storage": "--db",
    "checkpoint_every": "--checkpoint-every",
    "resume": "--resume",
}

# Called after every iteration with the optimizer and the trace; returning True stops the run.
IterationHook = Callable[[Any, Trace], bool | None]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``zerograds run`` and return its parser."""
    parser = subparsers.add_parser(
        "run",
        help="run ZeroGrads on a COCO problem or on your own Python objective",
        description=(
            "Minimize one objective with ZeroGrads and write its trace (CSV), three PNG plots "
            "and a summary table. Give exactly one of --problem and --function."
        ),
        formatter_class=HelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--problem",
        metavar="SUITE:FUNCTION:DIM[:INSTANCE]",
        help=(
            "COCO problem through the cocoex package, e.g. bbob:1:5:1 (sphere, d=5, instance 1). "
            f"SUITE is one of {', '.join(COCO_SUITES)}; INSTANCE defaults to 1. Starts at the "
            "problem's initial solution and keeps θ inside its region of interest."
        ),
    )
    source.add_argument(
        "--function",
        metavar="MODULE:CALLABLE",
        help=(
            "Python objective, imported as `from MODULE import CALLABLE`. It takes a 1-D "
            "float array of length DIM and returns a number (with --vectorized: an (n, DIM) "
            "array and n numbers). Needs --dim."
        ),
    )

    parser.add_argument(
        "--dim", type=int, help="number of parameters d of --function (required with it)"
    )
    parser.add_argument(
        "--x0",
        type=float,
        nargs="+",
        metavar="X",
        help=(
            "start point of --function: one number for every coordinate or DIM numbers "
            "(default: all zeros)"
        ),
    )
    parser.add_argument(
        "--vectorized",
        action="store_true",
        help="call --function once per batch with an (n, DIM) array",
    )

    add_zerograds_arguments(parser)
    add_threads_argument(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("zerograds-out/run"), help="output directory"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    storage = parser.add_argument_group("run database")
    storage.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        help=(
            "SQLite run database that records every evaluation and a checkpoint every "
            "--checkpoint-every iterations, so that --resume can continue the run"
        ),
    )
    storage.add_argument(
        "--no-db", action="store_true", help="record nothing, so the run cannot be resumed"
    )
    storage.add_argument(
        "--resume",
        type=int,
        nargs="?",
        const=True,
        default=False,
        metavar="ID",
        help=(
            "continue the newest run in --db started with the same objective, x0, seed and "
            "ZeroGrads options (with ID: run ID of `zerograds runs list`) from its last "
            "checkpoint; evaluations recorded after it are reused, not repeated, and the result "
            "is bit-identical on CPU to an uninterrupted run. Starts a new run when none matches. "
            "A larger --evals extends a finished run"
        ),
    )
    storage.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        metavar="N",
        help="iterations between checkpoints in --db (one iteration evaluates 2·batch-size points)",
    )
    return parser


def add_zerograds_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ZeroGrads options that ``run`` passes to ``zerograds.ZeroGrads``."""
    parser.add_argument(
        "--evals", type=int, default=10_000, help="objective evaluations (budget, never exceeded)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of all random draws")
    parser.add_argument(
        "--sigma",
        type=float,
        default=1.0,
        help="standard deviation σ of the sampling perturbations, in the units of x",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate of Adam on θ, in the units of x per step (default: 0.5·σ)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=4,
        help="perturbations B per iteration; each iteration evaluates 2B points",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=(
            "further keyword argument of zerograds.ZeroGrads, VALUE as a Python literal, e.g. "
            "--option surrogate_steps=10 --option step_order='\"step_first\"'; repeatable"
        ),
    )


def positive_int(text: str) -> int:
    """Parse an argparse value that must be an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads``, the torch CPU thread count that ``torch_threads`` sets."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        metavar="N",
        help="torch CPU threads for the surrogate; 1 suits its small matrices",
    )


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Set torch's CPU thread count to ``count`` inside the block and restore it after.

    torch's default, one thread per core, oversubscribes the cores on the surrogate's small
    matrix products as soon as another process keeps a core busy, and then each iteration
    takes far longer than on one thread. ``bench`` also runs its cells on one thread.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_evals(evals: int, optimizer: Any) -> None:
    """Raise ``ValueError`` unless ``--evals`` covers one iteration and the final evaluation.

    The minimum is the one ``zerograds.minimize`` enforces on ``max_evals``: the 2B points of
    one ask/tell iteration plus the evaluation at the final θ.
    """
    minimum = optimizer.batch_size + 1
    if evals < minimum:
        raise ValueError(
            f"--evals must be at least {minimum}, got {evals}. One iteration evaluates "
            f"2·batch-size = {optimizer.batch_size} points, and one more evaluation is at the "
            "final θ"
        )


def check_option_conflicts(
    items: list[str], flags: dict[str, str], set_by_command: dict[str, str] | None = None
) -> None:
    """Raise ``ValueError`` for a ``--option NAME=VALUE`` whose NAME the command already sets.

    Args:
        items: the ``--option`` strings.
        flags: keyword names that a flag of the command sets, mapped to that flag.
        set_by_command: keyword names that the command sets without a flag of its own, mapped
            to the end of the message, e.g. ``"the bounds that run takes from ...; drop it"``.
    """
    set_by_command = set_by_command or {}
    for item in items:
        name = item.partition("=")[0]
        if name in set_by_command:
            raise ValueError(f"--option {item} conflicts with {set_by_command[name]}")
        if name in flags:
            raise ValueError(
                f"--option {item} conflicts with {flags[name]}; use {flags[name]} instead"
            )


def parse_options(items: list[str]) -> dict[str, Any]:
    """Parse ``NAME=VALUE`` strings into keyword arguments (VALUE as a Python literal).

    A VALUE that is not a literal is taken as a string, so ``step_order=step_first`` works.
    """
    options: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(
                f"invalid --option {item!r}; expected NAME=VALUE, e.g. surrogate_steps=10"
            )
        try:
            options[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[name] = text
    return options
